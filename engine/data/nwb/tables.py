"""Tables and time series by name: the first rows of a table, a decimated series preview,
and the intervals check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.data.errors import DataError
from engine.data.nwb.opening import _is_series, _is_table, _n_rows, open_nwb
from engine.data.nwb.summary import _series_info, walk


def find(nwb, name: str, where: str | Path = "") -> Any:
    """The table or series at ``name`` (a :func:`walk` path, or a bare name when unambiguous)."""
    found = walk(nwb)
    key = name.strip("/")
    if key in found:
        return found[key]
    # a bare name ("trials", "natural_scenes_presentations") when it is unambiguous
    hits = [p for p in found if p.rsplit("/", 1)[-1] == key]
    if len(hits) == 1:
        return found[hits[0]]
    raise DataError(f"{where}: no table or series {name!r} (has: {', '.join(sorted(found)) or 'none'})")


def _cell_text(v) -> str:
    """A table cell as one short, terminal-safe line: text as is, a linked container (an
    electrode group) by name; control characters from the file shown as escapes."""
    from engine.text import safe_line

    if isinstance(v, bytes):
        return safe_line(v.decode(errors="replace"))
    if isinstance(v, str):
        return safe_line(v)
    name = getattr(v, "name", None)
    text = str(name) if isinstance(name, str) else str(v).splitlines()[0][:80] if str(v) else ""
    return safe_line(text)


def table_head(path: str | Path, name: str = "intervals/trials", rows: int = 50):
    """The first ``rows`` rows of a table as a DataFrame; ragged columns become their lengths.

    Column names and text cells are terminal-safe (:func:`engine.text.safe_line`).
    """
    path = Path(path)
    with open_nwb(path) as nwb:
        return _table_head(nwb, name, rows, path)


def _table_head(nwb, name: str, rows: int, path: Path):
    import pandas as pd

    from engine.text import safe_line

    table = find(nwb, name, path)
    if not _is_table(table):
        raise DataError(f"{path}: {name} is a time series, not a table")
    n = min(_n_rows(table), max(0, int(rows)))
    cols: dict[str, Any] = {}
    for c in table.colnames:
        col = table[c]
        key = safe_line(c)
        if type(col).__name__ == "VectorIndex":  # ragged: show lengths
            idx = np.asarray(col.data[:n], dtype=np.int64)
            prev = np.concatenate([[0], idx[:-1]]) if n else idx
            cols[f"{key} (n)"] = idx - prev
            continue
        shape = tuple(getattr(col.data, "shape", ()) or ())
        if len(shape) > 1:  # waveforms and the like: named by shape, never read
            cols[key] = [f"{shape[1:]} array"] * n
            continue
        arr = np.asarray(col.data[:n])
        if arr.ndim > 1:
            cols[key] = [f"{arr.shape[1:]} array"] * n
        elif arr.dtype.kind in "SOU":
            cols[key] = [_cell_text(v) for v in arr]
        else:
            cols[key] = arr
    ids = np.asarray(table.id.data[:n])
    return pd.DataFrame(cols, index=pd.Index(ids, name="id"))


def table_page(path: str | Path, name: str, rows: int = 100):
    """(head, problem): :func:`table_head` and, for an intervals table, what
    :func:`check_intervals` finds wrong with its times (None when nothing), from one open."""
    path = Path(path)
    with open_nwb(path) as nwb:
        head = _table_head(nwb, name, rows, path)
        problem = None
        key = name.strip("/")
        if key.startswith("intervals/") or key in (nwb.intervals or {}):
            try:
                check_intervals(nwb, key.rsplit("/", 1)[-1], path.name)
            except DataError as exc:
                problem = str(exc)
    return head, problem


def series_preview(path: str | Path, name: str, max_points: int = 2000, channel: int = 0):
    """(times in s, values) of a time series, decimated to about ``max_points`` samples.

    The values come through :func:`engine.data.h5tree.preview_slice` (its read
    budget holds); the times from ``starting_time + i / rate`` or the stored
    timestamps at the same indices.
    """
    from engine.data import h5tree

    path = Path(path)
    with open_nwb(path) as nwb:
        ts = find(nwb, name, path)
        if not _is_series(ts):
            raise DataError(f"{path}: {name} is a table, not a time series")
        info = _series_info(name, ts)
        if not info.h5_path:
            raise DataError(f"{path}: {name} has no data on disk (an external link?)")
        rate, start = ts.rate, ts.starting_time
        stamps = ts.timestamps
        ndim = len(info.shape)
        if ndim == 0 or info.shape[0] == 0:
            raise DataError(f"{path}: {name} is empty")
        index = None if ndim == 1 else [None] + [int(channel)] + [0] * (ndim - 2)
        prev = h5tree.preview_slice(path, info.h5_path, axes=(0,), index=index, max_points=max_points)
        coords = prev.coords[0]
        if stamps is not None:
            times = np.asarray(stamps[np.asarray(coords, dtype=np.int64)], dtype=float)
        else:
            times = float(start or 0.0) + np.asarray(coords, dtype=float) / float(rate)
    return times, prev.data


def check_intervals(nwb, name: str = "trials", where: str | Path = "") -> None:
    """Raise a DataError when an intervals table's times are inconsistent.

    Checks: start and stop columns exist and have one value per row, are finite,
    and no interval stops before it starts.
    """
    table = (nwb.intervals or {}).get(name) if name != "trials" else nwb.trials
    if table is None:
        raise DataError(f"{where}: no intervals table {name!r}")
    n = _n_rows(table)
    for c in ("start_time", "stop_time"):
        if c not in table.colnames:
            raise DataError(f"{where}: {name} has no {c} column")
        if len(table[c].data) != n:
            raise DataError(f"{where}: {name} has {n} rows but {len(table[c].data)} {c} values")
    start = np.asarray(table["start_time"].data[:], dtype=float)
    stop = np.asarray(table["stop_time"].data[:], dtype=float)
    if not (np.all(np.isfinite(start)) and np.all(np.isfinite(stop))):
        raise DataError(f"{where}: {name} start_time/stop_time hold NaN or inf")
    bad = np.flatnonzero(stop < start)
    if bad.size:
        raise DataError(f"{where}: {name} row {int(bad[0])} stops before it starts "
                        f"({stop[bad[0]]:g} < {start[bad[0]]:g}; {bad.size} such rows)")
