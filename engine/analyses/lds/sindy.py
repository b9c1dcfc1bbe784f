"""SINDy on the RNN's inferred latents, the threshold chosen on validation trials (issue 18).

The RNN's latents ``q`` (steps, trials, hidden) live in a basis of its own: any
invertible linear map of them predicts the neurons as well.  A sparse model
needs a basis, and one can be had from the data alone: the *modal* basis of
the latents' own linear dynamics.  A least-squares fit of
``q[t+1] - q[t] = (q[t] - m) B + c`` on the fitting trials is diagonalised,
``B = V diag(lambda) V^-1``; in ``z = (q - m) V`` (each column scaled to unit
variance) the linear part is diagonal.  When the latents are a linear image of
a system with diagonal ``A0`` (seed 004), the diagonal entries are the
eigenvalues of ``A0 - I`` and sparse regression should keep the diagonal and
little else.  Complex eigenvalues (rotations) have no real diagonal form: a pair
becomes a 2 x 2 block (real and imaginary parts of its eigenvector, one coupling
term per equation), and their count is reported.

The threshold is picked from a sweep (:func:`engine.sindy.stlsq`, all
thresholds in one batch) on *validation* trials (trials the fit did not use),
by the error of ``horizon``-step predictions (the mean over 1..horizon steps
ahead, from every start) and the one-standard-error rule: the largest
threshold whose excess error over the best, paired by trial, is at most one
standard error of that excess across the validation trials.

Why not the one-step error: the slowest modes have coefficients near 0 (A0
near 1), whose one-step gain is about ``c**2`` of a unit-variance mode, under
the noise of the comparison; on seed 0 the one-step choice (0.0149) dropped
the slowest mode (true 0.0073, fitted 0.0086; the curve was flat to 1e-5).
Over ``h`` steps a decay error grows like ``h * c``, so a horizon of 100 steps
(two fifths of a trial) keeps it.  Multi-step errors of near-equal models are
noisy, hence the 1-SE rule rather than the bare minimum (the minimum at 50
steps took 41 terms on the true latents of seed 42, the 1-SE rule 13).  The
horizon is capped at the trial length minus one.  Nothing here reads the true latents or A0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_THRESHOLDS = tuple(float(v) for v in np.round(np.geomspace(1e-4, 0.3, 25), 6))
DEFAULT_HORIZON = 100  # steps ahead the validation error looks (issue 18's numbers in lds/__init__.py)


@dataclass(frozen=True)
class LatentSindy:
    """A degree-1 map ``z[t+1] - z[t] = z[t] @ coef + intercept`` and how it was chosen.

    ``coef`` is (source, target) as in :func:`engine.sindy.equation_set.linear_map_payload`.
    """

    coef: np.ndarray
    intercept: np.ndarray
    threshold: float
    thresholds: np.ndarray
    val_error: np.ndarray       # multi-step MSE on the validation trials, per threshold
    val_se: np.ndarray          # standard error of its excess over the best, paired by trial
    n_terms: np.ndarray         # non-zero coefficients (intercept excluded), per threshold
    horizon: int                # the steps ahead the validation error looked


def modal_basis(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(mean, V, scale, n_complex)`` so that ``z = (q - mean) @ V / scale`` has diagonal linear dynamics.

    ``q`` (steps, trials, k): the latents of the fitting trials only.
    """
    q = np.asarray(q, float)
    k = q.shape[-1]
    m = q.reshape(-1, k).mean(0)
    x = (q[:-1] - m).reshape(-1, k)
    d = (q[1:] - q[:-1]).reshape(-1, k)
    X = np.column_stack([np.ones(len(x)), x])
    B = np.linalg.lstsq(X, d, rcond=None)[0][1:]          # (source, target): d = x @ B + c
    lam, V = np.linalg.eig(B)
    n_complex = int((np.abs(lam.imag) > 1e-9).sum())
    # the real modal form: a real eigenvalue keeps its eigenvector; a complex pair gives the
    # real and imaginary parts of one of its vectors, a 2 x 2 rotation block (one coupling
    # term per equation) instead of a dense real-part projection
    order = np.argsort(np.real(lam), kind="stable")        # a fixed order: slowest decay last
    cols = []
    for i in order:
        if abs(lam[i].imag) <= 1e-9:
            cols.append(np.real(V[:, i]))
        elif lam[i].imag > 0:
            cols += [np.real(V[:, i]), np.imag(V[:, i])]
    V = np.column_stack(cols)
    scale = ((q.reshape(-1, k) - m) @ V).std(0)
    scale[scale == 0] = 1.0
    return m, V, scale, n_complex


def to_modal(q: np.ndarray, basis) -> np.ndarray:
    m, V, scale = basis[:3]
    return ((np.asarray(q, float) - m) @ V) / scale


