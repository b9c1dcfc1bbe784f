"""Lazy browsing of NWB files through pynwb (and hdmf), the field's own library.

:func:`open_nwb` opens a file read-only with ``pynwb.NWBHDF5IO``; reading builds
the container tree from metadata only (every array stays an ``h5py.Dataset`` on
disk), so opening a large file costs the tree, not the data.  On top of it:

* :func:`summarize` -- an NWB-aware tree: the units table (count, total spikes,
  units per brain area), trials/epochs and every other intervals table
  (stimulus presentations), the electrodes with their areas (``location``), and
  the time series of acquisition, processing (behaviour), stimulus and the
  stimulus templates; no spike time or sample is read;
* :func:`spike_counts` -- spikes per unit from the ragged index alone;
* :func:`raster` -- the spike times of the first ``n`` units inside a time
  window, found by bisection on disk so a unit's whole train is never read;
* :func:`table_head` -- the first rows of any table (ragged columns as lengths);
* :func:`series_preview` -- a decimated, budgeted preview of a time series
  through :func:`engine.data.h5tree.preview_slice`;
* :func:`check_units` / :func:`check_intervals` -- the malformed-file checks the
  analyses run before using a file.

Every problem becomes one :class:`~engine.data.errors.DataError` line naming the
file and what is wrong.  pynwb is imported inside functions: importing this
module stays cheap.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from engine.data.errors import DataError

__all__ = [
    "TableInfo", "SeriesInfo", "NWBSummary", "Raster", "open_nwb", "is_nwb", "summarize", "walk",
    "find", "units_table", "spike_counts", "raster", "bisect_sorted", "electrode_areas", "table_head",
    "unit_areas", "series_preview", "raster_figure", "raster_page", "table_page", "series_figure",
    "check_units", "check_intervals", "format_summary",
]

#: Most rows a summary reads from a string column (electrode locations, areas).
MAX_ROWS = 200_000
#: Most spike times :func:`raster` returns in total.
MAX_SPIKES = 1_000_000


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
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not an NWB file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file, not an NWB file")
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


# --------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class TableInfo:
    """One table: ``path`` is where :func:`walk` finds it (``units``, ``intervals/trials``...)."""

    path: str
    kind: str
    n_rows: int
    columns: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class SeriesInfo:
    """One time series (or image stack); ``h5_path`` is its data inside the HDF5 file.

    ``h5_path`` lets the generic HDF5 previews (:mod:`engine.data.h5tree`) read it
    with their budgets.
    """

    path: str
    kind: str
    shape: tuple[int, ...]
    dtype: str
    unit: str
    rate: float | None
    starting_time: float | None
    h5_path: str
    description: str = ""


@dataclass(frozen=True)
class NWBSummary:
    """What an NWB file holds, from metadata (and the units index) only."""

    path: str
    identifier: str
    session_description: str
    session_start_time: str
    nwb_version: str
    units: TableInfo | None
    n_spikes: int | None
    unit_areas: dict[str, int] = field(default_factory=dict)
    electrode_areas: dict[str, int] = field(default_factory=dict)
    tables: tuple[TableInfo, ...] = ()
    series: tuple[SeriesInfo, ...] = ()

    @property
    def trials(self) -> TableInfo | None:
        return next((t for t in self.tables if t.path == "intervals/trials"), None)

    @property
    def epochs(self) -> TableInfo | None:
        return next((t for t in self.tables if t.path == "intervals/epochs"), None)

    def as_rows(self) -> list[tuple[str, str]]:
        """(label, value) rows for a details panel."""
        rows = [("identifier", self.identifier), ("session", self.session_description),
                ("start", self.session_start_time), ("NWB", self.nwb_version)]
        if self.units is None:
            rows.append(("units", "none"))
        else:
            rows.append(("units", f"{self.units.n_rows} ({self.n_spikes if self.n_spikes is not None else '?'} spikes)"))
        if self.unit_areas:
            rows.append(("unit areas", _counts_text(self.unit_areas)))
        if self.electrode_areas:
            rows.append(("electrode areas", _counts_text(self.electrode_areas)))
        for t in self.tables:
            rows.append((t.path, f"{t.kind}, {t.n_rows} rows: {', '.join(t.columns[:8])}"
                                 + (" ..." if len(t.columns) > 8 else "")))
        for s in self.series:
            rate = f", {s.rate:g} Hz" if s.rate else ""
            rows.append((s.path, f"{s.kind} {'x'.join(map(str, s.shape))} {s.unit}{rate}"))
        return rows


def _counts_text(counts: dict[str, int], limit: int = 12) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{k} {v}" for k, v in items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def format_summary(summary: NWBSummary) -> str:
    """The summary as aligned text lines (CLI, logs)."""
    from engine.text import safe_line

    rows = summary.as_rows()
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{safe_line(k):<{width}}  {safe_line(v)}" for k, v in rows)


def _is_table(obj) -> bool:
    from hdmf.common import DynamicTable

    return isinstance(obj, DynamicTable)


def _is_series(obj) -> bool:
    from pynwb import TimeSeries

    return isinstance(obj, TimeSeries)


def walk(nwb) -> dict[str, Any]:
    """Every table and time series of an open file by path (``units``, ``intervals/trials``,
    ``acquisition/x``, ``processing/behavior/Position/pos``, ``stimulus_template/natural_scenes``...).

    Containers only: nothing is read from the arrays.
    """
    out: dict[str, Any] = {}

    def visit(obj, prefix: str, depth: int = 0) -> None:
        if depth > 8:  # NWB nests a few levels; a deeper chain is not data we summarise
            return
        if _is_table(obj) or _is_series(obj):
            out[prefix] = obj
            return
        for child in getattr(obj, "children", ()) or ():
            visit(child, f"{prefix}/{child.name}", depth + 1)

    if nwb.units is not None:
        out["units"] = nwb.units
    if nwb.electrodes is not None:
        out["electrodes"] = nwb.electrodes
    for section in ("intervals", "acquisition", "processing", "stimulus", "stimulus_template", "analysis"):
        for name, obj in (getattr(nwb, section, None) or {}).items():
            visit(obj, f"{section}/{name}")
    return out


def _n_rows(table) -> int:
    return int(len(table.id))


def _table_info(path: str, table) -> TableInfo:
    return TableInfo(path=path, kind=type(table).__name__, n_rows=_n_rows(table),
                     columns=tuple(table.colnames), description=str(getattr(table, "description", "") or ""))


def _series_info(path: str, ts) -> SeriesInfo:
    data = ts.data
    shape = tuple(int(s) for s in getattr(data, "shape", np.shape(data)))
    dtype = str(getattr(data, "dtype", ""))
    h5_path = getattr(data, "name", "") or ""
    rate = getattr(ts, "rate", None)
    return SeriesInfo(path=path, kind=type(ts).__name__, shape=shape, dtype=dtype, unit=str(getattr(ts, "unit", "")),
                      rate=float(rate) if rate else None,
                      starting_time=float(ts.starting_time) if getattr(ts, "starting_time", None) is not None else None,
                      h5_path=h5_path if isinstance(h5_path, str) else "", description=str(ts.description or ""))


def _last_index(units) -> int | None:
    """Total spikes: the last entry of ``spike_times_index`` (one element read)."""
    if "spike_times" not in units.colnames:
        return None
    idx = units["spike_times"]  # VectorIndex
    data = idx.data
    n = len(data)
    return int(data[n - 1]) if n else 0


def _strings(col, limit: int = MAX_ROWS) -> np.ndarray:
    data = col.data
    n = min(len(data), limit)
    vals = data[:n]
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(vals).ravel()], dtype=object)


def electrode_areas(nwb) -> np.ndarray | None:
    """Brain area (``location``) of every electrode row, or None without electrodes."""
    e = nwb.electrodes
    if e is None or "location" not in e.colnames:
        return None
    return _strings(e["location"])


def unit_areas(nwb) -> np.ndarray | None:
    """Brain area of every unit, or None when the file does not say.

    In order: a units column naming the area (``location``,
    ``ecephys_structure_acronym``, ``brain_area``); the units' ``electrodes``
    region (its first electrode); Allen's ``peak_channel_id`` matched to the
    electrodes' ids.
    """
    units = nwb.units
    if units is None:
        return None
    n = _n_rows(units)
    for col in ("location", "ecephys_structure_acronym", "brain_area", "area", "structure_acronym"):
        if col in units.colnames:
            return _strings(units[col])[:n]
    areas = electrode_areas(nwb)
    if areas is None:
        return None
    if "electrodes" in units.colnames:
        region = units["electrodes"]  # VectorIndex over a DynamicTableRegion
        index = np.asarray(region.data[:n], dtype=np.int64)
        rows = np.asarray(region.target.data[:], dtype=np.int64)
        first = np.concatenate([[0], index[:-1]])
        out = np.full(n, "", dtype=object)
        has = index > first
        out[has] = areas[rows[first[has]]]
        return out
    if "peak_channel_id" in units.colnames:
        peak = np.asarray(units["peak_channel_id"].data[:n], dtype=np.int64)
        ids = np.asarray(nwb.electrodes.id.data[:], dtype=np.int64)
        order = np.argsort(ids)
        pos = np.searchsorted(ids, peak, sorter=order)
        pos = np.clip(pos, 0, len(ids) - 1)
        found = ids[order[pos]] == peak
        out = np.full(n, "", dtype=object)
        out[found] = areas[order[pos[found]]]
        return out
    return None


def _count(values: np.ndarray | None) -> dict[str, int]:
    if values is None:
        return {}
    keys, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
    return {str(k) or "(none)": int(c) for k, c in zip(keys, counts)}


def summarize(path: str | Path) -> NWBSummary:
    """An NWB-aware summary of ``path``: tables, series, units and areas, without reading data arrays."""
    path = Path(path)
    with open_nwb(path) as nwb:
        found = walk(nwb)
        tables, series = [], []
        for p, obj in found.items():
            if p == "units":
                continue
            if _is_table(obj):
                tables.append(_table_info(p, obj))
            else:
                series.append(_series_info(p, obj))
        units = nwb.units
        return NWBSummary(
            path=str(path), identifier=str(nwb.identifier), session_description=str(nwb.session_description),
            session_start_time=str(nwb.session_start_time), nwb_version=_version(path),
            units=_table_info("units", units) if units is not None else None,
            n_spikes=_last_index(units) if units is not None else None,
            unit_areas=_count(unit_areas(nwb)), electrode_areas=_count(electrode_areas(nwb)),
            tables=tuple(tables), series=tuple(series),
        )


def _version(path: Path) -> str:
    import h5py

    with h5py.File(path, "r") as f:
        v = f.attrs.get("nwb_version", "")
    return v.decode() if isinstance(v, bytes) else str(v)


# --------------------------------------------------------------------------- units


def units_table(nwb, where: str | Path = "") -> Any:
    """The units table, checked: it exists and has spike times (else one DataError line)."""
    check_units(nwb, where)
    return nwb.units


def check_units(nwb, where: str | Path = "") -> None:
    """Raise a DataError unless the file has a units table with consistent spike times."""
    units = nwb.units
    if units is None:
        raise DataError(f"{where}: no units table (this NWB file holds no sorted spikes)")
    if "spike_times" not in units.colnames:
        raise DataError(f"{where}: the units table has no spike_times column (columns: "
                        f"{', '.join(units.colnames) or 'none'})")
    n = _n_rows(units)
    idx = units["spike_times"].data
    if len(idx) != n:
        raise DataError(f"{where}: units has {n} rows but spike_times_index has {len(idx)} entries")
    total = len(units["spike_times"].target.data)
    last = int(idx[n - 1]) if n else 0
    if last > total:
        raise DataError(f"{where}: spike_times_index points past the end of spike_times ({last} > {total})")


def spike_counts(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(unit ids, spikes per unit), from the ragged index alone (one read of n_units integers)."""
    path = Path(path)
    with open_nwb(path) as nwb:
        check_units(nwb, path)
        units = nwb.units
        n = _n_rows(units)
        index = np.asarray(units["spike_times"].data[:n], dtype=np.int64)
        ids = np.asarray(units.id.data[:n])
    return ids, np.diff(np.concatenate([[0], index]))


