"""Scores against a generator's stored truth (issue 18).

Every function here compares what a method recovered with what the generator
knows.  Analyses call them only from their ``truth`` step, after fitting and
selection are done, so no truth array can steer a fit.
"""

from __future__ import annotations

import numpy as np


def r2_slope(true, pred) -> tuple[float, float]:
    """R² of ``pred`` against ``true`` (1 - SS_res/SS_tot) and the least-squares slope of pred on true."""
    t, q = np.asarray(true, float).ravel(), np.asarray(pred, float).ravel()
    ss_tot = float(((t - t.mean()) ** 2).sum())
    if ss_tot == 0:
        raise ValueError("true values are constant; R² is undefined")
    tc = t - t.mean()
    slope = float((tc * (q - q.mean())).sum() / (tc * tc).sum())
    return 1.0 - float(((t - q) ** 2).sum()) / ss_tot, slope


def adjusted_rand(labels, truth) -> float:
    """Adjusted Rand index of found labels against true classes (1 = same partition, ~0 = chance)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(np.asarray(truth), np.asarray(labels)))


def r2_per_row(true, pred) -> np.ndarray:
    """R² of each row of ``pred`` (k, G) against the same row of ``true``."""
    t, q = np.atleast_2d(np.asarray(true, float)), np.atleast_2d(np.asarray(pred, float))
    ss_tot = ((t - t.mean(1, keepdims=True)) ** 2).sum(1)
    ss_res = ((t - q) ** 2).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.nan)


def support_vs_truth(coef, true_coef, tol: float = 0.0) -> dict[str, np.ndarray]:
    """Terms found against the true support, per equation (row).

    ``coef``, ``true_coef``: (n_equations, n_terms).  A term is present where
    ``|coef| > tol``.  Returns per-row counts ``found`` (true terms present),
    ``missed`` (true terms absent), ``extra`` (terms present that the truth
    lacks), and ``exact`` (no miss, no extra).
    """
    c, t = np.asarray(coef, float), np.asarray(true_coef, float)
    if c.shape != t.shape:
        raise ValueError(f"coefficient shapes differ: {c.shape} vs {t.shape}")
    have, want = np.abs(c) > tol, t != 0
    found = (have & want).sum(1)
    missed = (~have & want).sum(1)
    extra = (have & ~want).sum(1)
    return {"found": found, "missed": missed, "extra": extra, "exact": (missed == 0) & (extra == 0)}
