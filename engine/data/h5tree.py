"""Lazy browsing of any HDF5 file: tree on demand, bounded statistics and previews.

Every function opens the file, reads only what it needs and closes it again, so
callers (TUI workers in threads, the CLI) never share an open handle and a
dataset larger than RAM is never read whole: listing a group reads metadata of
one level, statistics read at most ``max_elems`` elements in a few contiguous
blocks, previews read a strided slice bounded by ``max_points``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import numpy as np

from engine.data.errors import DataError

__all__ = [
    "NodeInfo",
    "SampleStats",
    "Preview",
    "open_h5",
    "open_tree",
    "list_children",
    "node_info",
    "sample_stats",
    "preview_slice",
    "read_frame",
    "read_frames",
    "is_image_stack",
    "format_tree",
]

_MAX_ATTRS = 64
_MAX_ATTR_CHARS = 200


# --------------------------------------------------------------------------- opening


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _explain_open_error(path: Path, exc: OSError) -> str:
    msg = str(exc)
    if "file signature not found" in msg:
        return f"{path}: not an HDF5 file"
    if "truncated file" in msg:
        return f"{path}: HDF5 file is truncated (incomplete copy or download?)"
    if "unable to lock file" in msg or isinstance(exc, BlockingIOError):
        return f"{path}: file is locked, probably being written by another process; try again when it is done"
    if "already open" in msg:
        return f"{path}: file is already open for writing in this process"
    if isinstance(exc, PermissionError) or "Permission denied" in msg:
        return f"{path}: permission denied"
    return f"{path}: cannot open as HDF5 ({_first_line(exc)})"


@contextlib.contextmanager
def open_h5(path: str | Path) -> Iterator[h5py.File]:
    """Open ``path`` read-only; every h5py failure (open or read) becomes a :class:`DataError`.

    Parameters
    ----------
    path : str or Path
        HDF5 file to open.

    Yields
    ------
    h5py.File
        The open file; it is closed when the block ends.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not an HDF5 file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file, not an HDF5 file")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(_explain_open_error(path, exc)) from exc
    try:
        yield fh
    except DataError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        # Corrupt chunks, filter failures and objects whose address lies past the end of
        # the file (h5py raises KeyError for those) surface here, deep inside a read.
        raise DataError(f"{path}: read failed ({_first_line(exc)})") from exc
    finally:
        fh.close()


def _get(fh: h5py.File, name: str) -> h5py.Group | h5py.Dataset:
    name = _norm(name)
    try:
        obj = fh[name]
    except KeyError:
        raise DataError(f"{fh.filename}: no group or dataset named {name!r}") from None
    if not isinstance(obj, (h5py.Group, h5py.Dataset)):
        raise DataError(f"{fh.filename}: {name!r} is a {type(obj).__name__}, not a group or dataset")
    return obj


def _get_dataset(fh: h5py.File, name: str) -> h5py.Dataset:
    obj = _get(fh, name)
    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{fh.filename}: {_norm(name)!r} is a group, not a dataset")
    return obj


def _norm(name: str) -> str:
    name = "/" + str(name).strip("/")
    return name


# --------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class NodeInfo:
    """Metadata of one group or dataset, read without touching its data.

    Attributes
    ----------
    file : Path
        The HDF5 file.
    name : str
        Absolute path inside the file ("/train/stimulus").
    kind : str
        "group", "dataset" or "link" (a dangling soft/external link).
    shape : tuple of int or None
        Dataset shape; None for groups.
    dtype : str or None
        Dataset dtype as numpy spells it ("uint8", "float32", "|S10").
    chunks : tuple of int or None
        Chunk shape, None when contiguous.
    compression : str or None
        Filter name ("gzip", "lzf"), with options when present ("gzip:4").
    attrs : dict
        Attribute name -> short text of its value (bounded).
    n_children : int or None
        Number of members of a group.
    nbytes : int or None
        Uncompressed size of a dataset.
    """

    file: Path
    name: str
    kind: str
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    chunks: tuple[int, ...] | None = None
    compression: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    n_children: int | None = None
    nbytes: int | None = None

    @property
    def basename(self) -> str:
        return self.name.rsplit("/", 1)[-1] or "/"

    @property
    def is_group(self) -> bool:
        return self.kind == "group"

    @property
    def is_dataset(self) -> bool:
        return self.kind == "dataset"

    @property
    def ndim(self) -> int:
        return len(self.shape) if self.shape is not None else 0

    @property
    def numeric(self) -> bool:
        if self.dtype is None:
            return False
        try:
            kind = np.dtype(self.dtype).kind
        except TypeError:
            return False
        return kind in "biuf"

    def label(self) -> str:
        """One line for a tree: name, then shape and dtype for datasets."""
        if self.kind == "group":
            return f"{self.basename}/"
        if self.kind == "link":
            return f"{self.basename} (dangling link)"
        shape = "×".join(str(s) for s in self.shape) if self.shape else "scalar"
        return f"{self.basename}  {shape}  {self.dtype}"

    def children(self, limit: int | None = 1000) -> list["NodeInfo"]:
        """Members of this group (see :func:`list_children`)."""
        return list_children(self.file, self.name, limit=limit)


