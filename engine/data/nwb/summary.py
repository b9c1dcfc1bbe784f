"""The NWB-aware tree of a file: its tables, time series, units and brain areas.

:func:`summarize` reads metadata, the units index and the area columns only: no
spike time or sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.nwb.opening import _is_series, _is_table, _n_rows, open_nwb

#: Most rows a summary reads from a string column (electrode locations, areas).
MAX_ROWS = 200_000


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
