"""The numpy/LAPACK STLSQ solver: ``potrf/potrs`` per unique system on the Gram.

Ridge solves on a support that lost few terms reuse ``(G + alpha I)⁻¹`` through a Schur
complement; unbias refits are Cholesky solves where ``G_S`` is well conditioned, refined with the
data residual when it is not quite, and pysindy's exact truncated least squares (or its Gram-only
damping, ``exact=False``) where it is ill-conditioned.
"""

from __future__ import annotations

import numpy as np

from ._linalg import (RCOND_FAST, RCOND_REFINE, eig_ridge, exact_lstsq, group_by_mask, put_rows, sk_svd_ridge,
                      soft_lstsq)
from .errors import check_cancel
from .gram import GramStats

__all__ = ["NumpySolver"]


class NumpySolver:
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
        self._schur: tuple[np.ndarray, np.ndarray] | None = None  # (M0⁻¹, M0⁻¹ b)
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
        for idx, rows in group_by_mask(masks):
            if len(idx) == 0:
                continue
            check_cancel(self.cancel)
            tg = targets[rows]
            n_drop = F - len(idx)
            if schur is not None and n_drop < 0.8 * len(idx):
                inv, x0 = schur
                if n_drop == 0:
                    put_rows(out, rows, idx, x0[:, tg].T)
                    continue
                keep = np.zeros(F, dtype=bool)
                keep[idx] = True
                drop = np.flatnonzero(~keep)
                inv_d = inv[drop]
                Mdd = inv_d[:, drop].T  # Fortran order (symmetric)
                z, info = self._potrs(self._potrf(Mdd, lower=1, overwrite_a=1, clean=0)[0], x0[drop][:, tg], lower=1)
                if info == 0 and np.all(np.isfinite(z)):
                    put_rows(out, rows, idx, (x0[idx][:, tg] - inv_d[:, idx].T @ z).T)
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
                    sol = sk_svd_ridge(self.theta[:, idx], self.y[:, tg], alpha)
                else:
                    sol = eig_ridge(self.stats.G[idx][:, idx], B, alpha)
            else:
                sol = X.T
            put_rows(out, rows, idx, sol)
        return out

    def lstsq(self, masks: np.ndarray, targets: np.ndarray) -> np.ndarray:
        F = self.stats.n_features
        out = np.zeros((len(masks), F))
        fast: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]] = []
        slow: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for idx, rows in group_by_mask(masks):
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
                put_rows(out, rows, idx, X.T)
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
                exact_lstsq(slow, self.theta, self.y, out)
            else:
                for idx, rows, tg in slow:
                    check_cancel(self.cancel)
                    put_rows(out, rows, idx, soft_lstsq(self._sub(idx), self.stats.b[idx][:, tg], self._potrf, self._potrs))
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
                put_rows(out, r, idx, cur + d.T)
                worst = max(worst, float(np.abs(d).max() / max(np.abs(cur).max(), 1e-300)))
                pos += n
            if worst < 1e-14:
                break
