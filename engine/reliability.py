"""Per-neuron reliability of responses to repeated images (seed 002).

:func:`reliability_table` puts, for every neuron, the leave-one-out oracle
correlation (:func:`engine.metrics.oracle_correlation`), the entropy of its
normalised tuning over images, the variance and mean of its image responses,
an IsolationForest outlier flag, its most correlated partner, and its place in
a Rastermap ordering (or, without ``rastermap``, in the first-PC ordering) in
one DataFrame.  :func:`reliable` applies the seed's filter (percentiles of
oracle correlation and variance, or absolute thresholds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.metrics import oracle_correlation

__all__ = ["reliability_table", "correlation_matrix", "response_entropy", "outliers", "sort_neurons", "reliable"]


def response_entropy(mean_responses: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each neuron's responses over images normalised to sum 1.

    High for a neuron that responds alike to every image, low for a selective one.
    """
    r = np.clip(np.asarray(mean_responses, float), 0, None)
    tot = r.sum(axis=0)
    p = np.divide(r, tot, out=np.full_like(r, 1.0 / len(r)), where=tot > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=0)
    return h


def correlation_matrix(mean_responses: np.ndarray) -> np.ndarray:
    """Neuron x neuron Pearson correlation of mean responses over images (NaN for flat neurons)."""
    x = np.asarray(mean_responses, float)
    x = x - x.mean(axis=0)
    sd = np.sqrt((x * x).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (x.T @ x) / np.outer(sd, sd)
    c[~np.isfinite(c)] = np.nan
    return c


def outliers(features: np.ndarray, contamination: float | str = "auto", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """IsolationForest on per-neuron features: (is_outlier bool, anomaly score; lower = odder)."""
    from sklearn.ensemble import IsolationForest

    f = np.asarray(features, float)
    f = np.nan_to_num((f - f.mean(0)) / np.where(f.std(0) > 0, f.std(0), 1.0))
    forest = IsolationForest(contamination=contamination, random_state=seed).fit(f)
    return forest.predict(f) == -1, forest.score_samples(f)


def sort_neurons(activity: np.ndarray, method: str = "auto") -> tuple[np.ndarray, str]:
    """Order neurons (rows of ``activity``, neurons x samples) so similar ones sit together.

    ``method`` is "rastermap" (the ``rastermap`` package, as in the seed), "pc1"
    (sort by the loading on the first principal component of the z-scored
    activity) or "auto" (rastermap if installed, else pc1).  Returns
    ``(order, method used)``.
    """
    if method not in ("auto", "rastermap", "pc1"):
        raise ValueError(f"sort method must be 'auto', 'rastermap' or 'pc1', got {method!r}")
    x = np.asarray(activity, float)
    sd = x.std(axis=1, keepdims=True)
    z = (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
    if method in ("auto", "rastermap"):
        try:
            from rastermap import Rastermap
        except ImportError:
            if method == "rastermap":
                raise ValueError("sort method 'rastermap' needs the rastermap package (pip install rastermap)") from None
        else:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                n_pcs = max(2, min(64, z.shape[0] - 1, z.shape[1] - 1))
                model = Rastermap(n_clusters=None, n_PCs=n_pcs, locality=0.15, time_lag_window=0,
                                  grid_upsample=0, verbose=False).fit(z.astype(np.float32))
            return np.asarray(model.isort), "rastermap"
    u, s, _ = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    return np.argsort(u[:, 0] * s[0], kind="stable"), "pc1"


def reliability_table(trials: np.ndarray, unit_ids=None, *, contamination: float | str = "auto",
                      sort: str = "auto", seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Reliability measures per neuron.

    Parameters
    ----------
    trials : array (repeats, images, neurons)
        Spike counts per repeat of every image.
    unit_ids : sequence, optional
        Index of the table (default 0..neurons-1).
    contamination : float or "auto"
        IsolationForest's expected outlier fraction.
    sort : {"auto", "rastermap", "pc1"}
        See :func:`sort_neurons`; sorted on trial-by-trial activity (neurons x presentations).
    seed : int
        The outlier forest's random state (the sort takes none).

    Returns
    -------
    table : DataFrame
        Columns ``oracle_corr``, ``entropy``, ``variance``, ``mean``,
        ``outlier``, ``anomaly_score``, ``best_partner``, ``best_partner_corr``,
        ``sort_rank``; one row per neuron.
    corr : ndarray (neurons, neurons)
        Correlation matrix of mean responses.
    info : dict
        ``sort_method`` actually used.
    """
    x = np.asarray(trials, float)
    if x.ndim != 3 or x.shape[0] < 2:
        raise ValueError(f"trials must be (repeats >= 2, images, neurons), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("trials contain NaN or inf")
    n = x.shape[2]
    mean = x.mean(axis=0)
    oracle = oracle_correlation(x, per_cell=True)
    ent = response_entropy(mean)
    var = mean.var(axis=0)
    corr = correlation_matrix(mean)
    off = np.where(np.eye(n, dtype=bool), np.nan, corr)
    has = ~np.all(np.isnan(off), axis=1)
    partner = np.full(n, -1)
    partner[has] = np.nanargmax(off[has], axis=1)
    partner_corr = np.where(has, off[np.arange(n), np.maximum(partner, 0)], np.nan)
    feats = np.column_stack([np.nan_to_num(oracle), ent, var, mean.mean(axis=0), np.nan_to_num(partner_corr)])
    if n >= 2:
        flag, score = outliers(feats, contamination, seed)
    else:
        flag, score = np.zeros(n, bool), np.zeros(n)
    order, used = sort_neurons(x.reshape(-1, n).T, sort) if n >= 3 else (np.arange(n), "none")
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)
    ids = np.arange(n) if unit_ids is None else np.asarray(unit_ids)
    table = pd.DataFrame({
        "oracle_corr": oracle, "entropy": ent, "variance": var, "mean": mean.mean(axis=0),
        "outlier": flag, "anomaly_score": score,
        "best_partner": np.where(partner >= 0, ids[np.maximum(partner, 0)], -1), "best_partner_corr": partner_corr,
        "sort_rank": rank,
    }, index=pd.Index(ids, name="unit_id"))
    return table, corr, {"sort_method": used}


def reliable(table: pd.DataFrame, *, oracle_percentile: float = 0.0, variance_percentile: float = 0.0,
             min_oracle: float = -1.0, drop_outliers: bool = False) -> np.ndarray:
    """Boolean mask of neurons passing the filter.

    The seed keeps neurons above the 60th percentile of oracle correlation and
    the 50th of variance (``oracle_percentile=60, variance_percentile=50``);
    ``min_oracle`` is an absolute floor; ``drop_outliers`` removes IsolationForest outliers.
    """
    for name, v in (("oracle_percentile", oracle_percentile), ("variance_percentile", variance_percentile)):
        if not 0 <= v <= 100:
            raise ValueError(f"{name} must be in [0, 100], got {v}")
    o = table["oracle_corr"].to_numpy(float)
    v = table["variance"].to_numpy(float)
    keep = np.isfinite(o) & (o >= min_oracle)
    if oracle_percentile > 0:
        keep &= o >= np.nanpercentile(o, oracle_percentile)
    if variance_percentile > 0:
        keep &= v >= np.nanpercentile(v, variance_percentile)
    if drop_outliers:
        keep &= ~table["outlier"].to_numpy(bool)
    return keep
