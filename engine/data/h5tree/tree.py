"""The tree of an HDF5 file, one level at a time: what each node is (:class:`NodeInfo`),
its children on demand, and the whole tree as text."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from engine.data.errors import DataError
from engine.data.h5tree.opening import _first_line, _get, _link, _norm, _outside_files, _text, open_h5
from engine.text import safe_line

_MAX_ATTRS = 64
_MAX_ATTR_CHARS = 200

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
            nbytes=0 if shape is None else math.prod(shape) * obj.dtype.itemsize,  # exact: no int64 overflow
            outside=_outside_files(obj),
            empty=empty,
        )
    return NodeInfo(path, name, "link")


def _member(path: Path, group: h5py.Group, key: str | bytes, name: str,
            follow_external: bool = False) -> tuple[NodeInfo, Any]:
    """(info, object) of one member; the object is None for links that are not followed
    (external) or do not resolve (dangling, a soft-link cycle), which still get a row."""
    link = _link(group, key)
    target: str | None
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
    return (info.is_dataset and info.numeric and info.shape is not None and info.ndim == 3
            and info.shape[1] >= 4 and info.shape[2] >= 4)


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
