"""Lazy browsing of any HDF5 file: tree on demand, bounded statistics and previews.

Every function opens the file, reads only what it needs and closes it again, so
callers (TUI workers in threads, the CLI) never share an open handle and a
dataset larger than RAM is never read whole: listing a group reads metadata of
one level, statistics read at most ``max_elems`` elements in a few contiguous
blocks, previews read a strided slice bounded by ``max_points``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import numpy as np

from engine.data.errors import DataError
from engine.reporting import Cancelled
from engine.text import safe_line

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
# A preview or a statistic reads at most this much chunk data and makes at most this
# many separate reads, whatever the dataset claims to be (a 1.4 KB file can declare a
# chunked dataset of 2**62 elements; one strided read over it never returns, since
# HDF5 walks every chunk of the selection's bounding box).
READ_BUDGET_BYTES = 256 << 20
MAX_READS = 4096


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


def _key(part: str) -> str | bytes:
    """A name as h5py wants it: names that are not UTF-8 travel as str with
    surrogate escapes (see :func:`_text`) and go back to h5py as their bytes."""
    try:
        part.encode("utf-8")
        return part
    except UnicodeEncodeError:
        return part.encode("utf-8", "surrogateescape")


def _text(key: str | bytes) -> str:
    """h5py returns a member name that is not UTF-8 as bytes: keep it as str, losslessly."""
    return key.decode("utf-8", "surrogateescape") if isinstance(key, bytes) else key


def _link(group: h5py.Group, key: str | bytes) -> h5py.SoftLink | h5py.ExternalLink | h5py.HardLink | None:
    """The link ``key`` of ``group`` without following it (None: no such member).

    Through h5py's low-level API: ``Group.get(..., getlink=True)`` fails on a name
    that is not UTF-8."""
    raw = key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")
    try:
        kind = group.id.links.get_info(raw).type
        if kind == h5py.h5l.TYPE_EXTERNAL:
            filename, path = group.id.links.get_val(raw)
            return h5py.ExternalLink(_text(filename), _text(path))
        if kind == h5py.h5l.TYPE_SOFT:
            return h5py.SoftLink(_text(group.id.links.get_val(raw)))
    except (KeyError, OSError, RuntimeError, ValueError, TypeError):
        return None
    return h5py.HardLink()


def _get(fh: h5py.File, name: str, follow_external: bool = False) -> h5py.Group | h5py.Dataset:
    """The object at ``name``, walked one member at a time so that an external link on
    the way is reported, not followed (unless ``follow_external``)."""
    name = _norm(name)
    shown = safe_line(name)
    obj: Any = fh
    for part in [p for p in name.split("/") if p]:
        link = _link(obj, part)
        if link is None:
            raise DataError(f"{fh.filename}: no group or dataset named {shown!r}")
        if isinstance(link, h5py.ExternalLink) and not follow_external:
            raise DataError(f"{fh.filename}: {shown!r} passes through an external link to "
                            f"{safe_line(link.filename)}:{safe_line(link.path)}; not followed unless asked")
        try:
            obj = obj[_key(part)]
        except (KeyError, OSError, RuntimeError, ValueError) as exc:
            raise DataError(f"{fh.filename}: {shown!r} cannot be resolved ({safe_line(_first_line(exc))})") from None
        if not isinstance(obj, (h5py.Group, h5py.Dataset)):
            raise DataError(f"{fh.filename}: {shown!r} is a {type(obj).__name__}, not a group or dataset")
    return obj


def _get_dataset(fh: h5py.File, name: str, follow_external: bool = False) -> h5py.Dataset:
    obj = _get(fh, name, follow_external)
    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{fh.filename}: {safe_line(_norm(name))!r} is a group, not a dataset")
    if not follow_external:
        outside = _outside_files(obj)
        if outside:
            raise DataError(f"{fh.filename}: {safe_line(obj.name)!r} is stored outside this file "
                            f"(in {', '.join(outside)}); not read unless asked")
    return obj


def _outside_files(ds: h5py.Dataset) -> tuple[str, ...]:
    """Files other than this one that a dataset's values come from: external raw
    storage, or the sources of a virtual dataset."""
    files: list[str] = []
    try:
        if ds.external:
            files += [safe_line(_text(row[0])) for row in ds.external]
        if ds.is_virtual:
            files += [safe_line(m.file_name) for m in ds.virtual_sources() if m.file_name != "."]
    except (OSError, RuntimeError, ValueError, TypeError):
        files.append("?")
    return tuple(dict.fromkeys(files))


def _norm(name: str | bytes) -> str:
    name = "/" + _text(name).strip("/")
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
        Absolute path inside the file ("/train/stimulus"), as stored: it may hold control
        characters or (as surrogate escapes) bytes that are not UTF-8.  Show
        :attr:`display_name` / :meth:`label`, never ``name`` itself.
    kind : str
        "group", "dataset", "external" (an external link, shown with its target and not
        followed) or "link" (a soft link that does not resolve: dangling or a cycle).
    shape : tuple of int or None
        Dataset shape; None for groups and for empty (``h5py.Empty``) datasets.
    dtype : str or None
        Dataset dtype as numpy spells it ("uint8", "float32", "|S10").
    chunks : tuple of int or None
        Chunk shape, None when contiguous.
    compression : str or None
        Filter name ("gzip", "lzf"), with options when present ("gzip:4").
    attrs : dict
        Attribute name -> short text of its value (bounded, control characters escaped).
    n_children : int or None
        Number of members of a group.
    nbytes : int or None
        Uncompressed size of a dataset.
    target : str or None
        Where a link points ("other.h5:/data" for an external link, "/a/b" for a soft link).
    outside : tuple of str
        Files a dataset's values are stored in besides this one (external raw storage,
        virtual dataset sources); such data is not read unless asked.
    empty : bool
        An ``h5py.Empty`` dataset: a dtype and no data (not a scalar).
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
    target: str | None = None
    outside: tuple[str, ...] = ()
    empty: bool = False

    @property
    def basename(self) -> str:
        return _text(self.name).rsplit("/", 1)[-1] or "/"

    @property
    def display_name(self) -> str:
        """The base name, safe for a terminal (control characters and bad bytes escaped)."""
        return safe_line(self.basename)

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
        if self.dtype is None or self.empty or self.outside:
            return False
        try:
            kind = np.dtype(self.dtype).kind
        except TypeError:
            return False
        return kind in "biuf"

    def label(self) -> str:
        """One line for a tree: name, then shape and dtype for datasets; links with their target."""
        name = self.display_name
        if self.kind == "group":
            return f"{name}/"
        if self.kind == "external":
            return f"{name} -> {self.target} (external link, not followed)"
        if self.kind == "link":
            what = f" -> {self.target}" if self.target else ""
            return f"{name}{what} (unresolvable link)"
        if self.empty:
            shape = "empty"
        else:
            shape = "×".join(str(s) for s in self.shape) if self.shape else "scalar"
        where = f"  stored in {', '.join(self.outside)}" if self.outside else ""
        return f"{name}  {shape}  {self.dtype}{where}"

    def children(self, limit: int | None = 1000) -> list["NodeInfo"]:
        """Members of this group (see :func:`list_children`)."""
        return list_children(self.file, self.name, limit=limit)


def _attr_text(value: Any) -> str:
    if isinstance(value, h5py.Empty):
        return "(empty)"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        with np.printoptions(threshold=20, edgeitems=3, precision=4):
            text = np.array2string(value, separator=", ")
    else:
        text = str(value)
    text = safe_line(" ".join(text.split()))
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
            out[safe_line(_text(key))] = _attr_text(obj.attrs[key])
        except (OSError, RuntimeError, TypeError, ValueError, KeyError) as exc:
            out[safe_line(_text(key))] = f"<unreadable: {safe_line(_first_line(exc))}>"
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
        empty = obj.shape is None
        shape = tuple(int(s) for s in obj.shape) if not empty else None
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
            nbytes=0 if empty else int(np.prod(shape, dtype=object)) * obj.dtype.itemsize,
            outside=_outside_files(obj),
            empty=empty,
        )
    return NodeInfo(path, name, "link")


def _member(path: Path, group: h5py.Group, key: str | bytes, name: str,
            follow_external: bool = False) -> tuple[NodeInfo, Any]:
    """(info, object) of one member; the object is None for links that are not followed
    (external) or do not resolve (dangling, a soft-link cycle), which still get a row."""
    link = _link(group, key)
    if isinstance(link, h5py.ExternalLink) and not follow_external:
        target = f"{safe_line(link.filename)}:{safe_line(link.path)}"
        return NodeInfo(path, name, "external", target=target), None
    try:
        obj = group[key]
    except (OSError, KeyError, RuntimeError, ValueError):
        obj = None
    if obj is None:
        target = safe_line(link.path) if isinstance(link, h5py.SoftLink) else None
        if isinstance(link, h5py.ExternalLink):
            target = f"{safe_line(link.filename)}:{safe_line(link.path)}"
        return NodeInfo(path, name, "link", target=target), None
    return _info(path, name, obj, attrs=False), obj


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


def list_children(path: str | Path, name: str = "/", limit: int | None = 1000,
                  follow_external: bool = False) -> list[NodeInfo]:
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
    follow_external : bool
        Describe what external links point to (opening those files) instead of
        listing them as links with their target.
    """
    path = Path(path)
    with open_h5(path) as fh:
        grp = _get(fh, name, follow_external)
        if not isinstance(grp, h5py.Group):
            raise DataError(f"{path}: {safe_line(_norm(name))!r} is a dataset, not a group")
        base = _norm(name).rstrip("/")
        out = []
        for i, key in enumerate(grp.keys()):
            if limit is not None and i >= limit:
                break
            out.append(_member(path, grp, key, f"{base}/{_text(key)}", follow_external)[0])
        return out


