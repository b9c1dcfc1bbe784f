"""Previews for display: a decimated 1-D or 2-D slice of a dataset, and frames of an
image stack, every read within the budget of :mod:`engine.data.h5tree.reads`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from engine.data.errors import DataError
from engine.data.h5tree.opening import _get_dataset, open_h5
from engine.data.h5tree.reads import _fits, _read_bounded
from engine.data.h5tree.stats import _check_numeric
from engine.text import safe_line

@dataclass(frozen=True)
class Preview:
    """A 1-D or 2-D slice of a dataset, decimated for display.

    Attributes
    ----------
    data : ndarray, float64, shape (n,) or (rows, cols)
        Values; rows follow ``axes[0]``, columns ``axes[1]``.
    axes : tuple of int
        Dataset axes shown.
    index : tuple of int
        Position along every axis that is not shown (-1 for shown axes).
    coords : tuple of ndarray
        Original index along each shown axis of every preview sample.
    """

    data: np.ndarray
    axes: tuple[int, ...]
    index: tuple[int, ...]
    coords: tuple[np.ndarray, ...]

    @property
    def decimated(self) -> bool:
        return any(len(c) > 1 and c[1] - c[0] > 1 for c in self.coords)


def _default_axes(ndim: int) -> tuple[int, ...]:
    if ndim == 1:
        return (0,)
    return (ndim - 2, ndim - 1)


def _resolve_index(
    shape: tuple[int, ...], axes: tuple[int, ...], index: Mapping[int, int] | Sequence[int | None] | None, where: str
) -> list[int]:
    ndim = len(shape)
    pos = [0] * ndim
    if index is None:
        pass
    elif isinstance(index, Mapping):
        for ax, i in index.items():
            if not 0 <= int(ax) < ndim:
                raise DataError(f"{where}: axis {ax} out of range for {ndim}-D data")
            pos[int(ax)] = int(i)
    else:
        index = list(index)
        if len(index) != ndim:
            raise DataError(f"{where}: index needs {ndim} entries (one per axis), got {len(index)}")
        pos = [0 if (i is None or ax in axes) else int(i) for ax, i in enumerate(index)]
    for ax in range(ndim):
        if ax in axes:
            pos[ax] = -1
            continue
        i = pos[ax]
        if i < 0:
            i += shape[ax]
        if not 0 <= i < shape[ax]:
            raise DataError(f"{where}: index {pos[ax]} out of range for axis {ax} of length {shape[ax]}")
        pos[ax] = i
    return pos


def preview_slice(
    path: str | Path,
    name: str,
    axes: Sequence[int] | None = None,
    index: Mapping[int, int] | Sequence[int | None] | None = None,
    max_points: int | Sequence[int] = 2000,
    ranges: Mapping[int, tuple[int, int]] | None = None,
    cancel: Any = None,
    follow_external: bool = False,
) -> Preview:
    """Read a 1-D (line) or 2-D (heatmap) slice of dataset ``name``.

    Parameters
    ----------
    axes : sequence of 1 or 2 ints, optional
        Axes to show; default ``(0,)`` for 1-D data and the last two axes otherwise.
        ``(2, 1)`` shows axis 2 as rows (a transpose).
    index : mapping axis -> int, or sequence with one entry per axis (None: 0), optional
        Position along the axes not shown (default 0; negative counts from the end).
    max_points : int or (int, int)
        Upper bound on samples along each shown axis; longer axes are read with a
        stride, so memory never exceeds ``prod(max_points)`` values.
    ranges : mapping axis -> (start, stop), optional
        Restrict shown axes to a window (zooming) before striding.
    cancel : event, optional
        Checked between reads (raises :class:`Cancelled`).  With large chunks the
        preview gets coarser until it touches at most :data:`READ_BUDGET_BYTES`.
    follow_external : bool
        Read data stored in other files (external raw storage, virtual datasets).

    Raises
    ------
    DataError
        Missing dataset, non-numeric or empty data, bad axes or index.
    """
    path = Path(path)
    with open_h5(path) as fh:
        ds = _get_dataset(fh, name, follow_external)
        _check_numeric(ds)
        shape = tuple(ds.shape)
        where = f"{path}:{safe_line(ds.name)}"
        if not shape:
            raise DataError(f"{where}: scalar dataset, value {safe_line(repr(ds[()]))}; nothing to plot")
        axes_t = tuple(int(a) for a in (axes if axes is not None else _default_axes(len(shape))))
        if not 1 <= len(axes_t) <= 2 or len(set(axes_t)) != len(axes_t):
            raise DataError(f"{where}: choose one or two different axes to show, got {axes_t}")
        for a in axes_t:
            if not 0 <= a < len(shape):
                raise DataError(f"{where}: axis {a} out of range for {len(shape)}-D data")
        if isinstance(max_points, int):
            caps = (max_points,) * len(axes_t)
        else:
            caps = tuple(int(m) for m in max_points)
            if len(caps) != len(axes_t):
                raise DataError(f"{where}: max_points needs one entry per shown axis")
        pos = _resolve_index(shape, axes_t, index, where)
        caps = tuple(max(1, c) for c in caps)
        while True:
            sel, coords = _preview_selection(shape, axes_t, pos, caps, ranges, where)
            if _fits(ds, sel) or max(caps) == 1:
                break
            caps = tuple(max(1, c // 2) for c in caps)  # coarser until it fits the budget
        data = _read_bounded(ds, sel, cancel)
        if len(axes_t) == 2 and axes_t[0] > axes_t[1]:
            data = data.T
        return Preview(data=data, axes=axes_t, index=tuple(pos), coords=tuple(coords[a] for a in axes_t))


def _preview_selection(shape: tuple[int, ...], axes: tuple[int, ...], pos: list[int], caps: tuple[int, ...],
                       ranges: Mapping[int, tuple[int, int]] | None, where: str
                       ) -> tuple[tuple, dict[int, np.ndarray]]:
    sel: list[Any] = []
    coords: dict[int, np.ndarray] = {}
    for ax in range(len(shape)):
        if ax not in axes:
            sel.append(pos[ax])
            continue
        start, stop = (ranges or {}).get(ax, (0, shape[ax]))
        start, stop = max(0, int(start)), min(shape[ax], int(stop))
        if stop <= start:
            raise DataError(f"{where}: empty range {start}:{stop} on axis {ax}")
        step = max(1, math.ceil((stop - start) / caps[axes.index(ax)]))
        sel.append(slice(start, stop, step))
        coords[ax] = np.arange(start, stop, step, dtype=np.int64)
    return tuple(sel), coords


def read_frame(path: str | Path, name: str, t: int, max_size: int = 512) -> np.ndarray:
    """Frame ``t`` (along axis 0) of a (T, H, W) stack as float32, strided to ``max_size`` per side."""
    return read_frames(path, name, t, None, max_size=max_size)[0]


def read_frames(path: str | Path, name: str, start: int, stop: int | None, max_size: int = 512) -> np.ndarray:
    """Frames ``start:stop`` (``stop=None``: one frame) of a (T, H, W) stack as float32 (n, h, w); at most 256."""
    path = Path(path)
    with open_h5(path) as fh:
        ds = _get_dataset(fh, name)
        _check_numeric(ds)
        if ds.ndim != 3:
            raise DataError(f"{path}:{ds.name}: frames need a 3-D (T, H, W) dataset, shape is {ds.shape}")
        n = ds.shape[0]
        if start < 0:
            start += n
        if stop is None:
            stop = start + 1
        if not (0 <= start < n) or stop <= start:
            raise DataError(f"{path}:{ds.name}: frame {start} out of range 0..{n - 1}")
        stop = min(stop, n, start + 256)
        sh = max(1, math.ceil(ds.shape[1] / max_size))
        sw = max(1, math.ceil(ds.shape[2] / max_size))
        sel = (slice(start, stop), slice(None, None, sh), slice(None, None, sw))
        while stop - start > 1 and not _fits(ds, sel):
            stop = start + (stop - start) // 2  # fewer frames at once, same picture
            sel = (slice(start, stop),) + sel[1:]
        return _read_bounded(ds, sel).astype(np.float32)