def _pairs(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = z.shape[-1]
    x = z[:-1].reshape(-1, k)
    return np.column_stack([np.ones(len(x)), x]), (z[1:] - z[:-1]).reshape(-1, k)


def horizon_errors(coefs: np.ndarray, z: np.ndarray, horizon: int) -> np.ndarray:
    """Mean squared error of 1..``horizon``-step predictions, per model and trial: (models, trials).

    ``coefs`` (models, k, 1 + k) as :func:`engine.sindy.stlsq` returns them; ``z`` (steps,
    trials, k).  Every start ``t < steps - horizon`` is stepped with the map (no teacher
    forcing), so all horizons are scored on the same starts.
    """
    n = z.shape[0] - horizon
    uniq, inv = np.unique(coefs, axis=0, return_inverse=True)  # many thresholds share a support
    errs = []
    for c in uniq:
        M, b = np.eye(len(c)) + c[:, 1:].T, c[:, 0]
        pred, e = z[:n], 0.0
        for h in range(1, horizon + 1):
            pred = pred @ M + b
            e = e + ((pred - z[h:h + n]) ** 2).mean((0, 2))
        errs.append(e / horizon)
    return np.asarray(errs)[np.ravel(inv)]


def fit_select(z_fit: np.ndarray, z_val: np.ndarray, thresholds=DEFAULT_THRESHOLDS,
               horizon: int = DEFAULT_HORIZON, one_se: bool = True) -> LatentSindy:
    """STLSQ on ``z_fit`` (steps, trials, k) at every threshold; the threshold chosen on ``z_val``.

    The choice: the largest threshold whose ``horizon``-step validation error exceeds the
    best by at most one standard error of the excess, paired by trial (``one_se=False``,
    or a single validation trial: the best, ties to the sparser).  ``horizon`` is capped
    at the trial length minus one.
    """
    from engine.sindy import stlsq

    thr = np.sort(np.asarray(thresholds, float))
    theta, y = _pairs(z_fit)
    coefs = np.asarray(stlsq(theta, y, thresholds=thr, alpha=0.0, warn=False))  # (T, targets, 1 + k)
    H = int(max(1, min(horizon, z_val.shape[0] - 1)))
    per_trial = horizon_errors(coefs, np.asarray(z_val, float), H)
    err = per_trial.mean(1)
    excess = per_trial - per_trial[int(np.argmin(err))]
    n_val = per_trial.shape[1]
    se = excess.std(1, ddof=1) / np.sqrt(n_val) if n_val > 1 else np.zeros(len(err))
    n_terms = (coefs[:, :, 1:] != 0).sum((1, 2))
    ok = np.flatnonzero(excess.mean(1) <= (se if one_se else 0.0))
    i = int(ok.max())
    c = coefs[i]
    return LatentSindy(coef=c[:, 1:].T.copy(), intercept=c[:, 0].copy(), threshold=float(thr[i]),
                       thresholds=thr, val_error=err, val_se=se, n_terms=n_terms, horizon=H)


def split_fit_val(train_trials: slice, val_trials: int) -> tuple[slice, slice]:
    """The RNN's training trials split into SINDy fitting and validation trials (the test trials stay untouched)."""
    n = train_trials.stop - train_trials.start
    v = int(val_trials)
    if not 1 <= v < n - 1:
        raise ValueError(f"sindy_val_trials must be in [1, {n - 2}] for {n} training trials, got {v}")
    cut = train_trials.stop - v
    return slice(train_trials.start, cut), slice(cut, train_trials.stop)


def sindy_step(ctx, p: dict) -> dict:
    """Degree-1 SINDy on the RNN's inferred latents (modal basis), threshold chosen on validation trials.

    Reads the inferred latents written by ``evaluate`` (``lds_predictions.npz``)
    and the trial split; never the true latents or A0 (the ``truth`` step
    scores this fit and adds the true-latent reference).
    """
    from engine.analyses.lds.steps import PRED_FILE, load_data, trial_split, write_json
    from engine.atomic import save_npz

    pred = ctx.workdir / PRED_FILE
    if not pred.exists():
        raise FileNotFoundError(f"{pred} is missing: run the 'evaluate' step first")
    with np.load(pred) as f:
        q = f["latents_inferred"].astype(float)
    tr, _ = trial_split(load_data(ctx, p), p)
    fit_tr, val_tr = split_fit_val(tr, p["sindy_val_trials"])
    basis = modal_basis(q[:, fit_tr])
    z = to_modal(q, basis)
    res = fit_select(z[:, fit_tr], z[:, val_tr], horizon=p["sindy_horizon"])
    save_npz(ctx.workdir / SINDY_FILE, coef=res.coef, intercept=res.intercept, threshold=np.array(res.threshold),
             thresholds=res.thresholds, val_error=res.val_error, val_se=res.val_se, n_terms=res.n_terms,
             horizon=np.array(res.horizon), mean=basis[0], V=basis[1],
             scale=basis[2])
    names = [f"z{i}" for i in range(z.shape[-1])]
    from engine.sindy.equation_set import linear_map_payload

    eq = linear_map_payload(names, res.coef, res.intercept, threshold=res.threshold,
                            system="lds inferred latents (modal basis), discrete step z[t+1]-z[t]",
                            backend="engine.sindy.stlsq")
    ctx.save_equations("lds_latents", eq)
    write_json(ctx.workdir / "sindy_latents.json", eq)
    off = ~np.eye(len(res.coef), dtype=bool)
    return {"sindy_threshold_chosen": res.threshold, "sindy_terms": int((res.coef != 0).sum()),
            "sindy_offdiag_terms": int((res.coef[off] != 0).sum()),
            "sindy_horizon": res.horizon,
            "sindy_val_mse": float(res.val_error[list(res.thresholds).index(res.threshold)]),
            "modal_complex_eigenvalues": basis[3], "sindy_fit_trials": fit_tr.stop - fit_tr.start,
            "sindy_val_trials": val_tr.stop - val_tr.start}


SINDY_FILE = "sindy_latents.npz"
