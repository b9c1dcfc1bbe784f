"""Metrics of a prediction against a continuous target: MAE, RMSE, Pearson correlation,
FEV, R² corrected for scale and offset, and the oracle correlation of repeated trials."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from engine.metrics.arrays import _bad_cells, _finish, _pair, is_diverged


# --------------------------------------------------------------------------- pointwise errors


def mae(y_true, y_pred, *, per_cell: bool = False):
    """Mean absolute error, pooled over all entries or per cell."""
    t, p = _pair(y_true, y_pred)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(p - t)
        return _finish(err.mean(axis=0), err.mean(), _bad_cells(p), per_cell)


def rmse(y_true, y_pred, *, per_cell: bool = False):
    """Root mean squared error, pooled over all entries or per cell."""
    t, p = _pair(y_true, y_pred)
    with np.errstate(invalid="ignore", over="ignore"):
        sq = (p - t) ** 2
        return _finish(np.sqrt(sq.mean(axis=0)), np.sqrt(sq.mean()), _bad_cells(p), per_cell)


def _corr_cols(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of matching columns; NaN where either column is constant."""
    # exactly constant, tested on the values: after centring, round-off leaves ~1e-17
    # residues whose "correlation" is noise (a constant 0.3 column scored r = -7e-17)
    const = (a.max(axis=0) == a.min(axis=0)) | (b.max(axis=0) == b.min(axis=0))
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    num = (a * b).sum(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    # A constant column has no defined correlation: say so rather than 0.
    return np.where((den > 0) & ~const, r, np.nan)


def pearson(y_true, y_pred, *, per_cell: bool = False):
    """Pearson correlation per cell; overall is the mean over cells.

    Cells where either array is constant have an undefined correlation (NaN) and
    are left out of the mean; if every cell is constant the overall value is NaN.
    """
    t, p = _pair(y_true, y_pred)
    bad = _bad_cells(p)
    with np.errstate(invalid="ignore", over="ignore"):
        r = _corr_cols(t, np.where(bad, 0.0, p))
    finite = r[np.isfinite(r) & ~bad]
    overall = finite.mean() if finite.size else np.nan
    return _finish(r, overall, bad, per_cell)


def fev(y_true, y_pred, *, noise_var=None, per_cell: bool = False):
    """Fraction of explainable variance explained (FEV).

    ``FEV = 1 - (MSE - s2_noise) / (Var[y] - s2_noise)`` (Cadena et al. 2019).

    Parameters
    ----------
    y_true : array, shape (..., cells) or (repeats, ..., cells)
        Target.  With one more leading axis than ``y_pred`` that axis is taken as
        repeated trials of the same stimulus: the noise variance is the mean over
        stimuli of the across-repeat variance (``ddof=1``), the MSE and ``Var[y]``
        are over all single trials.
    y_pred : array, shape (..., cells)
        Prediction (one per stimulus, shared by the repeats).
    noise_var : float or array (cells,), optional
        Known noise variance; overrides the estimate from repeats.  Without
        repeats or ``noise_var`` this is the plain explained variance
        ``1 - MSE / Var[y]``.
    per_cell : bool
        One value per cell; otherwise the mean over cells.
    """
    t_raw = np.asarray(y_true, dtype=float)
    p_raw = np.asarray(y_pred, dtype=float)
    if t_raw.ndim == p_raw.ndim + 1:
        if t_raw.shape[1:] != p_raw.shape:
            raise ValueError(f"repeats target {t_raw.shape} does not match prediction {p_raw.shape}")
        if t_raw.shape[0] < 2 and noise_var is None:
            raise ValueError("need at least 2 repeats to estimate the noise variance")
        reps = t_raw.shape[0]
        t, p = _pair(t_raw, np.broadcast_to(p_raw, t_raw.shape))
        if noise_var is None:
            per_rep = t_raw.reshape(reps, -1, t.shape[1])
            noise_var = per_rep.var(axis=0, ddof=1).mean(axis=0)
    else:
        t, p = _pair(t_raw, p_raw)
    noise = np.zeros(t.shape[1]) if noise_var is None else np.broadcast_to(np.asarray(noise_var, float), (t.shape[1],))
    bad = _bad_cells(p)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        mse = ((p - t) ** 2).mean(axis=0)
        explainable = t.var(axis=0) - noise
        out = 1.0 - (mse - noise) / explainable
    # No explainable variance (constant or pure-noise cell): FEV is undefined.
    out = np.where(explainable > 0, out, np.nan)
    finite = out[np.isfinite(out) & ~bad]
    overall = finite.mean() if finite.size else np.nan
    return _finish(out, overall, bad, per_cell)


# --------------------------------------------------------------------------- scale/offset


@dataclass(frozen=True)
class LinearFit:
    """Result of :func:`corrected_r2`: ``y_true ~ a * y_pred + b``.

    Attributes
    ----------
    a, b : float
        Least-squares slope and offset.
    r2_raw : float
        ``1 - SS_res / SS_tot`` of ``y_pred`` itself.
    r2_corrected : float
        The same for ``a * y_pred + b`` (equals the squared Pearson r).
    """

    a: float
    b: float
    r2_raw: float
    r2_corrected: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def corrected_r2(y_true, y_pred) -> LinearFit:
    """R² after removing a global scale and offset (for degenerate reconstructions).

    A reconstruction known only up to ``a * x + b`` (the stimulus seed 003) is
    judged on ``r2_corrected``; ``a`` and ``b`` say how far off the raw one was.
    """
    t, p = _pair(y_true, y_pred)
    t, p = t.ravel(), p.ravel()
    if is_diverged(p):
        nan = float("nan")
        return LinearFit(nan, nan, nan, nan)
    ss_tot = float(((t - t.mean()) ** 2).sum())
    if ss_tot == 0:
        raise ValueError("y_true is constant; R² is undefined")
    pc = p - p.mean()
    var_p = float((pc * pc).sum())
    a = float((pc * (t - t.mean())).sum() / var_p) if var_p > 0 else 0.0
    b = float(t.mean() - a * p.mean())
    r2_raw = 1.0 - float(((t - p) ** 2).sum()) / ss_tot
    r2_cor = 1.0 - float(((t - (a * p + b)) ** 2).sum()) / ss_tot
    return LinearFit(a, b, r2_raw, r2_cor)


# --------------------------------------------------------------------------- reliability


def oracle_correlation(responses, *, per_cell: bool = False):
    """Leave-one-out oracle correlation of repeated trials.

    For every trial, the response is correlated with the mean of the *other*
    trials of the same stimulus; all (trial, stimulus) pairs of a neuron are
    pooled into one correlation (as in the Sensorium benchmark).  It is an upper
    bound for how well any stimulus-driven model can correlate with single trials.

    Parameters
    ----------
    responses : array (trials, stimuli, neurons)
        At least 2 trials.
    per_cell : bool
        One value per neuron; otherwise the mean over neurons with a defined value.
    """
    x = np.asarray(responses, dtype=float)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise ValueError(f"responses must be (trials, stimuli, neurons), got shape {x.shape}")
    n = x.shape[0]
    if n < 2:
        raise ValueError("oracle correlation needs at least 2 repeated trials")
    if not np.all(np.isfinite(x)):
        raise ValueError("responses contain NaN or inf")
    loo = (x.sum(axis=0, keepdims=True) - x) / (n - 1)
    r = _corr_cols(x.reshape(-1, x.shape[-1]), loo.reshape(-1, x.shape[-1]))
    if per_cell:
        return r
    finite = r[np.isfinite(r)]
    return float(finite.mean()) if finite.size else float("nan")
