"""The one exception type the data layer raises for bad input.

Every problem a user can cause (wrong path, not an HDF5 file, missing key, bad
shape, NaN rates, a file locked by a writer...) becomes a :class:`DataError`
with a one-line message that names the file and what is wrong, so that the CLI
and the TUI can show it as is instead of a traceback from inside h5py.
"""

from __future__ import annotations

from engine.errors import DataError as DataError  # defined with the other user errors; re-exported here

__all__ = ["DataError"]
