"""How every metric reads its arguments: ``(y_true, y_pred)`` paired as (samples, cells),
and a diverged prediction (any NaN or inf) carried as NaN, never as a huge number."""

from __future__ import annotations

import numpy as np


def _as_2d(a: np.ndarray) -> np.ndarray:
    """(..., cells) -> (samples, cells); 1-D is one cell."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        raise ValueError("expected an array with at least one axis, got a scalar")
    if a.ndim == 1:
        return a[:, None]
    return a.reshape(-1, a.shape[-1])


def _pair(y_true, y_pred, *, allow_nan_true: bool = False) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    if t.size == 0:
        raise ValueError("cannot score empty arrays")
    if not allow_nan_true and not np.all(np.isfinite(t)):
        raise ValueError("y_true contains NaN or inf; clean the target before scoring")
    return _as_2d(t), _as_2d(p)


def _bad_cells(p2: np.ndarray) -> np.ndarray:
    """Cells whose prediction has any non-finite value (diverged)."""
    return ~np.all(np.isfinite(p2), axis=0)


def _finish(per_cell_vals: np.ndarray, overall: float, bad: np.ndarray, per_cell: bool):
    per_cell_vals = np.where(bad, np.nan, per_cell_vals)
    if per_cell:
        return per_cell_vals
    return float("nan") if bad.any() else float(overall)


def is_diverged(y_pred) -> bool:
    """True when a prediction holds any NaN or inf."""
    return not bool(np.all(np.isfinite(np.asarray(y_pred, dtype=float))))
