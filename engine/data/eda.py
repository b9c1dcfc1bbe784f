"""Exploratory analysis of a retina recording (seed 000, part 1).

Sparsity of the firing rates, their histogram, firing-rate rises and the
distribution of their lag after scene changes (about 8-12 frames in the real
data), and the frames before a chosen rise with the response trace (the seed's
``plot_spike_images``).

Scene changes are detected from the stimulus itself, never read from a
generator's ground truth, so this runs on real files: the score of frame ``t``
is the mean absolute difference to frame ``t - 1`` after the best one-pixel
shift, which is about zero under fixational jitter and large at a change.
The stimulus is streamed from the file in blocks, so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data.errors import DataError
from engine.data.h5tree import open_h5
from engine.data.retina import DEFAULT_RESPONSE, inspect_retina, load_retina
from engine.resources import require_memory

__all__ = [
    "sparsity",
    "rate_histogram",
    "frame_change_score",
    "detect_scene_changes",
    "detect_rises",
    "rise_lags",
    "lag_histogram",
    "frames_before_rise",
    "RiseExample",
    "RetinaEDA",
    "retina_eda",
    "rise_example",
]


def _rates2d(responses: np.ndarray) -> np.ndarray:
    r = np.asarray(responses, dtype=np.float64)
    if r.ndim == 1:
        r = r[None]
    if r.ndim != 2 or r.size == 0:
        raise DataError(f"responses must be a non-empty (cells, T) array, got shape {np.shape(responses)}")
    return r


def sparsity(responses: np.ndarray) -> np.ndarray:
    """Fraction of exactly-zero rates per cell, shape (cells,)."""
    r = _rates2d(responses)
    return (r == 0).mean(axis=1)


def rate_histogram(responses: np.ndarray, bins: int = 30, nonzero_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Histogram (counts, edges) of rates over all cells; zeros left out by default (they dominate)."""
    r = _rates2d(responses).ravel()
    if nonzero_only:
        r = r[r != 0]
    if r.size == 0:
        return np.zeros(bins, np.int64), np.linspace(0, 1, bins + 1)
    return np.histogram(r, bins=bins)


def _as_unit(frames: np.ndarray) -> np.ndarray:
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) * np.float32(1 / 255)
    return frames.astype(np.float32, copy=False)


def _shift_score(prev: np.ndarray, cur: np.ndarray, max_shift: int) -> np.ndarray:
    """min over shifts |dy|,|dx| <= max_shift of mean |cur - shifted prev| on the interior."""
    m = max_shift
    H, W = cur.shape[1:]
    if H <= 2 * m or W <= 2 * m:
        return np.abs(cur - prev).mean(axis=(1, 2))
    out = np.zeros(len(cur), np.float32)
    # Repeated frames (no jitter step) score 0 without the 9-shift search.
    moved = np.flatnonzero((cur != prev).reshape(len(cur), -1).any(axis=1))
    if moved.size == 0:
        return out
    cur, prev = cur[moved], prev[moved]
    core = cur[:, m : H - m, m : W - m]
    best = None
    buf = np.empty_like(core)
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            np.subtract(core, prev[:, m + dy : H - m + dy, m + dx : W - m + dx], out=buf)
            d = np.abs(buf, out=buf).mean(axis=(1, 2))
            best = d if best is None else np.minimum(best, d)
    out[moved] = best
    return out


def frame_change_score(stimulus: np.ndarray, max_shift: int = 1, block: int = 2048) -> np.ndarray:
    """Per-frame change score (T,): jitter-compensated mean |frame t - frame t-1|; score[0] = 0.

    ``stimulus`` is (T, H, W), uint8 (scaled by 1/255) or float in [0, 1]; it may
    be an ``h5py.Dataset`` (read block by block).
    """
    if len(stimulus.shape) != 3:
        raise DataError(f"stimulus must be (T, H, W), got shape {stimulus.shape}")
    T = stimulus.shape[0]
    score = np.zeros(T, np.float32)
    prev_last = None
    for a in range(0, T, block):
        x = _as_unit(np.asarray(stimulus[a : a + block]))
        if prev_last is not None:
            x_prev = np.concatenate([prev_last, x[:-1]])
            score[a : a + len(x)] = _shift_score(x_prev, x, max_shift)
        elif len(x) > 1:
            score[a + 1 : a + len(x)] = _shift_score(x[:-1], x[1:], max_shift)
        prev_last = x[-1:]
    return score


