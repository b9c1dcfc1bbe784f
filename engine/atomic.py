"""Crash-safe file writes: write to a temp file in the same directory, fsync, rename.

A reader (or a resumed job) sees either the old file or the new one, never half of
one; if the write fails (disk full, SIGKILL), the previous file is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


def _umask() -> int:
    """The process's umask.  Linux reports it in /proc (no change to process state); elsewhere
    it is read by setting it and putting it back, which a file created by another thread in
    between could see, so that path is the fallback only."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success fsync and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes the temp file 0600; the file it becomes gets the mode any new file gets
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except Exception as exc:
        full = _disk_full(exc, path.parent)
        if full is not None:
            _let_go(tmp_path)
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if full is not None and full is not exc:
            raise full from exc
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _let_go(tmp: Path) -> None:
    """After a full disk: give the half-written file's space back even while a library still
    holds it open (truncate), then close what HDF5 kept open on it.  An HDF5 file whose close
    failed is closed again at exit, and crashed the interpreter (exit 139) when that flush
    found the disk still full."""
    with contextlib.suppress(OSError):
        os.truncate(tmp, 0)


FULL_BELOW = 1 << 20  # a writer that fails with less free than this ran out of space


def _disk_full(exc: Exception, folder: Path) -> OSError | None:
    """A library writer that hits a full disk may say anything (torch.save: "unexpected
    pos ..."; h5py: a cascade of HDF5 errors).  Name the cause as the OS does, keeping the
    writer's own words, when the disk is in fact (nearly) full."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        if os.strerror(errno.ENOSPC) in (str(exc).splitlines() or [""])[0]:
            return exc  # already says "No space left on device" on its first line
        first = (str(exc).strip().splitlines() or [""])[0][:160]  # h5py: "Can't close file (..."
        return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} writing {folder}: {first}")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    if free >= FULL_BELOW:
        return None
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    return OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free // 1024} KiB free) writing "
                   f"{folder}: {type(exc).__name__}: {first}")


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


def check_space(folder: str | os.PathLike, need_bytes: int, what: str) -> None:
    """Refuse a write that cannot fit, before it starts: one line naming the need.

    HDF5 must never meet a full disk: after a failed write its library state is broken and
    the process crashes later (exit 139, 134 or 135, seen on a full tmpfs) whatever we close.
    """
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    margin = 1 << 20  # metadata, and the session's own writes after this one
    if free < need_bytes + margin:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: {what} needs about "
                      f"{_mib(need_bytes + margin)}, {_mib(free)} free on {folder}")


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def write_with(path: str | os.PathLike, writer: Callable[[Path], None],
               need_bytes: int | None = None) -> Path:
    """Atomic write through any library writer that takes a path (``torch.save``, h5py...).

    ``need_bytes``: the size the writer will put down, if known (an upper bound): a disk
    without that much room is refused before the writer starts (see :func:`check_space`).
    """
    if need_bytes is not None:
        check_space(Path(path).parent, int(need_bytes), f"writing {Path(path).name}")
    with atomic_path(path) as tmp, _quiet_when_full():
        writer(tmp)
    return Path(path)


@contextlib.contextmanager
def _quiet_when_full() -> Iterator[None]:
    """h5py reports each object it fails to free on a full disk as an "Exception ignored"
    traceback (dozens of them); the write's own error already says it all."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        exc = unraisable.exc_value
        if "No space left on device" in str(exc) or getattr(exc, "errno", None) == errno.ENOSPC:
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


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
