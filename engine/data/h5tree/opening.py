"""Opening an HDF5 file with errors a user can act on, and resolving a name inside it
without following links to other files unless asked."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import h5py

from engine.data.errors import DataError, require_file
from engine.text import safe_line


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
    path = require_file(path, "HDF5")
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