def _attr_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        with np.printoptions(threshold=20, edgeitems=3, precision=4):
            text = np.array2string(value, separator=", ")
    else:
        text = str(value)
    text = " ".join(text.split())
    if len(text) > _MAX_ATTR_CHARS:
        text = text[: _MAX_ATTR_CHARS - 1] + "…"
    return text


def _read_attrs(obj: h5py.HLObject) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = list(obj.attrs.keys())
    except (OSError, RuntimeError, TypeError):
        return {"?": "attributes unreadable"}
    for key in names[:_MAX_ATTRS]:
        try:
            out[key] = _attr_text(obj.attrs[key])
        except (OSError, RuntimeError, TypeError, ValueError) as exc:
            out[key] = f"<unreadable: {_first_line(exc)}>"
    if len(names) > _MAX_ATTRS:
        out["…"] = f"{len(names) - _MAX_ATTRS} more attributes"
    return out


def _info(path: Path, name: str, obj: Any, attrs: bool) -> NodeInfo:
    if isinstance(obj, h5py.Group):
        return NodeInfo(path, name, "group", attrs=_read_attrs(obj) if attrs else {}, n_children=len(obj))
    if isinstance(obj, h5py.Dataset):
        comp = obj.compression
        if comp is not None and obj.compression_opts is not None:
            comp = f"{comp}:{obj.compression_opts}"
        shape = tuple(int(s) for s in obj.shape) if obj.shape is not None else ()
        dtype = obj.dtype.str if obj.dtype.names or obj.dtype.kind in "SUV" else obj.dtype.name
        return NodeInfo(
            path,
            name,
            "dataset",
            shape=shape,
            dtype=dtype,
            chunks=tuple(obj.chunks) if obj.chunks else None,
            compression=comp,
            attrs=_read_attrs(obj) if attrs else {},
            nbytes=int(np.prod(shape, dtype=np.int64)) * obj.dtype.itemsize,
        )
    return NodeInfo(path, name, "link")


def open_tree(path: str | Path) -> NodeInfo:
    """Open ``path`` and return its root group; children are listed on demand.

    Raises
    ------
    DataError
        If the file is missing, not HDF5, truncated or locked by a writer.
    """
    path = Path(path)
    with open_h5(path) as fh:
        return _info(path, "/", fh, attrs=True)


def list_children(path: str | Path, name: str = "/", limit: int | None = 1000) -> list[NodeInfo]:
    """Members of group ``name`` (one level; sorted as h5py lists them).

    Parameters
    ----------
    path : str or Path
        HDF5 file.
    name : str
        Group path inside the file.
    limit : int or None
        At most this many members are described (huge flat groups stay fast);
        :attr:`NodeInfo.n_children` of the group tells how many there are.
    """
    path = Path(path)
    with open_h5(path) as fh:
        grp = _get(fh, name)
        if not isinstance(grp, h5py.Group):
            raise DataError(f"{path}: {_norm(name)!r} is a dataset, not a group")
        base = _norm(name).rstrip("/")
        out = []
        for i, key in enumerate(grp.keys()):
            if limit is not None and i >= limit:
                break
            try:
                obj = grp.get(key)
            except (OSError, KeyError):
                obj = None  # dangling external/soft link
            out.append(_info(path, f"{base}/{key}", obj, attrs=False))
        return out


def node_info(path: str | Path, name: str) -> NodeInfo:
    """Full metadata (with attributes) of one group or dataset."""
    path = Path(path)
    with open_h5(path) as fh:
        return _info(path, _norm(name), _get(fh, name), attrs=True)


