"""The Pareto front of complexity against error, and the knee PySR would pick on it."""

from __future__ import annotations

import numpy as np

__all__ = ["pareto_front", "knee_point"]


def pareto_front(complexity, error) -> np.ndarray:
    """Boolean mask of the points not dominated in (complexity, error), both minimised.

    Ties (same complexity and error) are all kept; non-finite errors never make the front
    unless every error is non-finite.
    """
    c = np.asarray(complexity, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    finite = np.isfinite(e)
    if not finite.any():
        return np.zeros(len(c), dtype=bool)
    on = np.zeros(len(c), dtype=bool)
    best = np.inf
    for ci in np.unique(c[finite]):
        sel = finite & (c == ci)
        emin = e[sel].min()
        if emin < best:
            on |= sel & (e == emin)
            best = emin
    return on


def knee_point(complexity, error, on_front=None, loss_factor: float = 1.5) -> tuple[int, np.ndarray]:
    """PySR-style choice on the front: ``score = -Δlog(error)/Δcomplexity``.

    Returns ``(index of the chosen point, score per point)`` (score is NaN off the front).  The
    chosen point has the highest score among front points whose error is at most
    ``loss_factor`` times the lowest error.  ``-1`` if there is no front.
    """
    c = np.asarray(complexity, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    on = pareto_front(c, e) if on_front is None else np.asarray(on_front, dtype=bool)
    score = np.full(len(c), np.nan)
    idx = np.flatnonzero(on)
    if len(idx) == 0:
        return -1, score
    order = idx[np.lexsort((e[idx], c[idx]))]
    tiny = np.finfo(float).tiny
    cur_c, cur_score, prev_le = None, 0.0, 0.0
    for i in order:
        le = np.log(max(e[i], tiny))
        if cur_c is not None and c[i] == cur_c:  # duplicates of a front point
            score[i] = cur_score
            continue
        cur_score = 0.0 if cur_c is None else -(le - prev_le) / (c[i] - cur_c)
        score[i] = cur_score
        cur_c, prev_le = c[i], le
    emin = e[idx].min()
    ok = idx[e[idx] <= loss_factor * emin] if np.isfinite(emin) else idx
    best = ok[np.argmax(score[ok])]
    # among ties, the simplest
    ties = ok[score[ok] == score[best]]
    best = ties[np.argmin(c[ties])]
    return int(best), score
