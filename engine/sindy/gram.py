"""Sufficient statistics of a least-squares problem: ``Θᵀ Θ``, ``Θᵀ y``, ``Σ y²``.

STLSQ needs nothing else: every ridge solve of every iteration, target and threshold is a small
masked solve on the Gram, and the training error of any coefficient matrix is ``O(F²)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._blas import gram_blas_threads
from .errors import check_cancel

__all__ = ["GramStats", "normalized_stats", "column_norms"]

GRAM_BLOCK_FLOPS = 5e7  # rows per block of the Gram product: ~25 ms of an idle core, ~0.2 s of a busy one


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

    def column_sums(self) -> np.ndarray:
        """``Σ y`` per target; statistics made from data have it, older stored ones may not."""
        if self.y_sum is None:
            raise ValueError("these statistics were stored without the sums of y")
        return self.y_sum

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

