"""Linear-nonlinear (LN) baseline: a regularised Poisson GLM on the frame history.

The classic retina model (Chichilnisky 2001; Pillow et al. 2008): each cell's rate is
``exp(b + sum_k w_k . x_k(t))`` where ``x_k(t)`` is the stimulus, pooled to a coarse grid,
filtered in time by the ``k``-th raised-cosine basis function.  The weights minimise the
Poisson negative log-likelihood plus ``alpha * |w|^2`` (full-batch L-BFGS), and ``alpha``
is picked on a held-out block.  It is a baseline: a CfC that cannot beat it has learned
nothing an LN model would not.

Note on the synthetic retina (``engine.data.retina_gen``): its cells fire on the *absolute*
value of their linear drive (ON-OFF), which an LN model with a monotonic nonlinearity can
follow on one polarity only; that is a fact about the data, reported, not hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["LNConfig", "LNModel", "temporal_basis"]


@dataclass(frozen=True)
class LNConfig:
    """Shape of the LN model's features.

    Parameters
    ----------
    lags : int
        Frames of history the temporal filter spans (the synthetic filters are 30 long).
    n_basis : int
        Raised-cosine temporal basis functions spread over ``lags``.
    pool : int
        Side of the square pixel blocks averaged into one input (50 x 50 -> 10 x 10 at 5).
    alphas : tuple of float
        Ridge strengths tried; the one with the best held-out likelihood is kept.
    """

    lags: int = 30
    n_basis: int = 10
    pool: int = 5
    alphas: tuple[float, ...] = (1e-3, 1e-2, 1e-1)

    def validate(self) -> None:
        if self.lags < 1 or self.n_basis < 1 or self.pool < 1:
            raise ValueError(f"LNConfig needs lags, n_basis and pool >= 1, got {self}")
        if not self.alphas or min(self.alphas) < 0:
            raise ValueError("LNConfig.alphas must be non-empty and non-negative")


def temporal_basis(lags: int, n_basis: int) -> np.ndarray:
    """(n_basis, lags) raised-cosine bumps tiling lags 0..lags-1 (they sum to ~1 inside)."""
    if n_basis == 1:
        return np.ones((1, lags)) / lags
    centres = np.linspace(0, lags - 1, n_basis)
    width = centres[1] - centres[0]
    t = np.arange(lags)[None, :]
    d = np.clip((t - centres[:, None]) / (2 * width), -0.5, 0.5)
    return 0.5 * (1 + np.cos(2 * np.pi * d))


class LNModel:
    """Poisson GLM with an exponential nonlinearity on pooled, time-filtered frames.

    ``fit(stim, resp, val=(stim, resp))`` then ``predict(stim)``; ``stim`` is
    (T, H, W) float (standardised like the CfC's input), ``resp`` (T, cells).

    Attributes
    ----------
    coef_ : ndarray (n_features, cells)
    intercept_ : ndarray (cells,)
    alpha_ : float
        The ridge strength chosen on the held-out block.
    val_nll_ : dict
        alpha -> mean held-out Poisson NLL per bin.
    """

    def __init__(self, config: LNConfig | None = None):
        self.config = config or LNConfig()

    # ---- features
    def features(self, stim: np.ndarray) -> np.ndarray:
        """(T, n_basis * pooled pixels) float32; frames before the first count as zero."""
        from scipy.signal import lfilter

        cfg = self.config
        stim = np.asarray(stim, dtype=np.float32)
        T, H, W = stim.shape
        h, w = H // cfg.pool, W // cfg.pool
        if h < 1 or w < 1:
            raise ValueError(f"frames of {H}x{W} are smaller than the {cfg.pool}-pixel pooling")
        pooled = stim[:, : h * cfg.pool, : w * cfg.pool].reshape(T, h, cfg.pool, w, cfg.pool).mean((2, 4))
        pooled = pooled.reshape(T, h * w)
        basis = temporal_basis(cfg.lags, cfg.n_basis)
        return np.concatenate([lfilter(b, [1.0], pooled, axis=0).astype(np.float32) for b in basis], axis=1)

    # ---- fitting
    @staticmethod
    def _solve(X, Y, alpha: float, w0=None, iters: int = 80):
        import torch

        Xt = torch.as_tensor(X, dtype=torch.float32)  # float32: the fit is a few seconds, not a minute
        Yt = torch.as_tensor(Y, dtype=torch.float32)
        n, d = Xt.shape
        W = torch.zeros(d + 1, Yt.shape[1]) if w0 is None else torch.as_tensor(w0, dtype=torch.float32).clone()
        if w0 is None:  # start at the mean rate, so the first steps do not overflow exp
            W[-1] = torch.log(Yt.mean(0).clamp_min(1e-6))
        W.requires_grad_(True)
        opt = torch.optim.LBFGS([W], lr=1, max_iter=iters, history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-7, tolerance_change=1e-10)

        def closure():
            opt.zero_grad()
            eta = (Xt @ W[:-1] + W[-1]).clamp(max=20)
            loss = (torch.exp(eta) - Yt * eta).mean() + alpha * (W[:-1] ** 2).sum() / Yt.shape[1]
            loss.backward()
            return loss

        opt.step(closure)
        return W.detach().numpy()

    @staticmethod
    def _nll(X, Y, W) -> float:
        eta = np.clip(X @ W[:-1] + W[-1], None, 20)
        return float(np.mean(np.exp(eta) - Y * eta))

    def fit(self, stim: np.ndarray, resp: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None = None,
            skip: int = 0) -> "LNModel":
        """Fit on ``stim``/``resp``; pick ``alpha`` on ``val`` (else the smallest), refit nothing.

        ``skip`` drops the first frames of each block from the loss (their history is partly
        before the block).  Features are standardised with the training block's statistics.
        """
        return self.fit_segments(stim, resp, [(0, len(stim))], [(0, len(val[0]))] if val is not None else None,
                                 skip=skip, val_stim=val)

    def fit_segments(self, stim: np.ndarray, resp: np.ndarray, segments: list[tuple[int, int]],
                     val_segments: list[tuple[int, int]] | None = None, skip: int | None = None,
                     val_stim: tuple[np.ndarray, np.ndarray] | None = None) -> "LNModel":
        """Fit on the frames of ``segments`` (recording blocks: no lag reaches into the block
        before), each segment's first ``skip`` frames (default: the lags) left out of the loss;
        ``alpha`` picked on ``val_segments`` (of ``val_stim`` when given, else of ``stim``)."""
        cfg = self.config
        cfg.validate()
        resp = np.asarray(resp, dtype=np.float64)
        if resp.ndim != 2 or resp.shape[0] != len(stim):
            raise ValueError(f"resp must be (T, cells) with T = {len(stim)}, got {resp.shape}")
        skip = cfg.lags if skip is None else skip
        X, Y = self._rows(stim, resp, segments, skip)
        self.mu_ = X.mean(0)
        self.sd_ = X.std(0) + 1e-8
        X = ((X - self.mu_) / self.sd_).astype(np.float32)
        Xv = Yv = None
        if val_segments is not None:
            vs, vr = val_stim if val_stim is not None else (stim, resp)
            Xv, Yv = self._rows(vs, np.asarray(vr, dtype=np.float64), val_segments, skip)
            Xv = (Xv - self.mu_) / self.sd_
        self.val_nll_: dict[float, float] = {}
        best, W = None, None
        # strongest penalty first: each fit warm-starts the next, weaker one
        for alpha in sorted(cfg.alphas, reverse=True):
            W = self._solve(X, Y, alpha, w0=W)
            score = self._nll(Xv, Yv, W) if Xv is not None else -alpha
            self.val_nll_[alpha] = score
            if best is None or score < best[0]:
                best = (score, alpha, W.copy())
        assert best is not None
        _, self.alpha_, Wb = best
        self.coef_, self.intercept_ = Wb[:-1], Wb[-1]
        return self

    def _rows(self, stim, resp, segments, skip: int) -> tuple[np.ndarray, np.ndarray]:
        """Features and targets of every segment, each computed on its own frames only."""
        xs = [self.features(stim[a:b])[skip:] for a, b in segments if b - a > skip]
        ys = [resp[a + skip:b] for a, b in segments if b - a > skip]
        if not xs:
            raise ValueError(f"no segment is longer than {skip} frames: nothing to fit")
        return np.concatenate(xs), np.concatenate(ys)

    def predict_segments(self, stim: np.ndarray, segments: list[tuple[int, int]]) -> np.ndarray:
        """Rates for the frames of ``segments``, concatenated; each segment's history starts at it."""
        return np.concatenate([self.predict(stim[a:b]) for a, b in segments])

    def predict(self, stim: np.ndarray) -> np.ndarray:
        """(T, cells) rates for every frame of ``stim`` (history before it counts as zero)."""
        if not hasattr(self, "coef_"):
            raise RuntimeError("LNModel is not fitted: call fit first")
        X = (self.features(stim) - self.mu_) / self.sd_
        return np.exp(np.clip(X @ self.coef_ + self.intercept_, None, 20))

    # ---- plain-data round trip (npz; nothing from a file runs)
    def to_arrays(self) -> dict[str, np.ndarray]:
        cfg = asdict(self.config)
        return {"coef": self.coef_, "intercept": self.intercept_, "mu": self.mu_, "sd": self.sd_,
                "alpha": np.float64(self.alpha_), "lags": np.int64(cfg["lags"]),
                "n_basis": np.int64(cfg["n_basis"]), "pool": np.int64(cfg["pool"])}

    @classmethod
    def from_arrays(cls, a) -> "LNModel":
        m = cls(LNConfig(lags=int(a["lags"]), n_basis=int(a["n_basis"]), pool=int(a["pool"])))
        m.coef_, m.intercept_ = np.asarray(a["coef"]), np.asarray(a["intercept"])
        m.mu_, m.sd_, m.alpha_ = np.asarray(a["mu"]), np.asarray(a["sd"]), float(a["alpha"])
        return m
