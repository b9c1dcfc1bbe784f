"""The torch STLSQ solver: padded, batched ``cholesky_ex``/``cholesky_solve`` per size bucket.

Used when a ``device`` is given (GPU if there is one); the same rules as
:class:`~engine.sindy.solver_numpy.NumpySolver`, with the rare fallbacks on the CPU.
"""

from __future__ import annotations

import numpy as np

from ._linalg import RCOND_FAST, RCOND_REFINE, eig_lstsq, eig_ridge, lstsq_from_r, sk_svd_ridge, unbias_cond
from .gram import GramStats

__all__ = ["TorchSolver"]


class TorchSolver:
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
            if stats is None:
                raise ValueError("the torch solver needs the data (theta_t, y_t) or their GramStats")
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
        out: list[np.ndarray] = []
        cur: list[int] = []
        lo = 0.0  # the smallest size of the current bucket
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
                    res[j, idx] = sk_svd_ridge(Xs, self.y[:, k].cpu().numpy()[:, None], alpha)[0]
                else:
                    res[j, idx] = eig_ridge(self.stats.G[idx][:, idx], self.stats.b[idx, k][:, None], alpha)[0]
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
                lstsq_from_r(slow, R[:F, :F].cpu().numpy(), R[:F, F:].cpu().numpy(), out)
            else:
                self._soft(slow, masks, targets, out)
        return out

    def _soft(self, slow, masks, targets, out) -> None:
        """Batched :func:`soft_lstsq` (Tikhonov at the cut), as the numpy backend does."""
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
                out[r, idx] = eig_lstsq(self.stats.G[idx][:, idx], self.stats.b[idx, k][:, None])[0]
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