@dataclass(frozen=True)
class Raster:
    """Spike times of some units in ``[t0, t1)``; ``times[i]`` belongs to ``unit_ids[i]``."""

    unit_ids: np.ndarray
    times: tuple[np.ndarray, ...]
    t0: float
    t1: float
    truncated: bool = False

    @property
    def n_spikes(self) -> int:
        return int(sum(len(t) for t in self.times))


def bisect_sorted(ds, lo: int, hi: int, value: float) -> int:
    """First position in ``ds[lo:hi]`` (sorted) with ``ds[pos] >= value``; about log2(n) one-element reads."""
    while hi - lo > 4096:  # narrow on disk, then finish in one small read
        mid = (lo + hi) // 2
        if float(ds[mid]) < value:
            lo = mid + 1
        else:
            hi = mid
    block = np.asarray(ds[lo:hi], dtype=float)
    return lo + int(np.searchsorted(block, value, side="left"))


def raster(path: str | Path, n_units: int = 50, t0: float | None = None, t1: float | None = None,
           max_spikes: int = MAX_SPIKES, first_unit: int = 0) -> Raster:
    """Spike times of units ``first_unit .. first_unit + n_units`` in ``[t0, t1)``.

    Spike times are sorted within a unit (the NWB convention), so the window is
    found by bisection on disk and only the spikes inside it are read.  Without
    ``t0``/``t1`` the window is the first 10 s after the earliest spike shown.
    At most ``max_spikes`` times are returned (``truncated`` says when cut).
    """
    path = Path(path)
    with open_nwb(path) as nwb:
        return _raster(nwb, path, n_units, t0, t1, max_spikes, first_unit)


