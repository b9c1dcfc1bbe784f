"""The one exception type the data layer raises for bad input.

Every problem a user can cause (wrong path, not an HDF5 file, missing key, bad
shape, NaN rates, a file locked by a writer...) becomes a :class:`DataError`
with a one-line message that names the file and what is wrong, so that the CLI
and the TUI can show it as is instead of a traceback from inside h5py.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import DataError as DataError  # defined with the other user errors; re-exported here

__all__ = ["DataError", "require_file"]


def require_file(path: str | Path, kind: str) -> Path:
    """``path`` as a Path, or one line saying why it is no ``kind`` file (missing, a
    folder, empty) before a reader gets to fail on it with its own words."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not an {kind} file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file, not an {kind} file")
    return path
