"""What the NWB view draws, as plain functions of engine data (no widget state).

Every string that comes from the file (identifier, descriptions, area names,
column names, table cells) goes through :func:`engine.text.safe_line`: a file's
control characters are shown as escapes, never sent to the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.table import Table
from rich.text import Text

from engine.text import safe_line

__all__ = ["NwbItem", "summary_head", "summary_items", "table_view", "UNIT_DATA_COLUMNS"]

#: Units columns that hold data, not per-unit labels; the rest (quality metrics, areas) are listed.
UNIT_DATA_COLUMNS = {"spike_times", "electrodes", "electrode_group", "waveform_mean", "waveform_sd",
                     "waveforms", "obs_intervals", "spike_amplitudes"}


@dataclass(frozen=True)
class NwbItem:
    """One thing the NWB view can open: ``kind`` is "raster", "table" or "series"; ``name``
    the table's or series' path in the file (``intervals/trials``)."""

    kind: str
    name: str
    label: str
    channels: int = 1


def _counts(counts: dict[str, int], limit: int = 8) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{safe_line(k)} {v}" for k, v in items[:limit])
    return text + (f", … {len(items) - limit} more" if len(items) > limit else "")


def summary_head(s: Any) -> Table:
    """Session, units (count, spikes, quality columns, areas) and electrodes, one row each."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    what = safe_line(s.identifier) + (f" · {safe_line(s.session_description)}" if s.session_description else "")
    grid.add_row("session", Text(what))
    if s.units is None:
        grid.add_row("units", Text("⚠ no units table: this file holds no sorted spikes", style="yellow"))
    else:
        spikes = f"{s.n_spikes} spikes" if s.n_spikes is not None else "no spike times"
        grid.add_row("units", Text(f"{s.units.n_rows} · {spikes}"))
        labels = [safe_line(c) for c in s.units.columns if c not in UNIT_DATA_COLUMNS]
        if labels:
            grid.add_row("quality", Text(", ".join(labels)))
        if s.unit_areas:
            grid.add_row("unit areas", Text(_counts(s.unit_areas)))
    electrodes = next((t for t in s.tables if t.path == "electrodes"), None)
    if electrodes is not None:
        areas = f" · {_counts(s.electrode_areas)}" if s.electrode_areas else ""
        grid.add_row("electrodes", Text(f"{electrodes.n_rows}{areas}"))
    return grid


def _table_order(path: str) -> tuple[int, str]:
    # trials and epochs first, then stimulus presentations (other intervals), electrodes, the rest
    rank = {"intervals/trials": 0, "intervals/epochs": 1}.get(path)
    if rank is None:
        rank = 2 if path.startswith("intervals/") else 3 if path == "electrodes" else 4
    return rank, path


def summary_items(s: Any) -> list[NwbItem]:
    """What can be opened: the spike raster, the tables, then the time series."""
    out: list[NwbItem] = []
    if s.units is not None:
        spikes = f"{s.n_spikes} spikes" if s.n_spikes is not None else "no spike times"
        out.append(NwbItem("raster", "units", f"raster   units · {s.units.n_rows} units, {spikes}"))
        out.append(NwbItem("table", "units", f"table    units · {s.units.n_rows} rows"))
    for t in sorted(s.tables, key=lambda t: _table_order(t.path)):
        cols = ", ".join(safe_line(c) for c in t.columns[:4]) + (", …" if len(t.columns) > 4 else "")
        out.append(NwbItem("table", t.path, f"table    {safe_line(t.path)} · {t.n_rows} rows · {cols}"))
    for x in s.series:
        shape = "×".join(map(str, x.shape))
        rate = f" · {x.rate:g} Hz" if x.rate else ""
        channels = int(np.prod(x.shape[1:2])) if len(x.shape) > 1 else 1
        out.append(NwbItem("series", x.path, f"series   {safe_line(x.path)} · {safe_line(x.kind)} {shape}"
                                             f" {safe_line(x.unit)}{rate}", channels=channels))
    return out


def _cell(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return safe_line(v)


def table_view(df: Any, first_row: int, first_col: int, n_rows: int) -> Table:
    """Rows ``first_row..`` (``n_rows`` of them) and columns ``first_col..`` of a table head,
    the id column always first."""
    table = Table(box=None, padding=(0, 1), header_style="bold", show_edge=False)
    table.add_column("id", justify="right", no_wrap=True, style="dim")
    cols = list(df.columns)[first_col:]
    for c in cols:
        table.add_column(safe_line(c), no_wrap=True, overflow="ellipsis", max_width=24)
    rows = df.iloc[first_row:first_row + max(0, n_rows)]
    for ident, row in zip(rows.index, rows.itertuples(index=False)):
        table.add_row(_cell(ident), *(_cell(v) for v in list(row)[first_col:]))
    return table
