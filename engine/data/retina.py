"""Loader for retina recordings in the deep-retina ``naturalscene.h5`` layout.

Layout read (real files and :mod:`engine.data.retina_gen` output alike)::

    /<split>/stimulus              (T, H, W) uint8 frames (divided by 255 here)
    /<split>/response/<key>        (cells, T) rates, e.g. firing_rate_10ms
    /<split>/time                  (T,) optional; where it jumps, a new recording block starts
    /test/repeats/cell01 ...       (repeats, T) single trials of the test stimulus, optional

Blocks and repeats are read by :mod:`engine.data.retina_blocks`.  Model input is the last ``history`` frames before each time step (deep-retina
used 40).  :class:`FrameWindows` gives those windows without ever building the
(T, history, H, W) array: single windows are views, batches are gathered with
stride tricks from the in-memory stimulus.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from engine.data.errors import DataError
from engine.data.h5tree import open_h5
from engine.data.retina_blocks import Block, find_blocks, read_repeats, repeat_count
from engine.text import safe_line
from engine.resources import require_memory

__all__ = [
    "RetinaData",
    "RetinaLayout",
    "FrameWindows",
    "find_blocks",
    "inspect_retina",
    "is_retina_file",
    "load_retina",
    "read_h5_to_numpy",
    "split_windows",
]

DEFAULT_RESPONSE = "firing_rate_10ms"


@dataclass(frozen=True)
class RetinaLayout:
    """What a retina file holds, read from metadata only.

    Attributes
    ----------
    splits : dict
        split name -> dict(frames=T, height=H, width=W, cells=C, responses=[keys]).
    """

    path: Path
    splits: dict[str, dict]


def _check_split(fh: h5py.File, path: Path, split: str) -> h5py.Group:
    if split not in fh:
        have = ", ".join(k for k in fh.keys() if isinstance(fh[k], h5py.Group)) or "none"
        raise DataError(f"{path}: no {split!r} group (groups here: {have}); not a retina-layout file?")
    grp = fh[split]
    if not isinstance(grp, h5py.Group):
        raise DataError(f"{path}: {split!r} is a dataset, expected a group with stimulus and response")
    if "stimulus" not in grp or not isinstance(grp["stimulus"], h5py.Dataset):
        raise DataError(f"{path}: missing dataset /{split}/stimulus")
    if "response" not in grp or not isinstance(grp["response"], h5py.Group):
        raise DataError(f"{path}: missing group /{split}/response")
    return grp


def _split_summary(grp: h5py.Group, path: Path) -> dict:
    stim = grp["stimulus"]
    if stim.ndim != 3:
        raise DataError(f"{path}: {stim.name} must be (T, H, W) frames, shape is {stim.shape}")
    if stim.dtype.kind not in "biuf":
        raise DataError(f"{path}: {stim.name} has dtype {stim.dtype}, expected numbers")
    T = stim.shape[0]
    if T == 0:
        raise DataError(f"{path}: {stim.name} is empty (0 frames)")
    keys, cells = [], None
    for key, ds in grp["response"].items():
        if not isinstance(ds, h5py.Dataset):
            continue
        keys.append(safe_line(key))  # a name that is not UTF-8 comes back as bytes
        if ds.ndim == 2 and ds.shape[1] == T:
            cells = ds.shape[0] if cells is None else cells
    t = grp.get("time")
    time = np.asarray(t) if isinstance(t, h5py.Dataset) and t.shape == (T,) else None
    return dict(frames=T, height=stim.shape[1], width=stim.shape[2], cells=cells, responses=sorted(keys),
                blocks=len(find_blocks(time, T)), repeats=repeat_count(grp))


def inspect_retina(path: str | Path) -> RetinaLayout:
    """Check the retina layout from metadata and describe it; raises :class:`DataError` if it is not one."""
    path = Path(path)
    with open_h5(path) as fh:
        splits = {}
        for split in ("train", "test"):
            if split in fh:
                splits[split] = _split_summary(_check_split(fh, path, split), path)
        if not splits:
            raise DataError(f"{path}: no train/ or test/ group; not a retina-layout file")
        return RetinaLayout(path, splits)


def is_retina_file(path: str | Path) -> bool:
    """True when ``path`` opens and has the retina layout (never raises)."""
    try:
        inspect_retina(path)
    except DataError:
        return False
    return True


@dataclass
class RetinaData:
    """One split of a retina recording in memory.

    Attributes
    ----------
    stimulus : ndarray, shape (T, H, W)
        float32 in [0, 1] (uint8 when loaded with ``raw=True``).
    responses : ndarray, float32, shape (cells, T)
    time : ndarray or None, shape (T,)
    split, response_key : str
    path : Path
    start : int
        Frame of the file this data starts at (when a range was loaded).
    blocks : list of (start, stop)
        Recording blocks, in frames of this data (one block when ``time`` never jumps).
    repeats : ndarray or None, float32, shape (repeats, cells, T)
        Single trials of the same stimulus (``test/repeats`` in the real files).
    """

    stimulus: np.ndarray
    responses: np.ndarray
    time: np.ndarray | None
    split: str
    response_key: str
    path: Path
    start: int = 0
    blocks: list[Block] | None = None
    repeats: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.blocks is None:
            self.blocks = [(0, self.n_frames)]

    @property
    def n_frames(self) -> int:
        return int(self.stimulus.shape[0])

    @property
    def n_cells(self) -> int:
        return int(self.responses.shape[0])

    def windows(self, history: int = 40, start: int | None = None, stop: int | None = None) -> "FrameWindows":
        """Windows of the last ``history`` frames with the responses as targets."""
        return FrameWindows(self.stimulus, history, targets=self.responses, start=start, stop=stop)


def _frame_range(frames: slice | tuple[int, int] | None, T: int, where: str) -> tuple[int, int]:
    if frames is None:
        return 0, T
    if isinstance(frames, slice):
        if frames.step not in (None, 1):
            raise DataError(f"{where}: frame ranges must be contiguous (step 1)")
        a, b, _ = frames.indices(T)
    else:
        a, b = (int(v) for v in frames)
        a, b = max(0, a), min(T, b)
    if b <= a:
        raise DataError(f"{where}: empty frame range {a}:{b} (file has {T} frames)")
    return a, b


def load_retina(
    path: str | Path,
    split: str = "train",
    response_key: str = DEFAULT_RESPONSE,
    frames: slice | tuple[int, int] | None = None,
    raw: bool = False,
    n_blocks: int = 0,
) -> RetinaData:
    """Read one split: stimulus as float32 in [0, 1] and responses as float32 (cells, T).

    Parameters
    ----------
    path : str or Path
        HDF5 file in the retina layout.
    split : str
        "train" or "test" (any group with stimulus and response/).
    response_key : str
        Dataset under ``<split>/response/``.
    frames : slice or (start, stop), optional
        Load only these frames (reads only that part of the file).
    raw : bool
        Keep the stimulus in its stored dtype (uint8: 4x less memory);
        :class:`FrameWindows` scales batches to float32 on the fly.
    n_blocks : int
        0: recording blocks from the jumps of ``time``; N: N equal blocks of the whole
        split (deep-retina's rule), then cut to ``frames``.

    Raises
    ------
    DataError
        Missing group or key, wrong shapes, NaN or negative rates, empty data.
    """
    path = Path(path)
    with open_h5(path) as fh:
        grp = _check_split(fh, path, split)
        summary = _split_summary(grp, path)
        T = summary["frames"]
        if response_key not in grp["response"]:
            have = ", ".join(summary["responses"]) or "none"
            raise DataError(f"{path}: no response {response_key!r} in /{split}/response (have: {have})")
        rds = grp["response"][response_key]
        if not isinstance(rds, h5py.Dataset) or rds.dtype.kind not in "biuf":
            raise DataError(f"{path}: /{split}/response/{response_key} is not a numeric dataset")
        if rds.ndim != 2 or rds.shape[1] != T:
            hint = " (looks transposed: expected (cells, T))" if rds.ndim == 2 and rds.shape[0] == T else ""
            raise DataError(
                f"{path}: /{split}/response/{response_key} has shape {rds.shape}, expected (cells, {T}){hint}"
            )
        if rds.shape[0] == 0:
            raise DataError(f"{path}: /{split}/response/{response_key} has no cells")
        a, b = _frame_range(frames, T, f"{path}:/{split}")
        sds = grp["stimulus"]
        # frames (as stored, then float32 unless raw) and rates, before any is read: a small
        # file can declare 3e9 frames
        frame_px = int(np.prod(sds.shape[1:], dtype=np.int64))
        reps = repeat_count(grp)
        require_memory((b - a) * (frame_px * (sds.dtype.itemsize + (0 if raw else 4)) + rds.shape[0] * 4 * (2 + reps)),
                       f"{path}:/{split}", {"frames": b - a}, error=DataError)
        with np.errstate(over="ignore"):  # float64 beyond float32 range becomes inf, caught next
            y = np.asarray(rds[:, a:b], dtype=np.float32)
        bad = ~np.isfinite(y)
        if bad.any():
            c, t = np.argwhere(bad)[0]
            raise DataError(f"{path}: /{split}/response/{response_key} has NaN/inf (first at cell {c}, frame {a + t})")
        if (y < 0).any():
            raise DataError(f"{path}: /{split}/response/{response_key} has negative rates (min {y.min():.3g})")
        x = np.asarray(sds[a:b])
        if not raw:
            x = _to_unit_float(x, f"{path}:{sds.name}")
        full_t = None
        if "time" in grp and isinstance(grp["time"], h5py.Dataset) and grp["time"].shape == (T,):
            full_t = np.asarray(grp["time"])
        # blocks of the whole split (equal blocks are of the file, not of the range), then cut
        blocks = [(max(s, a) - a, min(e, b) - a) for s, e in find_blocks(full_t, T, n_blocks) if min(e, b) > max(s, a)]
        repeats = read_repeats(grp, path, y.shape[0], T, a, b)
        t = None if full_t is None else full_t[a:b]
        return RetinaData(x, y, t, split, response_key, path, start=a, blocks=blocks, repeats=repeats)


def _to_unit_float(x: np.ndarray, where: str) -> np.ndarray:
    if x.dtype.kind in "iu":
        if x.dtype != np.uint8 and (x.min() < 0 or x.max() > 255):
            raise DataError(f"{where}: integer frames outside 0..255")
        return x.astype(np.float32) * np.float32(1 / 255)
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DataError(f"{where}: stimulus has NaN/inf values")
    return x


def read_h5_to_numpy(file_path: str | Path, subset_type: str, response_type: str) -> tuple[np.ndarray, np.ndarray]:
    """The seed's loader: (X float32 (T, H, W) in [0, 1], y float32 (cells, T))."""
    data = load_retina(file_path, subset_type, response_type)
    return data.stimulus, data.responses


class FrameWindows:
    """Lazy view of the last ``history`` frames before each time step.

    Window ``i`` belongs to time ``t = times[i]`` and holds frames
    ``t - history + 1 .. t`` (oldest first).  Nothing is copied at construction;
    ``self[i]`` is a read-only view for float32 stimuli, :meth:`batch` gathers
    a (B, history, H, W) float32 array.

    Parameters
    ----------
    stimulus : ndarray, shape (T, H, W)
        float32 frames, or uint8 (scaled by 1/255 when read).
    history : int
        Frames per window (deep-retina: 40).
    targets : ndarray, shape (cells, T), optional
        Responses; :meth:`targets` returns their values at each window's time.
    start, stop : int, optional
        Range of *times* covered; ``start`` is raised to ``history - 1`` so every
        window is complete.

    Attributes
    ----------
    times : ndarray of int64
        Time step of every window.
    """

    def __init__(
        self,
        stimulus: np.ndarray,
        history: int = 40,
        targets: np.ndarray | None = None,
        start: int | None = None,
        stop: int | None = None,
    ):
        stimulus = np.asarray(stimulus)
        if stimulus.ndim != 3:
            raise DataError(f"stimulus must be (T, H, W), got shape {stimulus.shape}")
        if not 1 <= history <= stimulus.shape[0]:
            raise DataError(f"history must be between 1 and {stimulus.shape[0]} frames, got {history}")
        if targets is not None:
            targets = np.asarray(targets)
            if targets.ndim != 2 or targets.shape[1] != stimulus.shape[0]:
                raise DataError(f"targets must be (cells, {stimulus.shape[0]}), got shape {targets.shape}")
        T = stimulus.shape[0]
        lo = history - 1 if start is None else max(history - 1, int(start))
        hi = T if stop is None else min(T, int(stop))
        if hi <= lo:
            raise DataError(f"no complete {history}-frame window in times {lo}:{hi}")
        self.stimulus = stimulus
        self.history = int(history)
        self.targets_array = targets
        self.times = np.arange(lo, hi, dtype=np.int64)
        self._scale = np.float32(1 / 255) if stimulus.dtype == np.uint8 else None
        # (T - history + 1, history, H, W) view; window k ends at time k + history - 1.
        self._view = np.moveaxis(np.lib.stride_tricks.sliding_window_view(stimulus, history, axis=0), -1, 1)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def frame_shape(self) -> tuple[int, int]:
        return tuple(self.stimulus.shape[1:])

    def _float(self, x: np.ndarray) -> np.ndarray:
        if self._scale is not None:
            return x.astype(np.float32) * self._scale
        return x if x.dtype == np.float32 else x.astype(np.float32)

    def __getitem__(self, i: int) -> np.ndarray:
        """The (history, H, W) window for ``times[i]``."""
        n = len(self.times)
        if not -n <= int(i) < n:
            raise IndexError(f"window {i} out of range for {n} windows")
        return self.window_at(int(self.times[i]))

    def window_at(self, t: int) -> np.ndarray:
        """The (history, H, W) window ending at time ``t``."""
        if not self.history - 1 <= t < self.stimulus.shape[0]:
            raise IndexError(f"time {t} has no complete {self.history}-frame window")
        return self._float(self._view[t - self.history + 1])

    def batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Windows ``indices`` gathered into a contiguous (B, history, H, W) float32 array."""
        idx = np.asarray(indices, dtype=np.int64)
        t = self.times[idx]
        return np.ascontiguousarray(self._float(self._view[t - self.history + 1]))

    def targets(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Responses (B, cells) at the windows' times."""
        if self.targets_array is None:
            raise DataError("these windows were built without targets")
        t = self.times[np.asarray(indices, dtype=np.int64)]
        return np.ascontiguousarray(self.targets_array[:, t].T.astype(np.float32, copy=False))


def split_windows(
    data: RetinaData, history: int = 40, valid_fraction: float = 0.2
) -> tuple[FrameWindows, FrameWindows]:
    """Train/validation windows split in time, validation at the end.

    Validation windows start ``history - 1`` frames after the cut, so no frame
    seen as training input or target is part of a validation window.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise DataError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    T = data.n_frames
    cut = int(round(T * (1 - valid_fraction)))
    if cut < history or T - cut < history:
        raise DataError(f"{T} frames are too few for {history}-frame windows on both sides of a {valid_fraction:.0%} split")
    train = FrameWindows(data.stimulus, history, data.responses, stop=cut)
    valid = FrameWindows(data.stimulus, history, data.responses, start=cut + history - 1)
    return train, valid