def is_image_stack(info: NodeInfo) -> bool:
    """True for numeric (T, H, W) datasets whose frames are worth drawing as pictures."""
    return info.is_dataset and info.numeric and info.ndim == 3 and info.shape[1] >= 4 and info.shape[2] >= 4


def format_tree(path: str | Path, max_lines: int = 10_000) -> str:
    """The whole tree as text, one node a line: indented name, shape, dtype.

    Only metadata is read.  Used by ``workbench data tree PATH``.
    """
    path = Path(path)
    lines: list[str] = []
    with open_h5(path) as fh:
        lines.append(f"{path.name}  ({len(fh)} members)")

        def walk(group: h5py.Group, depth: int) -> None:
            for key in group.keys():
                if len(lines) >= max_lines:
                    return
                try:
                    obj = group.get(key)
                except (OSError, KeyError):
                    obj = None
                info = _info(path, key, obj, attrs=False)
                lines.append("  " * depth + info.label())
                if isinstance(obj, h5py.Group):
                    walk(obj, depth + 1)

        walk(fh, 1)
    if len(lines) >= max_lines:
        lines.append(f"… (stopped after {max_lines} lines)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class SampleStats:
    """Summary statistics of a dataset, computed on a bounded sample.

    Attributes
    ----------
    n_sampled, n_total : int
        Elements read and elements in the dataset.
    exact : bool
        True when the sample is the whole dataset.
    min, max, mean, std : float
        Over finite sampled values (NaN when there are none).
    n_nan : int
        Non-finite values in the sample (NaN or ±inf).
    frac_zero : float
        Fraction of exact zeros in the sample.
    """

    n_sampled: int
    n_total: int
    exact: bool
    min: float
    max: float
    mean: float
    std: float
    n_nan: int
    frac_zero: float

    def as_rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs ready for a table."""
        sample = "all" if self.exact else f"{self.n_sampled:,} of {self.n_total:,}"
        return [
            ("sampled", sample),
            ("min", f"{self.min:.6g}"),
            ("max", f"{self.max:.6g}"),
            ("mean", f"{self.mean:.6g}"),
            ("std", f"{self.std:.6g}"),
            ("zeros", f"{100 * self.frac_zero:.1f} %"),
            ("non-finite", f"{self.n_nan:,}"),
        ]


def _check_numeric(ds: h5py.Dataset) -> None:
    if ds.dtype.kind not in "biuf":
        raise DataError(f"{ds.file.filename}: {ds.name!r} has dtype {ds.dtype}; statistics and plots need numbers")
    if ds.shape is None or ds.size == 0:
        raise DataError(f"{ds.file.filename}: {ds.name!r} is empty")


def _sample_blocks(shape: tuple[int, ...], max_elems: int, n_blocks: int = 8) -> list[tuple]:
    """Selections (tuples of slices) whose union has at most ~max_elems elements.

    Contiguous blocks along axis 0 keep the number of chunks touched small (a
    strided pick along axis 0 would read every chunk of a chunked dataset);
    trailing axes are strided when even one row is too big.
    """
    if not shape:
        return [()]
    row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    # Trailing axes: stride them until one row fits in the budget / n_blocks.
    tail: list[slice] = []
    budget_row = max(1, max_elems // n_blocks)
    steps = [1] * (len(shape) - 1)
    row_eff = row
    for ax in range(len(shape) - 1):
        if row_eff <= budget_row:
            break
        n = shape[ax + 1]
        want = max(1, math.ceil(row_eff / budget_row))
        steps[ax] = min(n, want)
        row_eff = row_eff // n * math.ceil(n / steps[ax])
    tail = [slice(None, None, s) for s in steps]
    rows_total = max(1, max_elems // max(1, row_eff))
    n0 = shape[0]
    if rows_total >= n0:
        return [(slice(None),) + tuple(tail)]
    k = min(n_blocks, rows_total)
    block = max(1, rows_total // k)
    starts = np.linspace(0, n0 - block, k).astype(np.int64)
    return [(slice(int(s), int(s) + block),) + tuple(tail) for s in np.unique(starts)]


def sample_stats(path: str | Path, name: str, max_elems: int = 1_000_000) -> SampleStats:
    """Summary statistics of dataset ``name`` on at most about ``max_elems`` elements.

    The sample is a few contiguous blocks spread along the first axis (strided
    along the others when a single row is too large), so the cost is bounded
    whatever the dataset size.
    """
    if max_elems < 1:
        raise DataError(f"max_elems must be positive, got {max_elems}")
    path = Path(path)
    with open_h5(path) as fh:
        ds = _get_dataset(fh, name)
        _check_numeric(ds)
        shape = tuple(ds.shape)
        total = int(np.prod(shape, dtype=np.int64))
        count = nan = zeros = 0
        nf, mean, m2 = 0, 0.0, 0.0
        lo, hi = math.inf, -math.inf
        for sel in _sample_blocks(shape, max_elems):
            x = np.asarray(ds[sel] if sel else ds[()], dtype=np.float64).ravel()
            count += x.size
            finite = np.isfinite(x)
            nan += int(x.size - finite.sum())
            xf = x[finite]
            zeros += int(np.count_nonzero(xf == 0))
            if xf.size:
                # Chan et al. merge of (n, mean, M2): stable for large offsets.
                bm = float(xf.mean())
                bm2 = float(np.square(xf - bm).sum())
                n = nf + xf.size
                delta = bm - mean
                mean += delta * xf.size / n
                m2 += bm2 + delta * delta * nf * xf.size / n
                nf = n
                lo = min(lo, float(xf.min()))
                hi = max(hi, float(xf.max()))
        var = m2 / nf if nf else math.nan
        mean = mean if nf else math.nan
        return SampleStats(
            n_sampled=count,
            n_total=total,
            exact=count >= total,
            min=lo if nf else math.nan,
            max=hi if nf else math.nan,
            mean=mean,
            std=math.sqrt(var) if nf else math.nan,
            n_nan=nan,
            frac_zero=zeros / count if count else math.nan,
        )


# --------------------------------------------------------------------------- previews


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
    shape: tuple[int, ...], axes: tuple[int, ...], index: Mapping[int, int] | Sequence[int] | None, where: str
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
    index: Mapping[int, int] | Sequence[int] | None = None,
    max_points: int | Sequence[int] = 2000,
    ranges: Mapping[int, tuple[int, int]] | None = None,
) -> Preview:
    """Read a 1-D (line) or 2-D (heatmap) slice of dataset ``name``.

    Parameters
    ----------
    axes : sequence of 1 or 2 ints, optional
        Axes to show; default ``(0,)`` for 1-D data and the last two axes otherwise.
        ``(2, 1)`` shows axis 2 as rows (a transpose).
    index : mapping axis -> int, or sequence with one entry per axis, optional
        Position along the axes not shown (default 0; negative counts from the end).
    max_points : int or (int, int)
        Upper bound on samples along each shown axis; longer axes are read with a
        stride, so memory never exceeds ``prod(max_points)`` values.
    ranges : mapping axis -> (start, stop), optional
        Restrict shown axes to a window (zooming) before striding.

    Raises
    ------
    DataError
        Missing dataset, non-numeric or empty data, bad axes or index.
    """
    path = Path(path)
    with open_h5(path) as fh:
        ds = _get_dataset(fh, name)
        _check_numeric(ds)
        shape = tuple(ds.shape)
        where = f"{path}:{ds.name}"
        if not shape:
            raise DataError(f"{where}: scalar dataset, value {ds[()]!r}; nothing to plot")
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
        sel: list[Any] = []
        coords: dict[int, np.ndarray] = {}
        for ax in range(len(shape)):
            if ax not in axes_t:
                sel.append(pos[ax])
                continue
            start, stop = (ranges or {}).get(ax, (0, shape[ax]))
            start, stop = max(0, int(start)), min(shape[ax], int(stop))
            if stop <= start:
                raise DataError(f"{where}: empty range {start}:{stop} on axis {ax}")
            cap = max(1, caps[axes_t.index(ax)])
            step = max(1, math.ceil((stop - start) / cap))
            sel.append(slice(start, stop, step))
            coords[ax] = np.arange(start, stop, step)
        data = np.asarray(ds[tuple(sel)], dtype=np.float64)
        if len(axes_t) == 2 and axes_t[0] > axes_t[1]:
            data = data.T
        return Preview(data=data, axes=axes_t, index=tuple(pos), coords=tuple(coords[a] for a in axes_t))


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
        return np.asarray(ds[start:stop, ::sh, ::sw], dtype=np.float32)
