"""Sequentially thresholded least squares for all targets and many thresholds at once.

Same answer as ``pysindy.optimizers.STLSQ`` (pysindy 2.x defaults: ridge ``alpha``,
``normalize_columns=False``, ``unbias=True``) on the same library matrix, much faster:

* the Gram matrix ``Θᵀ Θ`` and ``Θᵀ y`` are formed once (one ``syrk`` over the data); every
  ridge solve of every iteration, target and threshold is a small masked solve on it;
* the first iteration is shared by all targets and thresholds (one Cholesky, K right-hand
  sides); identical ``(target, support)`` systems are solved once across thresholds and
  iterations (a cache keyed by the support); a ridge solve on a support that lost ``|D|`` terms
  reuses ``(G + alpha I)⁻¹`` through a Schur complement (``O(|D|³)`` instead of ``O(|S|³)``);
* numpy (LAPACK ``potrf/potrs`` per unique system, BLAS on one thread for these small solves,
  and for the Gram product as many threads as there are idle cores) by default; torch when a ``device`` is given (padded, batched ``cholesky_ex``/
  ``cholesky_solve`` per size bucket; GPU if there is one).

Matching pysindy, rule by rule (``pysindy/optimizers/stlsq.py`` and ``base.py``):

* iteration: ridge solve on the current support, ``keep = |c| >= threshold``; a target stops when
  its support no longer changes; at most ``max_iter`` solves.  pysindy loops over all targets
  together and stops when none changes, which gives the same coefficients per target.
* ridge: ``solve(X_Sᵀ X_S + alpha I, X_Sᵀ y)`` by Cholesky, as sklearn's ``ridge_regression``;
  if the Cholesky fails, sklearn's SVD ridge (``s > 1e-15``) on the columns themselves.
* final support: ``|coef| > 1e-14``; unbias: ``LinearRegression(fit_intercept=False)`` on the
  support, i.e. ``scipy.linalg.lstsq(X_S, y, cond=1e-6)`` (sklearn >= 1.9 passes ``tol=1e-6``
  as ``cond``: singular values below ``1e-6 * s_max`` are dropped; older sklearn: scipy's
  default ``eps``, see :func:`unbias_cond`).  Here: Cholesky of ``G_S``
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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["stlsq", "stlsq_gram", "GramStats", "STLSQInfo", "ridge_path_thresholds"]

ZERO_TOL = 1e-14  # pysindy: ind_ = |coef_| > 1e-14 before the unbias refit
LSTSQ_COND = 1e-6  # sklearn >= 1.9: LinearRegression(tol=1e-6) -> scipy.linalg.lstsq(cond=1e-6)
SVD_RIDGE_CUTOFF = 1e-15  # sklearn _solve_svd keeps s > 1e-15
RCOND_FAST = 1e-10  # Cholesky unbias only when pocon's reciprocal condition is above this
RCOND_REFINE = 1e-6  # ... and refined with the data residual when below this


_CONTROLLER: Any = None
_UNBIAS_COND: float | None = None


def unbias_cond() -> float:
    """The singular-value cut of pysindy's unbias refit with the installed scikit-learn.

    sklearn >= 1.9 hands ``LinearRegression.tol`` (1e-6) to ``scipy.linalg.lstsq`` as ``cond``;
    older versions call it without, i.e. with scipy's default ``cond = eps``.
    """
    global _UNBIAS_COND
    if _UNBIAS_COND is None:
        try:
            from importlib.metadata import version

            major, minor = (int(p) for p in version("scikit-learn").split(".")[:2])
            _UNBIAS_COND = LSTSQ_COND if (major, minor) >= (1, 9) else float(np.finfo(np.float64).eps)
        except Exception:  # pragma: no cover - sklearn missing: keep the current behaviour
            _UNBIAS_COND = LSTSQ_COND
    return _UNBIAS_COND


def single_threaded_blas():
    """Context manager: BLAS/LAPACK on one thread for the many small solves.

    Small factorisations gain nothing from threads, and on a shared machine (a GPU server with
    training jobs) OpenBLAS's spinning threads make them 10-100x slower.  The big Gram product
    keeps the library's default threads.  A no-op if threadpoolctl is missing.
    """
    return _blas_limit(1)


def _blas_limit(n: int):
    """``threadpoolctl`` limit of the BLAS threads to ``n`` (the limit applies on creation)."""
    global _CONTROLLER
    try:
        if _CONTROLLER is None:
            import scipy.linalg.lapack  # noqa: F401  (load scipy's BLAS before scanning)
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        return _CONTROLLER.limit(limits=n, user_api="blas")
    except Exception:  # pragma: no cover - threadpoolctl absent or failing
        import contextlib

        return contextlib.nullcontext()


def gram_blas_threads():
    """Context manager for the one big Gram product: BLAS threads for the idle cores only.

    An idle machine gets all its cores (the product is level-3 BLAS and scales); a busy one
    (other runnable tasks right now, from ``/proc/loadavg``: e.g. training jobs beside the
    TUI) gets what is left, at least one, since oversubscribed OpenBLAS threads spin and run
    10-30x slower.
    """
    import os

    try:
        ncpu = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        ncpu = os.cpu_count() or 1
    try:  # runnable tasks right now (the 4th field of /proc/loadavg counts this one too)
        with open("/proc/loadavg") as fh:
            busy = int(fh.read().split()[3].split("/")[0]) - 1
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0
    n = max(1, min(ncpu, int(ncpu - busy + 0.5)))
    if n >= ncpu:
        import contextlib

        return contextlib.nullcontext()
    return _blas_limit(n)


class ConvergenceWarning(UserWarning):
    """STLSQ hit ``max_iter`` before the support settled (pysindy warns the same)."""


def check_cancel(cancel) -> None:
    """Raise :class:`engine.reporting.Cancelled` if ``cancel()`` says so (``None``: never).

    Called between solves and between blocks of the Gram product: each of those is one
    uninterruptible LAPACK/BLAS call, so a cancel is honoured within one of them.
    """
    if cancel is not None and cancel():
        from ..reporting import Cancelled

        raise Cancelled("SINDy fit cancelled")


GRAM_BLOCK_FLOPS = 5e7  # rows per block of the Gram product: ~25 ms of an idle core, ~0.2 s of a busy one


# --------------------------------------------------------------------------------------------
# sufficient statistics
# --------------------------------------------------------------------------------------------
@dataclass
class GramStats:
    """``G = Θᵀ Θ`` (F, F), ``b = Θᵀ y`` (F, K), ``yy = Σ y²`` (K,), ``n_samples``.

    Everything STLSQ needs; also gives training errors of any coefficient matrix in O(F²)
    (:meth:`sse`) and adds up over blocks of samples (block bootstrap).
    """

    G: np.ndarray
    b: np.ndarray
    yy: np.ndarray
    n_samples: int
    y_sum: np.ndarray | None = None

    @classmethod
    def from_data(cls, theta, y, weights=None, cancel=None) -> "GramStats":
        theta = np.asarray(theta, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 1:
            y = y[:, None]
        if weights is not None:
            w = np.sqrt(np.asarray(weights, dtype=np.float64))[:, None]
            theta = theta * w
            yw = y * w
            with gram_blas_threads():
                G = theta.T @ theta
                b = theta.T @ yw
            return cls(G, b, np.einsum("ij,ij->j", yw, yw), int(np.count_nonzero(weights)), (yw * w).sum(0))
        N, F = theta.shape
        rows = max(1024, int(GRAM_BLOCK_FLOPS / max(F * F, 1)))
        if cancel is not None and rows < N:  # blocks of rows, a cancel check between them
            G, b = np.zeros((F, F)), np.zeros((F, y.shape[1]))
            with gram_blas_threads():
                for s in range(0, N, rows):
                    check_cancel(cancel)
                    G += theta[s: s + rows].T @ theta[s: s + rows]
                    b += theta[s: s + rows].T @ y[s: s + rows]
            return cls(G, b, np.einsum("ij,ij->j", y, y), N, np.ones(N) @ y)
        with gram_blas_threads():
            G = theta.T @ theta  # numpy turns A.T @ A into one syrk
            # (yᵀ Θ)ᵀ: the same GEMM with the thin operand first, ~15% faster (memory-bound)
            b = np.ascontiguousarray((y.T @ theta).T) if theta.flags.f_contiguous else theta.T @ y
            # a GEMV: numpy's sum over axis 0 of a thin C array is 5x slower
            y_sum = np.ones(len(y)) @ y
        return cls(G, b, np.einsum("ij,ij->j", y, y), theta.shape[0], y_sum)

    @classmethod
    def from_joint(cls, theta_y, n_features: int, cancel=None) -> "GramStats":
        """Statistics of ``[Θ y]`` given as one ``(n_samples, F + K)`` matrix (Fortran order:
        its column blocks are the views ``Θ`` and ``y``): one ``syrk`` for ``G``, ``b`` and ``yy``.

        With ``cancel`` (a callable) and a product longer than about 0.1 s, the ``syrk`` runs
        over blocks of rows with a cancel check between them."""
        theta_y = np.asarray(theta_y, dtype=np.float64)
        F = int(n_features)
        if theta_y.ndim != 2 or not 0 < F < theta_y.shape[1]:
            raise ValueError(f"need an (n_samples, F + K) matrix with F = {F} < its columns; got {theta_y.shape}")
        N, C = theta_y.shape
        rows = max(1024, int(GRAM_BLOCK_FLOPS / max(C * C, 1)))
        with gram_blas_threads():
            if cancel is None or rows >= N:
                J = theta_y.T @ theta_y
            else:
                J = np.zeros((C, C))
                for s in range(0, N, rows):
                    check_cancel(cancel)
                    blk = theta_y[s: s + rows]
                    J += blk.T @ blk
            y_sum = np.ones(len(theta_y)) @ theta_y[:, F:]
        check_cancel(cancel)
        return cls(np.ascontiguousarray(J[:F, :F]), np.ascontiguousarray(J[:F, F:]), np.diag(J[F:, F:]).copy(),
                   theta_y.shape[0], y_sum)

    @property
    def n_features(self) -> int:
        return self.G.shape[0]

    @property
    def n_targets(self) -> int:
        return self.b.shape[1]

    def __add__(self, other: "GramStats") -> "GramStats":
        ys = None if self.y_sum is None or other.y_sum is None else self.y_sum + other.y_sum
        return GramStats(self.G + other.G, self.b + other.b, self.yy + other.yy, self.n_samples + other.n_samples, ys)

    def sse(self, coef: np.ndarray) -> np.ndarray:
        """Sum of squared residuals ``‖y_k - Θ c_k‖²`` per target for coef ``(..., K, F)``."""
        coef = np.asarray(coef, dtype=np.float64)
        gc = np.einsum("...kf,fg->...kg", coef, self.G)
        quad = np.einsum("...kg,...kg->...k", gc, coef)
        lin = np.einsum("...kf,fk->...k", coef, self.b)
        return np.maximum(self.yy - 2.0 * lin + quad, 0.0)

    def sst(self) -> np.ndarray:
        """Total sum of squares about the mean per target (for R²)."""
        if self.y_sum is None:
            return self.yy
        return np.maximum(self.yy - self.y_sum**2 / max(self.n_samples, 1), 0.0)


@dataclass
class STLSQInfo:
    """Diagnostics of one batched STLSQ run."""

    thresholds: np.ndarray
    n_iter: np.ndarray  # (P, K) ridge solves per system (pysindy's iterations)
    converged: np.ndarray  # (P, K)
    biased_coef: np.ndarray  # (P, K, F) thresholded ridge coefficients before the unbias refit
    n_unique_solves: int = 0
    n_unbias_fallbacks: int = 0
    n_ridge_fallbacks: int = 0
    backend: str = "numpy"
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# numpy backend
# --------------------------------------------------------------------------------------------
def _sk_svd_ridge(Xs: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    """sklearn's ``_solve_svd`` (its fallback when the Cholesky fails); returns (n_rhs, m)."""
    U, s, Vt = np.linalg.svd(Xs, full_matrices=False)
    idx = s > SVD_RIDGE_CUTOFF
    d = np.zeros_like(s)
    d[idx] = s[idx] / (s[idx] ** 2 + alpha)
    return (Vt.T @ (d[:, None] * (U.T @ Y))).T


