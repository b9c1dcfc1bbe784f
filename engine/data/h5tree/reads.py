"""Reads of a dataset bounded in chunk data touched and in number of reads, whatever the
dataset claims to be, and cancellable between pieces."""

from __future__ import annotations

import itertools
import math
from typing import Any

import h5py
import numpy as np

from engine.data.errors import DataError
from engine.reporting import Cancelled
from engine.text import safe_line

# A preview or a statistic reads at most this much chunk data and makes at most this
# many separate reads, whatever the dataset claims to be (a 1.4 KB file can declare a
# chunked dataset of 2**62 elements; one strided read over it never returns, since
# HDF5 walks every chunk of the selection's bounding box).
READ_BUDGET_BYTES = 256 << 20
MAX_READS = 4096

def _axis_parts(sel: Any, n: int, chunk: int | None) -> tuple[list[Any], int, int]:
    """(pieces, touched chunks, length in the result) of one axis of a selection.

    A slice whose stride is at least the chunk length is cut into one-element pieces:
    each piece then touches one chunk, where the whole strided read would make HDF5 walk
    every chunk between its ends."""
    if not isinstance(sel, slice):
        return [sel], 1, -1  # an integer: the axis is dropped from the result
    start, stop, step = sel.indices(n)
    length = len(range(start, stop, step))
    if length == 0:
        return [sel], 0, 0
    if chunk is None:
        return [slice(start, stop, step)], 1, length
    if step > 1 and step >= chunk:
        return [slice(i, i + 1) for i in range(start, stop, step)], length, length
    last = start + (length - 1) * step
    return [slice(start, stop, step)], last // chunk - start // chunk + 1, length


def _read_cost(ds: h5py.Dataset, sel: tuple) -> tuple[int, int]:
    """(bytes of chunk data touched, number of reads) that :func:`_read_bounded` would need."""
    chunks = ds.chunks or (None,) * ds.ndim
    touched, reads = 1, 1
    for ax, s in enumerate(sel):
        parts, n_chunks, _ = _axis_parts(s, ds.shape[ax], chunks[ax])
        touched *= n_chunks
        reads *= len(parts)
    if not ds.chunks:  # contiguous: only what is selected is read
        return _selected(ds, sel) * ds.dtype.itemsize, 1
    return touched * math.prod(ds.chunks) * ds.dtype.itemsize, reads


def _selected(ds: h5py.Dataset, sel: tuple) -> int:
    return math.prod(max(0, _axis_parts(s, ds.shape[ax], None)[2]) if isinstance(s, slice) else 1
                     for ax, s in enumerate(sel))


def _fits(ds: h5py.Dataset, sel: tuple) -> bool:
    nbytes, reads = _read_cost(ds, sel)
    return nbytes <= READ_BUDGET_BYTES and reads <= MAX_READS


def _read_bounded(ds: h5py.Dataset, sel: tuple, cancel: Any = None) -> np.ndarray:
    """``ds[sel]`` as float64, read in pieces that each touch few chunks, checking
    ``cancel`` (anything with ``is_set()``) between pieces.

    Raises :class:`DataError` when the read would touch more than
    :data:`READ_BUDGET_BYTES` of chunk data or need more than :data:`MAX_READS` reads
    (callers shrink their request first), :class:`Cancelled` on a cancel request."""
    where = f"{ds.file.filename}:{safe_line(ds.name)}"
    nbytes, reads = _read_cost(ds, sel)
    if nbytes > READ_BUDGET_BYTES or reads > MAX_READS:
        raise DataError(f"{where}: this read would touch {_mib(nbytes)} of chunk data in {reads} reads; "
                        f"a preview reads at most {_mib(READ_BUDGET_BYTES)} in {MAX_READS} reads")
    if not sel:
        return np.asarray(ds[()], dtype=np.float64)
    chunks = ds.chunks or (None,) * ds.ndim
    axes = [_axis_parts(s, ds.shape[ax], chunks[ax]) for ax, s in enumerate(sel)]
    if all(len(parts) == 1 for parts, _, _ in axes):
        return np.asarray(ds[sel], dtype=np.float64)
    out = np.empty(tuple(length for _, _, length in axes if length >= 0), np.float64)
    kept = [ax for ax, (_, _, length) in enumerate(axes) if length >= 0]
    for combo in itertools.product(*[list(enumerate(parts)) for parts, _, _ in axes]):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        piece = np.asarray(ds[tuple(part for _, part in combo)], dtype=np.float64)
        dest = tuple(slice(combo[ax][0], combo[ax][0] + 1) if len(axes[ax][0]) > 1 else slice(None) for ax in kept)
        out[dest] = piece
    return out


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MiB" if nbytes >= 2**20 else f"{nbytes:,} bytes"
