"""Error and fit metrics shared by every analysis (numpy only; no torch).

Conventions
-----------
* Arguments are ``(y_true, y_pred)`` in that order, as in scikit-learn.  (The
  Neural Latents Benchmark writes ``bits_per_spike(rates, spikes)``; here it is
  ``bits_per_spike(spikes, rates)``, same maths.)
* The last axis is the cell (neuron) axis; all leading axes (time, trials...) are
  samples and are flattened.  A 1-D array is one cell.
* ``per_cell=True`` returns one value per cell (shape ``(cells,)``), otherwise one
  float for all cells together.  "Overall" is pooled over every entry for MAE,
  RMSE and the Poisson likelihoods, and the mean over cells for correlation and
  FEV (a correlation of pooled entries would be dominated by differences in
  mean rate between cells).
* A prediction with non-finite values is *diverged*: the cells it touches get
  NaN and so does the overall value -- never a huge finite number.  A non-finite
  target is a data error and raises ``ValueError``.

:func:`score_table` evaluates many models at once (in parallel with joblib) and
returns one row per model with an explicit ``diverged`` column.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "mae",
    "rmse",
    "pearson",
    "fev",
    "poisson_loss",
    "poisson_nll",
    "bits_per_spike",
    "co_bps",
    "LinearFit",
    "corrected_r2",
    "oracle_correlation",
    "is_diverged",
    "METRICS",
    "score_table",
]

_LN2 = np.log(2.0)


# --------------------------------------------------------------------------- helpers


def _as_2d(a: np.ndarray) -> np.ndarray:
    """(..., cells) -> (samples, cells); 1-D is one cell."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        raise ValueError("expected an array with at least one axis, got a scalar")
    if a.ndim == 1:
        return a[:, None]
    return a.reshape(-1, a.shape[-1])


def _pair(y_true, y_pred, *, allow_nan_true: bool = False) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    if t.size == 0:
        raise ValueError("cannot score empty arrays")
    if not allow_nan_true and not np.all(np.isfinite(t)):
        raise ValueError("y_true contains NaN or inf; clean the target before scoring")
    return _as_2d(t), _as_2d(p)


def _bad_cells(p2: np.ndarray) -> np.ndarray:
    """Cells whose prediction has any non-finite value (diverged)."""
    return ~np.all(np.isfinite(p2), axis=0)


def _finish(per_cell_vals: np.ndarray, overall: float, bad: np.ndarray, per_cell: bool):
    per_cell_vals = np.where(bad, np.nan, per_cell_vals)
    if per_cell:
        return per_cell_vals
    return float("nan") if bad.any() else float(overall)


def is_diverged(y_pred) -> bool:
    """True when a prediction holds any NaN or inf."""
    return not bool(np.all(np.isfinite(np.asarray(y_pred, dtype=float))))


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


# --------------------------------------------------------------------------- Poisson


def _check_rates(spikes, rates):
    s, r = _pair(spikes, rates, allow_nan_true=True)
    if np.any(s[np.isfinite(s)] < 0):
        raise ValueError("spike counts must be non-negative")
    return s, r


def poisson_loss(spikes, rates) -> float:
    """The seed's training loss: ``mean(rate - spikes * log(rate))`` (no log k! term)."""
    s, r = _check_rates(spikes, rates)
    if is_diverged(r):
        return float("nan")
    if np.any(r < 0):
        raise ValueError("rates must be non-negative")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = r - s * np.log(r)
    # 0 * log(0) is 0 in the Poisson likelihood.
    terms = np.where((s == 0) & (r == 0), 0.0, terms)
    return float(np.nanmean(terms))