def _raster(nwb, path: Path, n_units: int, t0: float | None, t1: float | None, max_spikes: int,
            first_unit: int) -> Raster:
    check_units(nwb, path)
    units = nwb.units
    n = _n_rows(units)
    a, b = max(0, int(first_unit)), min(n, int(first_unit) + max(0, int(n_units)))
    index = np.asarray(units["spike_times"].data[:b], dtype=np.int64)
    starts = np.concatenate([[0], index[:-1]])[a:b]
    stops = index[a:b]
    ds = units["spike_times"].target.data
    if t0 is None:
        firsts = [float(ds[s]) for s, e in zip(starts, stops) if e > s]
        t0 = min(firsts) if firsts else 0.0
    if t1 is None:
        t1 = t0 + 10.0
    if not t1 > t0:
        raise DataError(f"{path}: raster window must have t1 > t0, got [{t0}, {t1})")
    times, budget, cut = [], int(max_spikes), False
    for s, e in zip(starts, stops):
        i = bisect_sorted(ds, int(s), int(e), t0) if e > s else int(s)
        j = bisect_sorted(ds, i, int(e), t1) if e > i else i
        if j - i > budget:
            j, cut = i + budget, True
        times.append(np.asarray(ds[i:j], dtype=float) if j > i else np.zeros(0))
        budget -= j - i
    ids = np.asarray(units.id.data[a:b])
    return Raster(unit_ids=ids, times=tuple(times), t0=float(t0), t1=float(t1), truncated=cut)


