"""Opening an NWB file with pynwb, and the container tests the other modules share.

:func:`open_nwb` turns every failure into one :class:`~engine.data.errors.DataError`
line naming the file; pynwb/hdmf are imported inside functions.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, Iterator

from engine.data.errors import DataError, require_file


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def is_nwb(path: str | Path) -> bool:
    """Whether ``path`` is an HDF5 file with an NWB version attribute (reads one attribute)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "nwb_version" in f.attrs or "nwb_version" in f
    except Exception:  # not HDF5, locked, unreadable: not browsable as NWB
        return False


@contextlib.contextmanager
def open_nwb(path: str | Path) -> Iterator[Any]:
    """Open ``path`` read-only with pynwb; every failure becomes a one-line :class:`DataError`.

    Yields the ``pynwb.NWBFile``; its arrays are h5py datasets read on access.
    The file is closed when the block ends.
    """
    path = require_file(path, "NWB")
    import h5py

    if not h5py.is_hdf5(path):
        raise DataError(f"{path}: not an HDF5 file, so not an NWB file (NWB 2 files are HDF5)")
    from pynwb import NWBHDF5IO

    io = None
    try:
        with warnings.catch_warnings():
            # cached-namespace and version notices are not the user's problem here
            warnings.simplefilter("ignore")
            io = NWBHDF5IO(str(path), mode="r")
            nwb = io.read()
    except Exception as exc:  # pynwb/hdmf raise many types for a file that is not NWB
        if io is not None:
            with contextlib.suppress(Exception):
                io.close()
        msg = _first_line(exc)
        if type(exc).__name__ == "ConstructError":
            # hdmf's message dumps the whole builder; keep where it failed and why
            text = str(exc)
            where = text.split(" ", 1)[0].lstrip("(").replace("root/", "") or "?"
            why = text.rsplit("due to: ", 1)[-1].rstrip("')\"") if "due to: " in text else repr(exc.__cause__)
            raise DataError(f"{path}: malformed NWB: cannot read {where} ({why})") from None
        if isinstance(exc, (BlockingIOError,)) or "unable to lock" in msg:
            raise DataError(f"{path}: file is locked by a writer; try again when it is done") from None
        raise DataError(f"{path}: not a readable NWB file ({type(exc).__name__}: {msg})") from None
    try:
        yield nwb
    except DataError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, IndexError, TypeError) as exc:
        raise DataError(f"{path}: read failed ({type(exc).__name__}: {_first_line(exc)})") from exc
    finally:
        io.close()


def _is_table(obj) -> bool:
    from hdmf.common import DynamicTable

    return isinstance(obj, DynamicTable)


def _is_series(obj) -> bool:
    from pynwb import TimeSeries

    return isinstance(obj, TimeSeries)


def _n_rows(table) -> int:
    return int(len(table.id))