def detect_scene_changes(score: np.ndarray, threshold: float | None = None, min_gap: int = 3) -> np.ndarray:
    """Frames where a new scene starts: score above ``threshold``, at least ``min_gap`` apart.

    With ``threshold=None`` it is ``max(median + 8 * MAD, 0.25 * q99.5)``: far
    above jitter and sensor noise, well below a typical change.
    """
    s = np.asarray(score, dtype=np.float64)
    if threshold is None:
        med = np.median(s)
        mad = 1.4826 * np.median(np.abs(s - med))
        threshold = max(med + 8 * mad, 0.25 * float(np.quantile(s, 0.995)))
        threshold = max(threshold, 1e-6)
    idx = np.flatnonzero(s > threshold)
    if idx.size == 0 or min_gap <= 1:
        return idx.astype(np.int64)
    keep = [idx[0]]
    for i in idx[1:]:
        if i - keep[-1] >= min_gap:
            keep.append(i)
        elif s[i] > s[keep[-1]]:
            keep[-1] = i  # same change spread over two frames: keep the bigger jump
    return np.asarray(keep, dtype=np.int64)


def detect_rises(rate: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Frames where a rate crosses above ``threshold`` from at or below it (the seed: rate > 0)."""
    r = np.asarray(rate, dtype=np.float64)
    if r.ndim != 1:
        raise DataError(f"rate must be 1-D, got shape {r.shape}")
    above = r > threshold
    return (np.flatnonzero(above[1:] & ~above[:-1]) + 1).astype(np.int64)


def rise_lags(changes: np.ndarray, rises: np.ndarray, max_lag: int = 30, first_only: bool = True) -> np.ndarray:
    """Lag (frames) of each rise after the most recent scene change, if at most ``max_lag``.

    With ``first_only`` only the first rise after each change counts (one burst
    can cross zero several times).
    """
    changes = np.sort(np.asarray(changes, dtype=np.int64))
    rises = np.asarray(rises, dtype=np.int64)
    if changes.size == 0 or rises.size == 0:
        return np.zeros(0, np.int64)
    k = np.searchsorted(changes, rises, side="right") - 1
    ok = k >= 0
    lag = rises[ok] - changes[k[ok]]
    which = k[ok]
    inside = lag <= max_lag
    lag, which = lag[inside], which[inside]
    if first_only and lag.size:
        _, first = np.unique(which, return_index=True)
        lag = lag[first]
    return lag


def lag_histogram(lags: np.ndarray, max_lag: int = 30) -> np.ndarray:
    """Counts of lags 0..max_lag, shape (max_lag + 1,)."""
    lags = np.asarray(lags, dtype=np.int64)
    return np.bincount(lags[(lags >= 0) & (lags <= max_lag)], minlength=max_lag + 1)


@dataclass
class RiseExample:
    """Frames before a rise with the response trace (the seed's ``plot_spike_images``).

    Attributes
    ----------
    indices : ndarray of int, shape (n,)
        Frame numbers, the rise last.
    frames : ndarray, float32, shape (n, H, W)
    trace : ndarray, float32, shape (n,)
        Rate of the cell at those frames.
    """

    cell: int
    rise: int
    indices: np.ndarray
    frames: np.ndarray
    trace: np.ndarray


def frames_before_rise(stimulus: np.ndarray, rate: np.ndarray, rise: int, n: int = 10, cell: int = 0) -> RiseExample:
    """The ``n`` frames before ``rise`` and the rise frame itself, with the rate trace."""
    T = stimulus.shape[0]
    if not 0 <= rise < T:
        raise DataError(f"rise frame {rise} out of range 0..{T - 1}")
    a = max(0, rise - n)
    idx = np.arange(a, rise + 1)
    return RiseExample(cell, int(rise), idx, _as_unit(np.asarray(stimulus[a : rise + 1])), np.asarray(rate[a : rise + 1], np.float32))


@dataclass
class RetinaEDA:
    """Everything the EDA view shows for one split.

    Attributes
    ----------
    sparsity : ndarray, shape (cells,)
        Fraction of zero rates per cell.
    rate_counts, rate_edges : ndarray
        Histogram of non-zero rates.
    change_score : ndarray, shape (T,)
    scene_changes : ndarray of int
        Detected from the stimulus.
    rises : list of ndarray
        Rise frames per cell.
    lags : ndarray of int
        First-rise lag after each change, all cells pooled.
    lag_counts : ndarray, shape (max_lag + 1,)
    """

    path: Path
    split: str
    response_key: str
    n_frames: int
    n_cells: int
    sparsity: np.ndarray
    mean_rate: np.ndarray
    max_rate: np.ndarray
    rate_counts: np.ndarray
    rate_edges: np.ndarray
    change_score: np.ndarray
    scene_changes: np.ndarray
    rises: list[np.ndarray] = field(default_factory=list)
    cell_lags: list[np.ndarray] = field(default_factory=list)
    lags: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    lag_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    max_lag: int = 30

    @property
    def zero_fraction(self) -> float:
        return float(self.sparsity.mean())

    @property
    def lag_mode(self) -> int | None:
        return int(np.argmax(self.lag_counts)) if self.lag_counts.sum() else None

    @property
    def lag_median(self) -> float | None:
        return float(np.median(self.lags)) if self.lags.size else None

    def lag_fraction(self, lo: int = 8, hi: int = 12) -> float:
        """Fraction of first-rise lags in [lo, hi] (the seed: 8-12 frames)."""
        return float(((self.lags >= lo) & (self.lags <= hi)).mean()) if self.lags.size else float("nan")

    def table(self) -> list[dict]:
        """One row per cell: zero %, mean and max rate, rises, median lag."""
        rows = []
        for c in range(self.n_cells):
            lags = self.cell_lags[c] if c < len(self.cell_lags) else np.zeros(0)
            rows.append(
                dict(
                    cell=c,
                    zero_pct=100 * float(self.sparsity[c]),
                    mean_rate=float(self.mean_rate[c]),
                    max_rate=float(self.max_rate[c]),
                    rises=int(len(self.rises[c])) if c < len(self.rises) else 0,
                    median_lag=float(np.median(lags)) if len(lags) else float("nan"),
                )
            )
        return rows


def retina_eda(
    path: str | Path,
    split: str = "train",
    response_key: str = DEFAULT_RESPONSE,
    max_lag: int = 30,
    rise_threshold: float = 0.0,
    change_threshold: float | None = None,
    bins: int = 30,
) -> RetinaEDA:
    """Run the whole EDA on one split of a retina file (stimulus streamed, responses in memory)."""
    path = Path(path)
    layout = inspect_retina(path)
    if split not in layout.splits:
        raise DataError(f"{path}: no {split!r} split (have: {', '.join(layout.splits)})")
    # Responses are small (cells x T); load_retina validates them (NaN, negative, shape).
    data = load_retina(path, split, response_key, frames=(0, 1))
    del data
    with open_h5(path) as fh:
        rds = fh[split]["response"][response_key]
        # rates (float32, then float64 copies in the statistics) and one score per frame
        require_memory(rds.shape[1] * (rds.shape[0] * (4 + 8 * 2) + 8 * 2), f"{path}: EDA of /{split}",
                       {"frames": rds.shape[1], "cells": rds.shape[0]}, error=DataError)
        y = np.asarray(rds, dtype=np.float32)
        if not np.isfinite(y).all() or (y < 0).any():
            raise DataError(f"{path}: /{split}/response/{response_key} has NaN or negative rates")
        score = frame_change_score(fh[split]["stimulus"])
    changes = detect_scene_changes(score, change_threshold)
    rises = [detect_rises(y[c], rise_threshold) for c in range(y.shape[0])]
    cell_lags = [rise_lags(changes, r, max_lag) for r in rises]
    lags = np.concatenate(cell_lags) if cell_lags else np.zeros(0, np.int64)
    counts, edges = rate_histogram(y, bins)
    return RetinaEDA(
        path=path,
        split=split,
        response_key=response_key,
        n_frames=y.shape[1],
        n_cells=y.shape[0],
        sparsity=sparsity(y),
        mean_rate=y.mean(axis=1),
        max_rate=y.max(axis=1),
        rate_counts=counts,
        rate_edges=edges,
        change_score=score,
        scene_changes=changes,
        rises=rises,
        cell_lags=cell_lags,
        lags=lags,
        lag_counts=lag_histogram(lags, max_lag),
        max_lag=max_lag,
    )


def rise_example(
    path: str | Path, split: str, response_key: str, cell: int, rise: int, n: int = 10
) -> RiseExample:
    """:func:`frames_before_rise` reading only the frames needed from the file."""
    path = Path(path)
    with open_h5(path) as fh:
        if split not in fh or "stimulus" not in fh[split]:
            raise DataError(f"{path}: missing /{split}/stimulus")
        stim = fh[split]["stimulus"]
        try:
            rds = fh[split]["response"][response_key]
        except KeyError:
            raise DataError(f"{path}: missing /{split}/response/{response_key}") from None
        if not 0 <= cell < rds.shape[0]:
            raise DataError(f"cell {cell} out of range 0..{rds.shape[0] - 1}")
        a = max(0, rise - n)
        if not 0 <= rise < stim.shape[0]:
            raise DataError(f"rise frame {rise} out of range 0..{stim.shape[0] - 1}")
        frames = _as_unit(np.asarray(stim[a : rise + 1]))
        trace = np.asarray(rds[cell, a : rise + 1], np.float32)
    return RiseExample(cell, int(rise), np.arange(a, rise + 1), frames, trace)