def node_info(path: str | Path, name: str, follow_external: bool = False) -> NodeInfo:
    """Full metadata (with attributes) of one group or dataset."""
    path = Path(path)
    with open_h5(path) as fh:
        return _info(path, _norm(name), _get(fh, name, follow_external), attrs=True)


def is_image_stack(info: NodeInfo) -> bool:
    """True for numeric (T, H, W) datasets whose frames are worth drawing as pictures."""
    return info.is_dataset and info.numeric and info.ndim == 3 and info.shape[1] >= 4 and info.shape[2] >= 4


def format_tree(path: str | Path, max_lines: int = 10_000, follow_external: bool = False) -> str:
    """The whole tree as text, one node a line: indented name, shape, dtype.

    Only metadata is read; names are shown with control characters escaped; external
    links are shown with their target and not followed (unless ``follow_external``,
    when the groups they point to are listed too); a group reached a second time
    (hard links, soft links to an ancestor) is named, not walked again.  Used by
    ``workbench data tree PATH``.
    """
    path = Path(path)
    lines: list[str] = []
    with open_h5(path) as fh:
        lines.append(f"{safe_line(path.name)}  ({len(fh)} members)")
        seen = {_address(fh): "/"}

        def walk(group: h5py.Group, prefix: str, depth: int) -> None:
            for key in group.keys():
                if len(lines) >= max_lines:
                    return
                name = f"{prefix}/{_text(key)}"
                info, obj = _member(path, group, key, name, follow_external)
                if isinstance(obj, h5py.Group):
                    addr = _address(obj)
                    if addr in seen:
                        lines.append("  " * depth + f"{info.display_name}/ (same group as {safe_line(seen[addr])})")
                        continue
                    seen[addr] = name
                lines.append("  " * depth + info.label())
                if isinstance(obj, h5py.Group):
                    walk(obj, name, depth + 1)

        walk(fh, "", 1)
    if len(lines) >= max_lines:
        lines.append(f"… (stopped after {max_lines} lines)")
    return "\n".join(lines)


