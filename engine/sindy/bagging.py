"""Bagged STLSQ fits (pysindy's ensembling) with per-term inclusion probabilities.

The default ``method="blocks"`` resamples contiguous blocks of samples: the Gram of each block
is computed once and each bag's Gram is a weighted sum of them, so 100 bags cost about one fit;
``method="samples"`` is the plain bootstrap (a Gram per bag, run in parallel through
:func:`engine.parallel.pmap`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .design import check_params, library_matrix, make_library, prepare
from .gram import GramStats
from .model import Sindy
from .stlsq_algorithm import stlsq_gram

__all__ = ["EnsembleResult", "ensemble"]


@dataclass
class EnsembleResult:
    """Bagged STLSQ models.

    Attributes
    ----------
    coefs : ndarray (n_models, n_states, n_features)
    inclusion : ndarray (n_states, n_features)
        Fraction of models in which each term is nonzero.
    coef_median, coef_mean, coef_std : ndarray (n_states, n_features)
    """

    coefs: np.ndarray
    inclusion: np.ndarray
    coef_median: np.ndarray
    coef_mean: np.ndarray
    coef_std: np.ndarray
    feature_names: list[str]
    state_names: list[str]
    threshold: float
    method: str

    def table(self, min_inclusion: float = 0.0):
        """Long table: state, term, inclusion, median, mean, std (sorted by inclusion)."""
        import pandas as pd

        K, F = self.inclusion.shape
        df = pd.DataFrame(
            {
                "state": np.repeat(self.state_names, F),
                "term": np.tile(self.feature_names, K),
                "inclusion": self.inclusion.ravel(),
                "median": self.coef_median.ravel(),
                "mean": self.coef_mean.ravel(),
                "std": self.coef_std.ravel(),
            }
        )
        df = df[df["inclusion"] > min_inclusion] if min_inclusion > 0 else df[df["inclusion"] > 0]
        return df.sort_values(["state", "inclusion"], ascending=[True, False], kind="stable").reset_index(drop=True)

    def consensus(self, min_inclusion: float = 0.5) -> np.ndarray:
        """Median coefficients of the terms kept in at least ``min_inclusion`` of the models."""
        return np.where(self.inclusion >= min_inclusion, self.coef_median, 0.0)


def ensemble(
    x,
    t=None,
    u=None,
    *,
    model: Sindy | None = None,
    n_models: int = 50,
    method: str = "blocks",
    n_blocks: int = 40,
    replace: bool = True,
    subset_fraction: float | None = None,
    threshold: float | None = None,
    x_dot=None,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    backend: str | None = None,
    feature_names=None,
    control_names=None,
) -> EnsembleResult:
    """Bagging over samples with per-term inclusion probabilities.

    ``method="blocks"``: contiguous blocks of samples resampled (``replace=True``: bootstrap of
    ``n_blocks`` blocks; else a ``subset_fraction`` (default 0.6) of them without replacement);
    each bag's Gram is the weighted sum of block Grams.  ``method="samples"``: bootstrap (or
    subset) of individual samples, one Gram per bag.  The per-bag STLSQ solves run through
    :func:`engine.parallel.pmap` on the session's backend (threads on this machine by default:
    numpy releases the GIL); ``n_jobs``/``backend`` override it for this call.
    """
    from engine.parallel import pmap  # joblib/dask only when bagging

    model = Sindy() if model is None else model
    check_params(model)
    if n_models < 1:
        raise ValueError("n_models must be >= 1")
    if method not in ("blocks", "samples"):
        raise ValueError("method must be 'blocks' or 'samples'")
    thr = float(model.threshold if threshold is None else threshold)
    xl, ul, yl, names, cnames = prepare(model, x, t, u, x_dot, feature_names, control_names)
    n, m_ctrl = xl[0].shape[1], (0 if ul is None else ul[0].shape[1])
    lib = make_library(model, n + m_ctrl)
    theta = library_matrix(lib, xl, ul)
    Y = np.concatenate(yl)
    N = theta.shape[0]
    rng = np.random.default_rng(random_state)
    frac = 0.6 if subset_fraction is None else float(subset_fraction)

    def solve(stats):
        return stlsq_gram(stats, thr, model.alpha, model.max_iter, unbias=model.unbias, warn=False)[0]

    if method == "blocks":
        nb = int(min(max(n_blocks, 2), N))
        edges = np.linspace(0, N, nb + 1).round().astype(int)
        blocks = [GramStats.from_data(theta[a:b], Y[a:b]) for a, b in zip(edges[:-1], edges[1:])]
        Gs = np.stack([bk.G for bk in blocks])
        bs = np.stack([bk.b for bk in blocks])
        yys = np.stack([bk.yy for bk in blocks])
        ysum = np.stack([bk.column_sums() for bk in blocks])
        ns = np.array([bk.n_samples for bk in blocks])
        if replace:
            W = rng.multinomial(nb, np.full(nb, 1.0 / nb), size=n_models).astype(np.float64)
        else:
            k = max(1, int(round(frac * nb)))
            W = np.zeros((n_models, nb))
            for i in range(n_models):
                W[i, rng.choice(nb, size=k, replace=False)] = 1.0
        bags = [
            GramStats(np.tensordot(w, Gs, 1), np.tensordot(w, bs, 1), w @ yys, int(w @ ns), w @ ysum)
            for w in W
        ]
        coefs = pmap(solve, bags, n_jobs=n_jobs, backend=backend, prefer="threads", message="ensemble")
    else:
        def bag(seed):
            r = np.random.default_rng(seed)
            if replace:
                w = np.bincount(r.integers(0, N, N), minlength=N).astype(np.float64)
            else:
                w = np.zeros(N)
                w[r.choice(N, size=max(1, int(round(frac * N))), replace=False)] = 1.0
            return solve(GramStats.from_data(theta, Y, weights=w))

        seeds = rng.integers(0, 2**63 - 1, size=n_models)
        coefs = pmap(bag, [int(s) for s in seeds], n_jobs=n_jobs, backend=backend, prefer="threads",
                     message="ensemble")
    C = np.stack(coefs)  # (M, K, F)
    return EnsembleResult(
        coefs=C,
        inclusion=(C != 0).mean(0),
        coef_median=np.median(C, axis=0),
        coef_mean=C.mean(0),
        coef_std=C.std(0),
        feature_names=lib.get_feature_names(names + cnames),
        state_names=names,
        threshold=thr,
        method=method,
    )
