"""Dense least-squares pieces both STLSQ solvers share, each matching a scikit-learn rule.

* ridge: sklearn's ``_solve_svd`` fallback (:func:`sk_svd_ridge`) and its Gram-only twin;
* unbias: ``scipy.linalg.lstsq(X_S, y, cond)`` as pysindy's ``LinearRegression`` calls it
  (:func:`exact_lstsq`), its truncated-SVD form from one QR (:func:`lstsq_from_r`), and the
  Gram-only approximations (:func:`eig_lstsq`, :func:`soft_lstsq`).
"""

from __future__ import annotations

from typing import cast

import numpy as np

__all__ = ["ZERO_TOL", "RCOND_FAST", "RCOND_REFINE", "unbias_cond", "sk_svd_ridge", "eig_ridge", "eig_lstsq",
           "soft_lstsq", "put_rows", "group_by_mask", "exact_lstsq", "lstsq_from_r"]

ZERO_TOL = 1e-14  # pysindy: ind_ = |coef_| > 1e-14 before the unbias refit
LSTSQ_COND = 1e-6  # sklearn >= 1.9: LinearRegression(tol=1e-6) -> scipy.linalg.lstsq(cond=1e-6)
SVD_RIDGE_CUTOFF = 1e-15  # sklearn _solve_svd keeps s > 1e-15
RCOND_FAST = 1e-10  # Cholesky unbias only when pocon's reciprocal condition is above this
RCOND_REFINE = 1e-6  # ... and refined with the data residual when below this

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


def sk_svd_ridge(Xs: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    """sklearn's ``_solve_svd`` (its fallback when the Cholesky fails); returns (n_rhs, m)."""
    U, s, Vt = np.linalg.svd(Xs, full_matrices=False)
    idx = s > SVD_RIDGE_CUTOFF
    d = np.zeros_like(s)
    d[idx] = s[idx] / (s[idx] ** 2 + alpha)
    return (Vt.T @ (d[:, None] * (U.T @ Y))).T


def eig_ridge(Gs: np.ndarray, Bs: np.ndarray, alpha: float) -> np.ndarray:
    """Gram-only version of the SVD ridge: eigen-decomposition of ``G_S``; returns (n_rhs, m)."""
    w, V = np.linalg.eigh(Gs)
    s = np.sqrt(np.clip(w, 0.0, None))
    keep = s > SVD_RIDGE_CUTOFF
    d = np.zeros_like(w)
    d[keep] = 1.0 / (w[keep] + alpha)
    return (V @ (d[:, None] * (V.T @ Bs))).T


def eig_lstsq(Gs: np.ndarray, Bs: np.ndarray, cond: float | None = None) -> np.ndarray:
    """Truncated least squares from the Gram alone (``s < cond * s_max`` dropped); (n_rhs, m)."""
    cond = unbias_cond() if cond is None else cond
    w, V = np.linalg.eigh(Gs)
    s = np.sqrt(np.clip(w, 0.0, None))
    keep = s > cond * s.max() if s.size and s.max() > 0 else np.zeros_like(s, dtype=bool)
    d = np.zeros_like(w)
    d[keep] = 1.0 / w[keep]
    return (V @ (d[:, None] * (V.T @ Bs))).T


def soft_lstsq(A: np.ndarray, Bs: np.ndarray, potrf, potrs) -> np.ndarray:
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
        return eig_lstsq(G0, Bs)
    X, _ = potrs(L, Bs, lower=1)
    return X.T


def put_rows(out: np.ndarray, rows: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> None:
    """``out[rows][:, idx] = vals`` without ``np.ix_`` for the usual single row."""
    if len(rows) == 1:
        out[rows[0], idx] = vals[0]
    else:
        out[np.ix_(rows, idx)] = vals


def group_by_mask(masks: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Groups of identical rows: [(support indices, row numbers)]."""
    if len(masks) == 0:
        return []
    packed = np.packbits(masks, axis=1)
    groups: dict[bytes, list[int]] = {}
    for i, row in enumerate(packed):
        groups.setdefault(row.tobytes(), []).append(i)
    return [(np.flatnonzero(masks[rows[0]]), np.asarray(rows)) for rows in groups.values()]


def exact_lstsq(slow, theta: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
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
            put_rows(out, rows, idx, lstsq(theta[:, idx], y[:, tg], cond=unbias_cond())[0].T)
        return
    # numpy's stub types every mode as (Q, R); mode="r" returns R alone
    R = cast(np.ndarray, np.linalg.qr(np.concatenate([theta, y], axis=1), mode="r"))
    lstsq_from_r(slow, R[:F, :F], R[:F, F:], out)


def lstsq_from_r(slow, R: np.ndarray, qty: np.ndarray, out: np.ndarray) -> None:
    for idx, rows, tg in slow:
        U, s, Vt = np.linalg.svd(R[:, idx], full_matrices=False)
        keep = s > unbias_cond() * s[0] if s.size and s[0] > 0 else np.zeros(s.shape, dtype=bool)
        z = (U[:, keep].T @ qty[:, tg]) / s[keep][:, None]
        put_rows(out, rows, idx, (Vt[keep].T @ z).T)