# --------------------------------------------------------------------------- tables and series


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


# --------------------------------------------------------------------------- figures (for the Datasets pane)


def raster_figure(path: str | Path, first_unit: int = 0, n_units: int = 50, t0: float | None = None,
                  t1: float | None = None, max_spikes: int = 200_000):
    """An :class:`engine.views.Figure` of :func:`raster`: one point per spike, y = unit row.

    ``first_unit`` steps through the units ``n_units`` at a time (the figure's
    index is the page); the caption gives the window, the spike count and the areas.
    """
    return raster_page(path, first_unit, n_units, t0, t1, max_spikes)[0]


def raster_page(path: str | Path, first_unit: int = 0, n_units: int = 50, t0: float | None = None,
                t1: float | None = None, max_spikes: int = 200_000):
    """(figure, t0, t1, n_units_in_file): :func:`raster_figure` and the window it shows, so a
    browser paging through time knows where the first window (``t0=None``) began."""
    from engine.text import safe_line
    from engine.views import Figure, Panel, Series

    path = Path(path)
    with open_nwb(path) as nwb:  # one open: the counts and the window from the same file handle
        check_units(nwb, path)
        units = nwb.units
        n = _n_rows(units)
        total = int(units["spike_times"].data[n - 1]) if n else 0
        first_unit = max(0, min(int(first_unit), max(0, n - 1)))
        r = _raster(nwb, path, n_units, t0, t1, max_spikes, first_unit)
    pages = max(1, -(-n // max(1, n_units)))
    x = np.concatenate([t for t in r.times]) if r.times else np.zeros(0)
    y = np.concatenate([np.full(len(t), first_unit + k, dtype=float) for k, t in enumerate(r.times)]) \
        if r.times else np.zeros(0)
    panel = Panel(label=f"units {first_unit}-{first_unit + len(r.unit_ids) - 1}",
                  series=[Series("", x, y, role="points")], xlabel="time (s)", ylabel="unit row")
    cut = " (truncated)" if r.truncated else ""  # no series label: a legend would hide the top unit's spikes
    fig = Figure(title=f"{safe_line(path.name)}: spike raster", panels=[panel], n_index=pages,
                 index=first_unit // max(1, n_units),
                 caption=f"{r.t0:.2f}–{r.t1:.2f} s · {r.n_spikes} spikes{cut} · {total} spikes in {n} units")
    return fig, r.t0, r.t1, n


def series_figure(path: str | Path, name: str, channel: int = 0, max_points: int = 2000):
    """An :class:`engine.views.Figure` of :func:`series_preview` (one channel, decimated)."""
    from engine.text import safe_line
    from engine.views import Figure, Panel, Series

    t, y = series_preview(path, name, max_points=max_points, channel=channel)
    shown = safe_line(name)  # the series' name comes from the file
    panel = Panel(label=f"{shown} [{channel}]", series=[Series(shown.rsplit("/", 1)[-1], t, y)], xlabel="time (s)")
    return Figure(title=f"{safe_line(Path(path).name)}: {shown}", panels=[panel], caption=f"{len(t)} samples shown")