def _eig_ridge(Gs: np.ndarray, Bs: np.ndarray, alpha: float) -> np.ndarray:
    """Gram-only version of the SVD ridge: eigen-decomposition of ``G_S``; returns (n_rhs, m)."""
    w, V = np.linalg.eigh(Gs)
    s = np.sqrt(np.clip(w, 0.0, None))
    keep = s > SVD_RIDGE_CUTOFF
    d = np.zeros_like(w)
    d[keep] = 1.0 / (w[keep] + alpha)
    return (V @ (d[:, None] * (V.T @ Bs))).T


def _eig_lstsq(Gs: np.ndarray, Bs: np.ndarray, cond: float | None = None) -> np.ndarray:
    """Truncated least squares from the Gram alone (``s < cond * s_max`` dropped); (n_rhs, m)."""
    cond = unbias_cond() if cond is None else cond
    w, V = np.linalg.eigh(Gs)
    s = np.sqrt(np.clip(w, 0.0, None))
    keep = s > cond * s.max() if s.size and s.max() > 0 else np.zeros_like(s, dtype=bool)
    d = np.zeros_like(w)
    d[keep] = 1.0 / w[keep]
    return (V @ (d[:, None] * (V.T @ Bs))).T


def _soft_lstsq(A: np.ndarray, Bs: np.ndarray, potrf, potrs) -> np.ndarray:
    """Approximate truncated least squares for ``exact=False``: Tikhonov at the cut.

    ``(G_S + τ I) c = b_S`` with ``τ = cond² ‖G_S‖₁`` (``‖G_S‖₁ ≥ λ_max``) damps the directions
    that ``lstsq(cond)`` drops (filter ``λ/(λ+τ)`` instead of a hard cut): the same fit,
    coefficients equal up to the ill-conditioned directions, one Cholesky instead of an
    eigen-decomposition.  ``A`` is a fresh Fortran-ordered copy of ``G_S`` (overwritten).
    Falls back to the eigen-solve if even this Cholesky fails.  Returns (n_rhs, m).
    """
    m = A.shape[0]
    anorm = float(np.abs(A).sum(0).max())
    if anorm <= 0:
        return np.zeros((Bs.shape[1], m))
    G0 = A.copy()
    A.flat[:: m + 1] += unbias_cond() ** 2 * anorm
    L, info = potrf(A, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        return _eig_lstsq(G0, Bs)
    X, _ = potrs(L, Bs, lower=1)
    return X.T


def _put(out: np.ndarray, rows: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> None:
    """``out[rows][:, idx] = vals`` without ``np.ix_`` for the usual single row."""
    if len(rows) == 1:
        out[rows[0], idx] = vals[0]
    else:
        out[np.ix_(rows, idx)] = vals


def _group_by_mask(masks: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Groups of identical rows: [(support indices, row numbers)]."""
    if len(masks) == 0:
        return []
    packed = np.packbits(masks, axis=1)
    groups: dict[bytes, list[int]] = {}
    for i, row in enumerate(packed):
        groups.setdefault(row.tobytes(), []).append(i)
    return [(np.flatnonzero(masks[rows[0]]), np.asarray(rows)) for rows in groups.values()]


class _NumpySolver:
    backend = "numpy"

    def __init__(self, stats: GramStats, theta=None, y=None, exact: bool = True, cancel=None):
        from scipy.linalg import lapack

        self.cancel = cancel
        self.stats = stats
        self.theta = theta
        self.y = y
        self.exact = exact and theta is not None
        self._potrf, self._potrs, self._pocon = lapack.dpotrf, lapack.dpotrs, lapack.dpocon
        self._potri = lapack.dpotri
        self.n_ridge_fallbacks = 0
        self.n_unbias_fallbacks = 0
        self._schur: tuple[float, np.ndarray, np.ndarray] | None = None
        self._schur_alpha: float | None = None

    def _schur_setup(self, alpha: float):
        """``M0⁻¹`` and ``M0⁻¹ b`` for ``M0 = G + alpha I`` (None if M0 is ill-conditioned).

        A ridge solve on a support ``S`` with complement ``D`` is then
        ``c_S = x0_S - M0⁻¹[S, D] (M0⁻¹[D, D])⁻¹ x0_D``, which costs ``O(|D|³)`` instead of
        ``O(|S|³)``: cheap while only a few terms have been removed (small thresholds, early
        iterations).
        """
        if self._schur_alpha == alpha:
            return self._schur
        self._schur_alpha = alpha
        self._schur = None
        G = self.stats.G
        F = G.shape[0]
        A = G.copy(order="F")
        A.flat[:: F + 1] += alpha
        anorm = np.abs(A).sum(0).max()
        L, info = self._potrf(A, lower=1, overwrite_a=0, clean=1)
        if info != 0 or anorm == 0:
            return None
        rcond, _ = self._pocon(L, anorm, uplo="L")
        if rcond < 1e-10:
            return None
        x0, _ = self._potrs(L, self.stats.b, lower=1)
        # the full symmetric inverse in one call (potri gives a triangle to mirror: slower)
        inv, info = self._potrs(L, np.eye(F, order="F"), lower=1)
        if info != 0:
            return None
        self._schur = (inv, x0)
        return self._schur

    def _sub(self, idx: np.ndarray) -> np.ndarray:
        """Fresh Fortran-ordered ``G[S, S]`` (G is symmetric, so the transpose of the C copy)."""
        G = self.stats.G
        if len(idx) == G.shape[0]:
            return G.copy(order="F")
        return G[idx][:, idx].T

    def ridge(self, masks: np.ndarray, targets: np.ndarray, alpha: float) -> np.ndarray:
        F = self.stats.n_features
        out = np.zeros((len(masks), F))
        schur = self._schur_setup(alpha) if alpha > 0 else None
        for idx, rows in _group_by_mask(masks):
            if len(idx) == 0:
                continue
            check_cancel(self.cancel)
            tg = targets[rows]
            n_drop = F - len(idx)
            if schur is not None and n_drop < 0.8 * len(idx):
                inv, x0 = schur
                if n_drop == 0:
                    _put(out, rows, idx, x0[:, tg].T)
                    continue
                keep = np.zeros(F, dtype=bool)
                keep[idx] = True
                drop = np.flatnonzero(~keep)
                inv_d = inv[drop]
                Mdd = inv_d[:, drop].T  # Fortran order (symmetric)
                z, info = self._potrs(self._potrf(Mdd, lower=1, overwrite_a=1, clean=0)[0], x0[drop][:, tg], lower=1)
                if info == 0 and np.all(np.isfinite(z)):
                    _put(out, rows, idx, (x0[idx][:, tg] - inv_d[:, idx].T @ z).T)
                    continue
            A = self._sub(idx)
            A.flat[:: len(idx) + 1] += alpha
            B = self.stats.b[idx][:, tg]
            L, info = self._potrf(A, lower=1, overwrite_a=1, clean=0)
            if info == 0:
                X, info = self._potrs(L, B, lower=1)
            if info != 0:  # sklearn: LinAlgError in the Cholesky -> SVD solver on X_S
                self.n_ridge_fallbacks += 1
                # sklearn's SVD of X_S where exactness is asked for (a pass over the data,
                # O(N |S|^2)); the same ridge from the Gram's eigen-decomposition otherwise
                if self.theta is not None and self.exact:
                    sol = _sk_svd_ridge(self.theta[:, idx], self.y[:, tg], alpha)
                else:
                    sol = _eig_ridge(self.stats.G[idx][:, idx], B, alpha)
            else:
                sol = X.T
            _put(out, rows, idx, sol)
        return out

    def lstsq(self, masks: np.ndarray, targets: np.ndarray) -> np.ndarray:
        F = self.stats.n_features
        out = np.zeros((len(masks), F))
        fast: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]] = []
        slow: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for idx, rows in _group_by_mask(masks):
            if len(idx) == 0:
                continue
            check_cancel(self.cancel)
            tg = targets[rows]
            A = self._sub(idx)
            anorm = np.abs(A).sum(0).max()
            B = self.stats.b[idx][:, tg]
            L, info = self._potrf(A, lower=1, overwrite_a=1, clean=0)
            rcond = 0.0
            if info == 0 and anorm > 0:
                rcond, _ = self._pocon(L, anorm, uplo="L")
            if info == 0 and rcond > RCOND_FAST:
                X, _ = self._potrs(L, B, lower=1)
                _put(out, rows, idx, X.T)
                fast.append((idx, rows, tg, L, rcond))
            else:
                slow.append((idx, rows, tg))
        if self.exact:
            need = [f for f in fast if f[4] < RCOND_REFINE]
            if need:
                self._refine(need, out)
        if slow:
            self.n_unbias_fallbacks += len(slow)
            if self.exact:
                _exact_lstsq(slow, self.theta, self.y, out)
            else:
                for idx, rows, tg in slow:
                    check_cancel(self.cancel)
                    _put(out, rows, idx, _soft_lstsq(self._sub(idx), self.stats.b[idx][:, tg], self._potrf, self._potrs))
        return out

    def _refine(self, systems, out: np.ndarray, max_steps: int = 4) -> None:
        """Iterative refinement with the true data residual (two GEMMs over Θ per step)."""
        rows = np.concatenate([r for _, r, _, _, _ in systems])
        tg = np.concatenate([t for _, _, t, _, _ in systems])
        for _ in range(max_steps):
            C = out[rows]  # (S, F), zero off the supports
            g = self.theta.T @ (self.y[:, tg] - self.theta @ C.T)  # (F, S)
            worst = 0.0
            pos = 0
            for idx, r, _t, L, _ in systems:
                n = len(r)
                d, _ = self._potrs(L, g[np.ix_(idx, np.arange(pos, pos + n))], lower=1)
                cur = out[np.ix_(r, idx)]
                _put(out, r, idx, cur + d.T)
                worst = max(worst, float(np.abs(d).max() / max(np.abs(cur).max(), 1e-300)))
                pos += n
            if worst < 1e-14:
                break


def _exact_lstsq(slow, theta: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """pysindy's unbias on ill-conditioned supports: ``lstsq(X_S, y, cond=1e-6)``.

    One system: scipy's gelsd on the columns, the very call sklearn makes.  Several: one QR of
    ``[Θ y]`` (``X_S = Q R_S``), then the truncated SVD of each small ``R_S``; same singular
    values, same cut, same solution, at the cost of one factorisation for all of them.
    """
    N, F = theta.shape
    cost_direct = sum(N * len(idx) ** 2 * 4 for idx, _, _ in slow)
    cost_qr = 2 * N * (F + y.shape[1]) ** 2
    if cost_direct <= cost_qr:
        from scipy.linalg import lstsq

        for idx, rows, tg in slow:
            _put(out, rows, idx, lstsq(theta[:, idx], y[:, tg], cond=unbias_cond())[0].T)
        return
    R = np.linalg.qr(np.concatenate([theta, y], axis=1), mode="r")
    _lstsq_from_r(slow, R[:F, :F], R[:F, F:], out)


def _lstsq_from_r(slow, R: np.ndarray, qty: np.ndarray, out: np.ndarray) -> None:
    for idx, rows, tg in slow:
        U, s, Vt = np.linalg.svd(R[:, idx], full_matrices=False)
        keep = s > unbias_cond() * s[0] if s.size and s[0] > 0 else np.zeros(s.shape, dtype=bool)
        z = (U[:, keep].T @ qty[:, tg]) / s[keep][:, None]
        _put(out, rows, idx, (Vt[keep].T @ z).T)


# --------------------------------------------------------------------------------------------
# torch backend
# --------------------------------------------------------------------------------------------
class _TorchSolver:
    backend = "torch"

    def __init__(self, theta_t, y_t, exact: bool = True, stats: GramStats | None = None, device=None):
        import torch

        self.torch = torch
        if theta_t is not None:
            self.device = theta_t.device
            G = theta_t.T @ theta_t
            b = theta_t.T @ y_t
            yy = (y_t * y_t).sum(0)
            self.stats = GramStats(G.cpu().numpy(), b.cpu().numpy(), yy.cpu().numpy(), int(theta_t.shape[0]), y_t.sum(0).cpu().numpy())
        else:
            self.device = torch.device(device or "cpu")
            G = torch.as_tensor(stats.G, device=self.device)
            b = torch.as_tensor(stats.b, device=self.device)
            self.stats = stats
        F = G.shape[0]
        self.F = F
        self.G_ext = torch.zeros((F + 1, F + 1), dtype=torch.float64, device=self.device)
        self.G_ext[:F, :F] = G
        self.b_ext = torch.zeros((F + 1, b.shape[1]), dtype=torch.float64, device=self.device)
        self.b_ext[:F] = b
        self.theta = theta_t
        self.y = y_t
        self.exact = exact and theta_t is not None
        self.n_ridge_fallbacks = 0
        self.n_unbias_fallbacks = 0

    # padded index matrix of a bucket of supports: (g, m), pad = F
    def _padded(self, masks: np.ndarray):
        sizes = masks.sum(1)
        m = int(sizes.max())
        idx = np.full((len(masks), m), self.F, dtype=np.int64)
        pos = np.cumsum(masks, axis=1) - 1
        r, c = np.nonzero(masks)
        idx[r, pos[r, c]] = c
        return idx, m

    @staticmethod
    def _buckets(sizes: np.ndarray, max_batch: int = 4096) -> list[np.ndarray]:
        order = np.argsort(sizes, kind="stable")
        out, cur = [], []
        lo = None
        for i in order:
            s = sizes[i]
            if cur and (s > 1.3 * lo + 8 or len(cur) >= max_batch):
                out.append(np.array(cur))
                cur = []
            if not cur:
                lo = s
            cur.append(i)
        if cur:
            out.append(np.array(cur))
        return out

    def _systems(self, masks, targets, diag_add: float):
        torch = self.torch
        idx, m = self._padded(masks)
        it = torch.as_tensor(idx, device=self.device)
        A = self.G_ext[it[:, :, None], it[:, None, :]]
        valid = it < self.F
        vf = valid.to(A.dtype)
        A = A + torch.diag_embed(vf * diag_add + (1.0 - vf))
        tg = torch.as_tensor(targets, device=self.device)
        B = self.b_ext[it, tg[:, None]]
        return it, A, B, valid

    def _scatter(self, it, sol) -> np.ndarray:
        torch = self.torch
        out = torch.zeros((sol.shape[0], self.F + 1), dtype=torch.float64, device=self.device)
        out.scatter_(1, it, sol)
        return out[:, : self.F].cpu().numpy()

    def ridge(self, masks: np.ndarray, targets: np.ndarray, alpha: float) -> np.ndarray:
        torch = self.torch
        out = np.zeros((len(masks), self.F))
        nonempty = np.flatnonzero(masks.any(1))
        if len(nonempty) == 0:
            return out
        for bucket in self._buckets(masks[nonempty].sum(1)):
            rows = nonempty[bucket]
            it, A, B, valid = self._systems(masks[rows], targets[rows], alpha)
            L, info = torch.linalg.cholesky_ex(A)
            sol = torch.cholesky_solve(B[..., None], L)[..., 0]
            sol = torch.where(valid, sol, torch.zeros_like(sol))
            res = self._scatter(it, sol)
            bad = np.flatnonzero(info.cpu().numpy() != 0)
            for j in bad:  # sklearn's SVD fallback, on the CPU
                self.n_ridge_fallbacks += 1
                idx = np.flatnonzero(masks[rows[j]])
                k = targets[rows[j]]
                res[j] = 0.0
                if self.theta is not None:
                    Xs = self.theta[:, torch.as_tensor(idx, device=self.device)].cpu().numpy()
                    res[j, idx] = _sk_svd_ridge(Xs, self.y[:, k].cpu().numpy()[:, None], alpha)[0]
                else:
                    res[j, idx] = _eig_ridge(self.stats.G[idx][:, idx], self.stats.b[idx, k][:, None], alpha)[0]
            out[rows] = res
        return out

    def lstsq(self, masks: np.ndarray, targets: np.ndarray) -> np.ndarray:
        torch = self.torch
        out = np.zeros((len(masks), self.F))
        nonempty = np.flatnonzero(masks.any(1))
        slow: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        refine: list[np.ndarray] = []
        for bucket in self._buckets(masks[nonempty].sum(1)):
            rows = nonempty[bucket]
            it, A, B, valid = self._systems(masks[rows], targets[rows], 0.0)
            # 2-norm condition of G_S from its eigenvalues (the pad diagonal is set to the
            # largest diagonal entry, inside the spectrum, so the extremes are those of G_S)
            dmax = torch.diagonal(A, dim1=-2, dim2=-1).where(valid, torch.zeros_like(B)).amax(-1)
            A_eig = A + torch.diag_embed(torch.where(valid, torch.zeros_like(B), dmax[:, None] - 1.0))
            w = torch.linalg.eigvalsh(A_eig)
            cond = torch.where(w[:, 0] > 0, w[:, -1] / w[:, 0].clamp_min(1e-300), torch.full_like(w[:, 0], float("inf")))
            L, info = torch.linalg.cholesky_ex(A)
            sol = torch.cholesky_solve(B[..., None], L)[..., 0]
            sol = torch.where(valid, sol, torch.zeros_like(sol))
            out[rows] = self._scatter(it, sol)
            cond_np = cond.cpu().numpy()
            ok = (info.cpu().numpy() == 0) & (cond_np < 1.0 / RCOND_FAST)
            if self.exact:
                need = ok & (cond_np > 1.0 / RCOND_REFINE)
                if need.any():
                    refine.append(rows[need])
            for j in np.flatnonzero(~ok):
                r = rows[j]
                out[r] = 0.0
                slow.append((np.flatnonzero(masks[r]), np.array([r]), np.array([targets[r]])))
        if refine:
            self._refine(np.concatenate(refine), masks, targets, out)
        if slow:
            self.n_unbias_fallbacks += len(slow)
            if self.exact:
                R = torch.linalg.qr(torch.cat([self.theta, self.y], 1), mode="r")[1]
                F = self.F
                _lstsq_from_r(slow, R[:F, :F].cpu().numpy(), R[:F, F:].cpu().numpy(), out)
            else:
                self._soft(slow, masks, targets, out)
        return out

    def _soft(self, slow, masks, targets, out) -> None:
        """Batched :func:`_soft_lstsq` (Tikhonov at the cut), as the numpy backend does."""
        torch = self.torch
        rows = np.array([r[0] for _, r, _ in slow])
        it, A, B, valid = self._systems(masks[rows], targets[rows], 0.0)
        vf = valid.to(A.dtype)
        anorm = (A.abs() * vf[:, :, None] * vf[:, None, :]).sum(1).amax(-1)
        A = A + torch.diag_embed(vf * (unbias_cond() ** 2 * anorm)[:, None])
        L, info = torch.linalg.cholesky_ex(A)
        sol = torch.cholesky_solve(B[..., None], L)[..., 0]
        sol = torch.where(valid, sol, torch.zeros_like(sol))
        res = self._scatter(it, sol)
        bad = info.cpu().numpy() != 0
        for j, r in enumerate(rows):
            idx = np.flatnonzero(masks[r])
            if bad[j]:
                k = targets[r]
                out[r, idx] = _eig_lstsq(self.stats.G[idx][:, idx], self.stats.b[idx, k][:, None])[0]
            else:
                out[r] = res[j]

    def _refine(self, rows, masks, targets, out, max_steps: int = 4) -> None:
        """Iterative refinement with the data residual, batched as two GEMMs per step."""
        torch = self.torch
        tg = torch.as_tensor(targets[rows], device=self.device)
        it, A, _, valid = self._systems(masks[rows], targets[rows], 0.0)
        L, _ = torch.linalg.cholesky_ex(A)
        C = torch.as_tensor(out[rows], device=self.device)  # (S, F)
        for _ in range(max_steps):
            g = (self.theta.T @ (self.y[:, tg] - self.theta @ C.T)).T  # (S, F)
            rhs = torch.gather(torch.cat([g, torch.zeros_like(g[:, :1])], 1), 1, it)
            d = torch.cholesky_solve(rhs[..., None], L)[..., 0]
            d = torch.where(valid, d, torch.zeros_like(d))
            d_full = torch.zeros((len(rows), self.F + 1), dtype=torch.float64, device=self.device)
            d_full.scatter_(1, it, d)
            C = C + d_full[:, : self.F]
            if float((d.abs().amax() / C.abs().amax().clamp_min(1e-300))) < 1e-14:
                break
        out[rows] = C.cpu().numpy()


# --------------------------------------------------------------------------------------------
# the algorithm
# --------------------------------------------------------------------------------------------
def _check_thresholds(thresholds) -> np.ndarray:
    thr = np.atleast_1d(np.asarray(thresholds, dtype=np.float64)).ravel()
    if thr.size == 0:
        raise ValueError("need at least one threshold")
    if not np.all(np.isfinite(thr)) or np.any(thr < 0):
        raise ValueError("thresholds must be finite and nonnegative")
    return thr


def column_norms(stats: GramStats) -> np.ndarray:
    """‖Θ_j‖₂ of every library column, from the Gram's diagonal (a zero column counts as 1)."""
    norms = np.sqrt(np.clip(np.diag(stats.G), 0.0, None))
    return np.where(norms > 0, norms, 1.0)


def normalized_stats(stats: GramStats) -> tuple[GramStats, np.ndarray]:
    """The statistics of ``Θ / ‖Θ_j‖₂`` (pysindy's ``normalize_columns``) and the norms."""
    norms = column_norms(stats)
    d = 1.0 / norms
    return GramStats(stats.G * d[:, None] * d[None, :], stats.b * d[:, None], stats.yy, stats.n_samples,
                     stats.y_sum), norms


def _check_allowed(allowed, K: int, F: int) -> np.ndarray | None:
    if allowed is None:
        return None
    a = np.asarray(allowed, dtype=bool)
    if a.shape != (K, F):
        raise ValueError(f"allowed must have shape {(K, F)} (targets, features), got {a.shape}")
    return a


def _run(solver, thr: np.ndarray, alpha: float, max_iter: int, unbias: bool, warn: bool, allowed=None):
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


def _validate(theta, y):
    theta = np.asarray(theta, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if theta.ndim != 2 or y.ndim != 2 or theta.shape[0] != y.shape[0]:
        raise ValueError(f"theta must be (n_samples, n_features) and y (n_samples, n_targets); got {theta.shape} and {y.shape}")
    if theta.shape[0] == 0 or theta.shape[1] == 0:
        raise ValueError("empty library matrix")
    return theta, y


_NONFINITE = "theta or y contains NaN or inf (or values whose squares overflow); drop or interpolate those samples first"


def _check_stats(stats: GramStats) -> GramStats:
    # any NaN/inf in theta or y reaches G, b or yy (O(F^2) instead of a pass over the data)
    if not (np.isfinite(stats.G).all() and np.isfinite(stats.b).all() and np.isfinite(stats.yy).all()):
        raise ValueError(_NONFINITE)
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
    thr = _check_thresholds(thresholds)
    is_torch = type(theta).__module__.startswith("torch")
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
        solver = _TorchSolver(th, yt, exact=exact)
        _check_stats(solver.stats)
        gram = solver.stats
        if norms is not None:  # the statistics of the data as given (refits, errors)
            s_ = solver.stats
            gram = GramStats(s_.G * norms[:, None] * norms[None, :], s_.b * norms[:, None], s_.yy, s_.n_samples, s_.y_sum)
    else:
        theta, y = _validate(theta, y)
        gram = _check_stats(GramStats.from_data(theta, y))
        stats, norms = normalized_stats(gram) if normalize_columns else (gram, None)
        solver = _NumpySolver(stats, theta if norms is None else theta / norms, y, exact=exact, cancel=cancel)
    allowed = _check_allowed(allowed, solver.stats.n_targets, solver.stats.n_features)
    with single_threaded_blas():
        coef, info = _run(solver, thr, float(alpha), int(max_iter), unbias, warn, allowed)
    if norms is not None:
        coef, info.biased_coef = coef / norms, info.biased_coef / norms
        info.extra["feature_norms"] = norms
    info.extra["gram"] = gram
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
    thr = _check_thresholds(thresholds)
    _check_stats(stats)
    gram = stats
    stats, norms = normalized_stats(gram) if normalize_columns else (gram, None)
    if device is not None:
        solver = _TorchSolver(None, None, exact=False, stats=stats, device=device)
    else:
        if theta is not None:
            theta, y = _validate(theta, y)
            if norms is not None:
                theta = theta / norms
        solver = _NumpySolver(stats, theta, y, exact=exact and theta is not None, cancel=cancel)
    allowed = _check_allowed(allowed, stats.n_targets, stats.n_features)
    with single_threaded_blas():
        coef, info = _run(solver, thr, float(alpha), int(max_iter), unbias, warn, allowed)
    if norms is not None:
        coef, info.biased_coef = coef / norms, info.biased_coef / norms
        info.extra["feature_norms"] = norms
    info.extra["gram"] = gram
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
    solver = _NumpySolver(stats)
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
