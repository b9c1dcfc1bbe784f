"""Sequentially thresholded least squares for all targets and many thresholds at once.

Same answer as ``pysindy.optimizers.STLSQ`` (pysindy 2.x defaults: ridge ``alpha``,
``normalize_columns=False``, ``unbias=True``) on the same library matrix, much faster:

* the Gram matrix ``Θᵀ Θ`` and ``Θᵀ y`` are formed once (one ``syrk`` over the data); every
  ridge solve of every iteration, target and threshold is a small masked solve on it;
* the first iteration is shared by all targets and thresholds (one Cholesky, K right-hand
  sides); identical ``(target, support)`` systems are solved once across thresholds and
  iterations (a cache keyed by the support); a ridge solve on a support that lost ``|D|`` terms
  reuses ``(G + alpha I)⁻¹`` through a Schur complement (``O(|D|³)`` instead of ``O(|S|³)``);
* numpy (LAPACK ``potrf/potrs`` per unique system, :mod:`.solver_numpy`; BLAS on one thread
  for these small solves and as many threads as there are idle cores for the Gram product,
  :mod:`._blas`) by default; torch when a ``device`` is given (padded, batched
  ``cholesky_ex``/``cholesky_solve`` per size bucket; GPU if there is one; :mod:`.solver_torch`).

Matching pysindy, rule by rule (``pysindy/optimizers/stlsq.py`` and ``base.py``):

* iteration: ridge solve on the current support, ``keep = |c| >= threshold``; a target stops when
  its support no longer changes; at most ``max_iter`` solves.  pysindy loops over all targets
  together and stops when none changes, which gives the same coefficients per target.
* ridge: ``solve(X_Sᵀ X_S + alpha I, X_Sᵀ y)`` by Cholesky, as sklearn's ``ridge_regression``;
  if the Cholesky fails, sklearn's SVD ridge (``s > 1e-15``) on the columns themselves.
* final support: ``|coef| > 1e-14``; unbias: ``LinearRegression(fit_intercept=False)`` on the
  support, i.e. ``scipy.linalg.lstsq(X_S, y, cond=1e-6)`` (sklearn >= 1.9 passes ``tol=1e-6``
  as ``cond``: singular values below ``1e-6 * s_max`` are dropped; older sklearn: scipy's
  default ``eps``, see :func:`._linalg.unbias_cond`).  Here: Cholesky of ``G_S``
  when ``G_S`` is well conditioned (LAPACK ``pocon`` estimate ``< 1e10``, so ``s_min/s_max >
  1e-5`` and the ``1e-6`` cut cannot bite), refined with the true data residual when
  ``cond > 1e6``; otherwise (``exact=True``) the same truncated least squares as pysindy: the
  very ``scipy.linalg.lstsq`` call on ``X_S`` for one system, or one QR of ``[Θ y]`` and a
  truncated SVD of each small ``R_S`` for several.  ``exact=False`` (sweeps, bagging, hand
  edits: only Gram matrices needed) replaces the hard cut by Tikhonov damping at the cut:
  the same fit, coefficients equal up to the ill-conditioned directions, no pass over the data.

Everything is float64.  Ill-conditioned or singular libraries fall back as above; they never
raise ``LinAlgError``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._blas import single_threaded_blas
from ._linalg import ZERO_TOL
from .errors import ConvergenceWarning, check_cancel
from .gram import GramStats, normalized_stats
from .solver_numpy import NumpySolver
from .solver_torch import TorchSolver  # imports torch only when built

__all__ = ["stlsq", "stlsq_gram", "STLSQInfo", "ridge_path_thresholds", "refit_support"]


@dataclass
class STLSQInfo:
    """Diagnostics of one batched STLSQ run.

    ``gram`` holds the statistics of the data as given (before any column normalisation): what
    refits of hand-edited supports and training errors need; ``feature_norms`` the column norms
    when ``normalize_columns`` was on.
    """

    thresholds: np.ndarray
    n_iter: np.ndarray  # (P, K) ridge solves per system (pysindy's iterations)
    converged: np.ndarray  # (P, K)
    biased_coef: np.ndarray  # (P, K, F) thresholded ridge coefficients before the unbias refit
    n_unique_solves: int = 0
    n_unbias_fallbacks: int = 0
    n_ridge_fallbacks: int = 0
    backend: str = "numpy"
    gram: GramStats | None = None
    feature_norms: np.ndarray | None = None


def check_thresholds(thresholds) -> np.ndarray:
    thr = np.atleast_1d(np.asarray(thresholds, dtype=np.float64)).ravel()
    if thr.size == 0:
        raise ValueError("need at least one threshold")
    if not np.all(np.isfinite(thr)) or np.any(thr < 0):
        raise ValueError("thresholds must be finite and nonnegative")
    return thr


def check_allowed(allowed, K: int, F: int) -> np.ndarray | None:
    if allowed is None:
        return None
    a = np.asarray(allowed, dtype=bool)
    if a.shape != (K, F):
        raise ValueError(f"allowed must have shape {(K, F)} (targets, features), got {a.shape}")
    return a


def run_stlsq(solver, thr: np.ndarray, alpha: float, max_iter: int, unbias: bool, warn: bool, allowed=None):
    st = solver.stats
    P, K, F = len(thr), st.n_targets, st.n_features
    masks = np.ones((P, K, F), dtype=bool)
    if allowed is not None:  # terms that may never enter (e.g. those of a constant state)
        masks &= allowed[None]
    coef = np.zeros((P, K, F))
    active = np.ones((P, K), dtype=bool)
    converged = np.zeros((P, K), dtype=bool)
    n_iter = np.zeros((P, K), dtype=np.int64)
    cache: dict[tuple[int, bytes], np.ndarray] = {}
    n_unique = 0
    thr_b = thr[:, None]
    cancel = getattr(solver, "cancel", None)
    for _ in range(max_iter):
        check_cancel(cancel)
        pk = np.argwhere(active)
        if len(pk) == 0:
            break
        M = masks[pk[:, 0], pk[:, 1]]  # (A, F)
        packed = np.packbits(M, axis=1)
        keys = [(int(k), row.tobytes()) for k, row in zip(pk[:, 1], packed)]
        todo: dict[tuple[int, bytes], int] = {}
        for i, key in enumerate(keys):
            if key not in cache and key not in todo:
                todo[key] = i
        if todo:
            sel = np.fromiter(todo.values(), dtype=np.int64)
            sol = solver.ridge(M[sel], pk[sel, 1], alpha)
            n_unique += len(sel)
            for key, row in zip(todo, sol):
                cache[key] = row
        C = np.stack([cache[key] for key in keys])  # (A, F), zero off the support
        new = M & (np.abs(C) >= thr_b[pk[:, 0]])
        n_iter[pk[:, 0], pk[:, 1]] += 1
        coef[pk[:, 0], pk[:, 1]] = np.where(new, C, 0.0)
        done = ~(new != M).any(1) | ~new.any(1)
        masks[pk[:, 0], pk[:, 1]] = new
        converged[pk[done, 0], pk[done, 1]] = True
        active[pk[done, 0], pk[done, 1]] = False
    if warn and (~converged).any():
        warnings.warn(
            f"STLSQ did not converge after {max_iter} iterations for {int((~converged).sum())} of "
            f"{converged.size} (threshold, target) systems.",
            ConvergenceWarning,
            stacklevel=3,
        )
    biased = coef.copy()
    if unbias:
        support = np.abs(coef) > ZERO_TOL
        flat = support.reshape(P * K, F)
        tg = np.tile(np.arange(K), P)
        has = flat.any(1)
        rows = np.flatnonzero(has)
        final = np.zeros((P * K, F))
        if len(rows):
            # dedupe (target, support) across thresholds
            packed = np.packbits(flat[rows], axis=1)
            uniq: dict[tuple[int, bytes], int] = {}
            inv = np.empty(len(rows), dtype=np.int64)
            for j, (r, row) in enumerate(zip(rows, packed)):
                inv[j] = uniq.setdefault((int(tg[r]), row.tobytes()), len(uniq))
            first = np.empty(len(uniq), dtype=np.int64)
            first[inv[::-1]] = rows[::-1]
            sol = solver.lstsq(flat[first], tg[first])
            final[rows] = sol[inv]
        coef = final.reshape(P, K, F)
    info = STLSQInfo(
        thresholds=thr,
        n_iter=n_iter,
        converged=converged,
        biased_coef=biased,
        n_unique_solves=n_unique,
        n_unbias_fallbacks=solver.n_unbias_fallbacks,
        n_ridge_fallbacks=solver.n_ridge_fallbacks,
        backend=solver.backend,
    )
    return coef, info


def validate_data(theta, y):
    theta = np.asarray(theta, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if theta.ndim != 2 or y.ndim != 2 or theta.shape[0] != y.shape[0]:
        raise ValueError(f"theta must be (n_samples, n_features) and y (n_samples, n_targets); got {theta.shape} and {y.shape}")
    if theta.shape[0] == 0 or theta.shape[1] == 0:
        raise ValueError("empty library matrix")
    return theta, y


NONFINITE = "theta or y contains NaN or inf (or values whose squares overflow); drop or interpolate those samples first"


def check_stats(stats: GramStats) -> GramStats:
    # any NaN/inf in theta or y reaches G, b or yy (O(F^2) instead of a pass over the data)
    if not (np.isfinite(stats.G).all() and np.isfinite(stats.b).all() and np.isfinite(stats.yy).all()):
        raise ValueError(NONFINITE)
    return stats


def stlsq(
    theta,
    y,
    thresholds=0.1,
    alpha: float = 0.05,
    max_iter: int = 20,
    *,
    unbias: bool = True,
    device=None,
    exact: bool = True,
    return_info: bool = False,
    warn: bool = True,
    cancel=None,
    normalize_columns: bool = False,
    allowed=None,
):
    """STLSQ of ``y ≈ Θ Ξᵀ`` for every target and every threshold.

    Parameters
    ----------
    theta : array (n_samples, n_features)
        Library matrix (numpy or torch).
    y : array (n_samples, n_targets) or (n_samples,)
        Targets (the derivatives).
    thresholds : float or sequence of floats
        One or many thresholds; all are solved in one batch.
    alpha : float
        Ridge penalty (pysindy default 0.05).
    max_iter : int
        Maximum ridge solves per system (pysindy default 20).
    unbias : bool
        Final least-squares refit on the support (pysindy default True).
    device : None, str or torch.device
        None: numpy/LAPACK.  Otherwise torch on that device ("cpu", "cuda", "auto").  A torch
        ``theta`` implies its own device.
    exact : bool
        For ill-conditioned supports, repeat pysindy's exact ``lstsq`` on the data columns (True)
        or damp them at the cut from the Gram alone (False: faster, same fit, coefficients equal
        up to the ill-conditioned directions).
    return_info : bool
        Also return an :class:`STLSQInfo`.
    cancel : callable, optional
        Polled between solves (numpy backend); when it returns True the fit stops with
        :class:`engine.reporting.Cancelled`.
    normalize_columns : bool
        pysindy's ``normalize_columns``: every column of Θ is divided by its 2-norm before
        the ridge solves, so the threshold acts on coefficients of unit-norm columns; the
        coefficients are returned in the original units (divided by the norms).
    allowed : array (n_targets, n_features) of bool, optional
        Terms that may enter each equation (default all); the others stay zero.

    Returns
    -------
    coef : ndarray (n_thresholds, n_targets, n_features)
    info : STLSQInfo, only if ``return_info``
    """
    if max_iter <= 0:
        raise ValueError("max_iter must be positive")
    if alpha < 0:
        raise ValueError("alpha cannot be negative")
    thr = check_thresholds(thresholds)
    is_torch = type(theta).__module__.startswith("torch")
    solver: NumpySolver | TorchSolver
    if device is not None or is_torch:
        import torch

        from ..device import pick_device

        if is_torch:
            dev = theta.device if device is None else (pick_device(device) if device == "auto" else torch.device(device))
        else:
            dev = pick_device(device) if device == "auto" else torch.device(device)
        th = torch.as_tensor(theta, dtype=torch.float64).to(dev)
        yt = torch.as_tensor(y, dtype=torch.float64).to(dev)
        if yt.ndim == 1:
            yt = yt[:, None]
        if th.ndim != 2 or yt.ndim != 2 or th.shape[0] != yt.shape[0]:
            raise ValueError(f"theta must be (n_samples, n_features) and y (n_samples, n_targets); got {tuple(th.shape)} and {tuple(yt.shape)}")
        norms = None
        if normalize_columns:
            n_t = torch.linalg.vector_norm(th, dim=0)
            n_t = torch.where(n_t > 0, n_t, torch.ones_like(n_t))
            th, norms = th / n_t, n_t.cpu().numpy()
        solver = TorchSolver(th, yt, exact=exact)
        check_stats(solver.stats)
        gram = solver.stats
        if norms is not None:  # the statistics of the data as given (refits, errors)
            s_ = solver.stats
            gram = GramStats(s_.G * norms[:, None] * norms[None, :], s_.b * norms[:, None], s_.yy, s_.n_samples, s_.y_sum)
    else:
        theta, y = validate_data(theta, y)
        gram = check_stats(GramStats.from_data(theta, y))
        stats, norms = normalized_stats(gram) if normalize_columns else (gram, None)
        solver = NumpySolver(stats, theta if norms is None else theta / norms, y, exact=exact, cancel=cancel)
    allowed = check_allowed(allowed, solver.stats.n_targets, solver.stats.n_features)
    with single_threaded_blas():
        coef, info = run_stlsq(solver, thr, float(alpha), int(max_iter), unbias, warn, allowed)
    if norms is not None:
        coef, info.biased_coef = coef / norms, info.biased_coef / norms
    info.gram, info.feature_norms = gram, norms
    return (coef, info) if return_info else coef


def stlsq_gram(
    stats: GramStats,
    thresholds=0.1,
    alpha: float = 0.05,
    max_iter: int = 20,
    *,
    unbias: bool = True,
    theta=None,
    y=None,
    device=None,
    exact: bool = True,
    return_info: bool = False,
    warn: bool = True,
    cancel=None,
    normalize_columns: bool = False,
    allowed=None,
):
    """STLSQ from precomputed :class:`GramStats` (no pass over the data).

    With ``theta``/``y`` given, ill-conditioned unbias refits use them exactly as pysindy does;
    without, they are damped at the cut from the Gram alone (see ``exact`` in :func:`stlsq`).
    ``normalize_columns``, ``allowed``, ``cancel``: as in :func:`stlsq`.
    """
    if max_iter <= 0:
        raise ValueError("max_iter must be positive")
    if alpha < 0:
        raise ValueError("alpha cannot be negative")
    thr = check_thresholds(thresholds)
    check_stats(stats)
    gram = stats
    stats, norms = normalized_stats(gram) if normalize_columns else (gram, None)
    solver: NumpySolver | TorchSolver
    if device is not None:
        solver = TorchSolver(None, None, exact=False, stats=stats, device=device)
    else:
        if theta is not None:
            theta, y = validate_data(theta, y)
            if norms is not None:
                theta = theta / norms
        solver = NumpySolver(stats, theta, y, exact=exact and theta is not None, cancel=cancel)
    allowed = check_allowed(allowed, stats.n_targets, stats.n_features)
    with single_threaded_blas():
        coef, info = run_stlsq(solver, thr, float(alpha), int(max_iter), unbias, warn, allowed)
    if norms is not None:
        coef, info.biased_coef = coef / norms, info.biased_coef / norms
    info.gram, info.feature_norms = gram, norms
    return (coef, info) if return_info else coef


def ridge_path_thresholds(stats: GramStats, n: int = 64, alpha: float = 0.05, lo_quantile: float = 0.05,
                          normalize_columns: bool = False, allowed=None) -> np.ndarray:
    """``n`` log-spaced thresholds spanning the first ridge solution's coefficient magnitudes.

    From the ``lo_quantile`` of ``|c|`` (nearly nothing removed) to ``max |c|`` (nearly all);
    with ``normalize_columns``, of the coefficients of the unit-norm columns (the ones the
    threshold then acts on), and over the ``allowed`` terms only.
    """
    if normalize_columns:
        stats = normalized_stats(stats)[0]
    solver = NumpySolver(stats)
    K, F = stats.n_targets, stats.n_features
    mask = np.ones((K, F), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    with single_threaded_blas():
        c = solver.ridge(mask, np.arange(K), alpha)
    mags = np.abs(c[np.isfinite(c)])
    mags = mags[mags > 0]
    if mags.size == 0:
        return np.logspace(-3, 0, n)
    hi = float(mags.max())
    lo = float(np.quantile(mags, lo_quantile))
    lo = max(lo, hi * 1e-8)
    if lo >= hi:
        lo = hi / 10.0
    return np.logspace(np.log10(lo), np.log10(hi), n)


def refit_support(gram: GramStats, mask) -> np.ndarray:
    """Least-squares coefficients ``(K, F)`` on the support ``mask`` from Gram statistics alone
    (the unbias step of STLSQ, damped at its cut on ill-conditioned supports)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (gram.n_targets, gram.n_features):
        raise ValueError(f"mask must have shape {(gram.n_targets, gram.n_features)}, got {mask.shape}")
    with single_threaded_blas():
        return NumpySolver(gram, exact=False).lstsq(mask, np.arange(mask.shape[0]))