def _nll_terms(s: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Poisson NLL per entry, NLB convention: zero rates clipped to 1e-9."""
    from scipy.special import gammaln

    r = np.where(r == 0, 1e-9, r)
    return r - s * np.log(r) + gammaln(s + 1.0)


def poisson_nll(spikes, rates, *, per_cell: bool = False):
    """Total Poisson negative log-likelihood ``sum(r - k log r + log k!)`` (NLB).

    NaN spike counts are masked out (as in NLB); zero rates are clipped to 1e-9.
    Returns NaN for a diverged prediction; raises on negative rates.
    """
    s, r = _check_rates(spikes, rates)
    bad = _bad_cells(r)
    r_ok = np.where(bad, 1.0, r)
    if np.any(r_ok < 0):
        raise ValueError("rates must be non-negative (negative rate predictions found)")
    terms = np.where(np.isnan(s), 0.0, _nll_terms(np.nan_to_num(s), r_ok))
    return _finish(terms.sum(axis=0), terms.sum(), bad, per_cell)


def bits_per_spike(spikes, rates, *, per_cell: bool = False):
    """Bits per spike, exactly as the Neural Latents Benchmark defines it.

    ``(NLL_null - NLL_model) / (n_spikes * ln 2)`` where the null model predicts
    each neuron's mean count over the evaluation data given (NaN-aware mean over
    all axes but the last).  A perfect predictor of the rates scores > 0, the
    per-neuron mean scores exactly 0, worse than the mean scores < 0.

    Parameters
    ----------
    spikes : array (..., neurons)
        Observed counts (NaN entries are ignored).
    rates : array (..., neurons)
        Predicted rates, in counts per bin, non-negative.
    per_cell : bool
        Per neuron (each normalised by its own spike count; NaN for a silent
        neuron) instead of the NLB total.
    """
    s, r = _check_rates(spikes, rates)
    bad = _bad_cells(r)
    if np.any(np.where(bad, 1.0, r) < 0):
        raise ValueError("rates must be non-negative (negative rate predictions found)")
    with np.errstate(invalid="ignore"):
        null = np.broadcast_to(np.nanmean(s, axis=0, keepdims=True), s.shape)
    mask = np.isnan(s)
    s0 = np.where(mask, 0.0, s)
    model_terms = np.where(mask, 0.0, _nll_terms(s0, np.where(bad, 1.0, r)))
    null_terms = np.where(mask, 0.0, _nll_terms(s0, np.nan_to_num(null)))
    n_spk = s0.sum(axis=0)
    gain = null_terms.sum(axis=0) - model_terms.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cell = np.where(n_spk > 0, gain / (n_spk * _LN2), np.nan)
        total = gain.sum() / (n_spk.sum() * _LN2) if n_spk.sum() > 0 else np.nan
    return _finish(cell, total, bad, per_cell)


def co_bps(heldout_spikes, heldout_rates, *, per_cell: bool = False):
    """Co-smoothing bits per spike: :func:`bits_per_spike` on held-out neurons.

    In NLB the rates of held-out neurons are predicted from the held-in ones; pass
    only the held-out columns (evaluation trials) here.
    """
    return bits_per_spike(heldout_spikes, heldout_rates, per_cell=per_cell)


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


# --------------------------------------------------------------------------- tables

#: name -> fn(y_true, y_pred, per_cell=bool); metrics usable in :func:`score_table`.
METRICS: dict[str, Callable] = {
    "mae": mae,
    "rmse": rmse,
    "corr": pearson,
    "fev": fev,
    "poisson_nll": poisson_nll,
    "bits_per_spike": bits_per_spike,
}

# Below this many entries per model the thread pool costs more than it saves.
_PARALLEL_MIN_ENTRIES = 200_000


def _score_one(name, pred, target, metrics, per_cell, repeats_target):
    row: dict[str, object] = {"model": name}
    pred = np.asarray(pred, dtype=float)
    row["diverged"] = is_diverged(pred)
    for m in metrics:
        fn = METRICS[m]
        if m == "fev" and repeats_target is not None:
            t = repeats_target
        else:
            t = target
        if row["diverged"]:
            # Explicit: no number at all for a diverged model.
            n_cells = 1 if pred.ndim == 1 else pred.shape[-1]
            overall, cells = float("nan"), np.full(n_cells, np.nan)
        else:
            overall = fn(t, pred, per_cell=False)
            cells = fn(t, pred, per_cell=True)
        row[m] = overall
        if per_cell:
            row[m + "_cells"] = np.asarray(cells)
    return row


def score_table(
    predictions: Mapping[str, np.ndarray],
    target,
    metrics: Sequence[str] = ("mae",),
    *,
    cells: Sequence | None = None,
    per_cell: bool = True,
    n_jobs: int = -1,
    backend: str | None = None,
):
    """Score several models against one target; one row per model.

    Parameters
    ----------
    predictions : mapping name -> array (T, cells) (or any (..., cells))
        Each model's prediction, same shape as the target.
    target : array (T, cells) or (repeats, T, cells)
        With a repeats axis, ``fev`` uses the repeats for its noise ceiling and
        every other metric is scored against the mean over repeats.
    metrics : sequence of str
        Names from :data:`METRICS`.
    cells : sequence, optional
        Names for the per-cell columns (default ``0..cells-1``).
    per_cell : bool
        Add one column per metric and cell, named ``"<metric>:<cell>"``.
    n_jobs, backend :
        joblib settings.  Models are scored in parallel through
        :func:`engine.parallel.pmap` on the session's backend (dask, ray); on this
        machine in threads, because numpy releases the GIL and the target is not
        copied.  ``backend="loky"`` etc. forces one.  Small inputs are scored in-process.

    Returns
    -------
    pandas.DataFrame
        Index: model names.  Columns: ``diverged`` (bool), then for each metric
        the overall value under its name and, if ``per_cell``, the per-cell values.
        A diverged model has NaN in every metric column, never a huge number.
    """
    import pandas as pd

    if not predictions:
        raise ValueError("no predictions to score")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    target = np.asarray(target, dtype=float)
    shapes = {k: np.shape(v) for k, v in predictions.items()}
    first = next(iter(shapes.values()))
    repeats_target = None
    if target.ndim == len(first) + 1:
        repeats_target = target
        target = target.mean(axis=0)
    for k, shp in shapes.items():
        if shp != target.shape:
            raise ValueError(f"prediction {k!r} has shape {shp}, target has {target.shape}")
    if not np.all(np.isfinite(target)):
        raise ValueError("target contains NaN or inf")
    n_cells = 1 if target.ndim == 1 else target.shape[-1]
    names = list(cells) if cells is not None else list(range(n_cells))
    if len(names) != n_cells:
        raise ValueError(f"got {len(names)} cell names for {n_cells} cells")

    jobs = [(k, v, target, tuple(metrics), per_cell, repeats_target) for k, v in predictions.items()]
    if n_jobs == 1 or len(jobs) == 1 or target.size < _PARALLEL_MIN_ENTRIES:
        rows = [_score_one(*j) for j in jobs]
    else:
        from engine.parallel import pmap

        rows = pmap(lambda j: _score_one(*j), jobs, n_jobs=n_jobs, backend=backend, prefer="threads",
                    message="scoring models")

    records = []
    for row in rows:
        rec: dict[str, object] = {"model": row["model"], "diverged": bool(row["diverged"])}
        for m in metrics:
            rec[m] = row[m]
            if per_cell:
                for name, v in zip(names, row[m + "_cells"]):
                    rec[f"{m}:{name}"] = float(v)
        records.append(rec)
    return pd.DataFrame.from_records(records).set_index("model")
