"""Crash-safe file writes: write to a temp file in the same directory, fsync, rename.

A reader (or a resumed job) sees either the old file or the new one, never half of
one; if the write fails (disk full, SIGKILL), the previous file is untouched.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success fsync and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


TMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")  # what atomic_path's mkstemp names look like


def clean_orphans(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Remove temp files left by writes that were killed half way (they can be as large as
    a checkpoint).  Call it only where no write is in flight: a job's own folder as the
    job starts, a checkpoint folder before training resumes.  Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    removed = []
    for p in found:
        if TMP_PATTERN.match(p.name) and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=1, default=_json_default))


def save_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_bytes(path, buf.getvalue())


def write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Atomic write through any library writer that takes a path (``torch.save``, h5py...)."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
