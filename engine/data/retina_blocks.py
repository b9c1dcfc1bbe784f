"""Recording blocks and repeated trials of a retina file (deep-retina ``naturalscene.h5``).

The real files mark neither: ``train`` is several recording blocks laid end to end (deep-retina's
loaders hard-code their number per experiment, e.g. 6 for 15-10-07, and drop the first frames of
each block while the retina adapts), and ``test/repeats/cell01 ...`` hold each cell's single
trials of the test stimulus, shape ``(n_repeats, T_test)``, beside the trial-averaged
``test/response/firing_rate_10ms``.

Here a block ends where ``time`` jumps (a step above 1.5 frame intervals, or backwards) or, when
the caller knows the count, the split is cut into that many equal blocks (deep-retina's rule).
Nothing that carries state -- a training sequence, the CfC's state, a SINDy increment -- may
cross a block boundary: :func:`block_segments` gives the frame ranges that are safe.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from engine.data.errors import DataError

__all__ = ["GAP_FACTOR", "Block", "find_blocks", "block_segments", "read_repeats", "repeat_count"]

GAP_FACTOR = 1.5  # a time step above this many frame intervals starts a new block

Block = tuple[int, int]  # (start, stop) frames, stop exclusive


def find_blocks(time: np.ndarray | None, n_frames: int, n_blocks: int = 0) -> list[Block]:
    """Recording blocks of a split of ``n_frames`` frames.

    ``n_blocks`` > 0: that many equal blocks (deep-retina's ``reshape(num_blocks, -1)``; the
    remainder, if any, joins the last block).  Otherwise from ``time``: a new block starts
    after every step larger than :data:`GAP_FACTOR` times the median step, or not forward.
    Without ``time``: one block.
    """
    if n_blocks > 0:
        if n_blocks > n_frames:
            raise DataError(f"cannot cut {n_frames} frames into {n_blocks} blocks")
        size = n_frames // n_blocks
        edges = [i * size for i in range(n_blocks)] + [n_frames]
        return list(zip(edges[:-1], edges[1:]))
    if time is None or len(time) < 3:
        return [(0, n_frames)]
    step = np.diff(np.asarray(time, dtype=np.float64))
    dt = float(np.median(step))
    if not np.isfinite(dt) or dt <= 0:
        return [(0, n_frames)]
    cuts = (np.flatnonzero((step > GAP_FACTOR * dt) | (step <= 0)) + 1).tolist()
    edges = [0] + cuts + [n_frames]
    return list(zip(edges[:-1], edges[1:]))


def block_segments(blocks: list[Block], lo: int, hi: int, skip: int = 0) -> list[Block]:
    """The parts of ``[lo, hi)`` inside each block, less the first ``skip`` frames of every
    block (frames after a block starts, when the retina is still adapting).  Empty parts
    are dropped; a range cut at ``lo`` (a train/validation split) keeps its first frames."""
    out = []
    for a, b in blocks:
        s, e = max(a + skip, lo), min(b, hi)
        if e > s:
            out.append((s, e))
    return out


def repeat_count(grp: h5py.Group) -> int:
    """Repeats per cell under ``<split>/repeats`` (0 when there are none)."""
    rep = grp.get("repeats")
    if not isinstance(rep, h5py.Group):
        return 0
    shapes = [ds.shape for ds in rep.values() if isinstance(ds, h5py.Dataset) and ds.ndim == 2]
    return int(min(s[0] for s in shapes)) if shapes else 0


def read_repeats(grp: h5py.Group, path: Path, n_cells: int, n_frames: int, a: int, b: int) -> np.ndarray | None:
    """Single trials ``(repeats, cells, b - a)`` float32 from ``<split>/repeats/cellNN`` (one
    ``(repeats, T)`` dataset per cell, in name order), or None when the split has none.

    Raises :class:`DataError` when they do not match the responses (cells, frames, repeats
    per cell) or hold NaN or negative rates."""
    rep = grp.get("repeats")
    if not isinstance(rep, h5py.Group):
        return None
    names = sorted(k for k, ds in rep.items() if isinstance(ds, h5py.Dataset))
    if not names:
        return None
    where = f"{path}:{rep.name}"
    if len(names) != n_cells:
        raise DataError(f"{where} has {len(names)} cells, the responses {n_cells}")
    shapes = {rep[k].shape for k in names}
    if len(shapes) != 1:
        raise DataError(f"{where}: cells have different shapes {sorted(shapes)}; expected (repeats, {n_frames}) each")
    shape = shapes.pop()
    if len(shape) != 2 or shape[1] != n_frames or shape[0] < 1:
        raise DataError(f"{where}/{names[0]} has shape {shape}, expected (repeats, {n_frames})")
    out = np.empty((shape[0], n_cells, b - a), np.float32)
    for c, k in enumerate(names):
        with np.errstate(over="ignore"):
            out[:, c] = np.asarray(rep[k][:, a:b], dtype=np.float32)
    if not np.isfinite(out).all():
        raise DataError(f"{where} has NaN/inf")
    if (out < 0).any():
        raise DataError(f"{where} has negative rates (min {out.min():.3g})")
    return out