def _address(obj: h5py.HLObject) -> tuple[int, int]:
    info = h5py.h5o.get_info(obj.id)
    return (int(info.fileno), int(info.addr))


# --------------------------------------------------------------------------- bounded reads


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
    name = safe_line(ds.name)
    if ds.dtype.kind not in "biuf":
        raise DataError(f"{ds.file.filename}: {name!r} has dtype {ds.dtype}; statistics and plots need numbers")
    if ds.shape is None:
        raise DataError(f"{ds.file.filename}: {name!r} is empty (no data, only a dtype)")
    if math.prod(ds.shape) == 0:
        raise DataError(f"{ds.file.filename}: {name!r} is empty")


def _sample_blocks(shape: tuple[int, ...], max_elems: int, n_blocks: int = 8) -> list[tuple]:
    """Selections (tuples of slices) whose union has at most ~max_elems elements.

    Contiguous blocks along axis 0 keep the number of chunks touched small (a
    strided pick along axis 0 would read every chunk of a chunked dataset);
    trailing axes are strided when even one row is too big.
    """
    if not shape:
        return [()]
    row = math.prod(shape[1:]) if len(shape) > 1 else 1
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


def sample_stats(path: str | Path, name: str, max_elems: int = 1_000_000, cancel: Any = None,
                 follow_external: bool = False) -> SampleStats:
    """Summary statistics of dataset ``name`` on at most about ``max_elems`` elements.

    The sample is a few contiguous blocks spread along the first axis (strided
    along the others when a single row is too large), so the cost is bounded
    whatever the dataset size; with large chunks the sample shrinks until it
    touches at most :data:`READ_BUDGET_BYTES` of chunk data.  ``cancel`` (an
    event) is checked between reads.  Data stored in other files (external raw
    storage, virtual datasets) is read only with ``follow_external=True``.
    """
    if max_elems < 1:
        raise DataError(f"max_elems must be positive, got {max_elems}")
    path = Path(path)
    with open_h5(path) as fh:
        ds = _get_dataset(fh, name, follow_external)
        _check_numeric(ds)
        shape = tuple(ds.shape)
        total = math.prod(shape)
        blocks = _sample_blocks(shape, max_elems)
        while max_elems > 1 and not all(_fits(ds, sel) for sel in blocks):
            max_elems //= 4
            blocks = _sample_blocks(shape, max_elems)
        count = nan = zeros = 0
        nf, mean, m2 = 0, 0.0, 0.0
        lo, hi = math.inf, -math.inf
        for sel in blocks:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            x = _read_bounded(ds, sel, cancel).ravel()
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
    cancel: Any = None,
    follow_external: bool = False,
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
