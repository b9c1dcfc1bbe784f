"""Figures for the Datasets pane: the spike raster (paged by units and time) and a series plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.data.nwb.opening import _n_rows, open_nwb
from engine.data.nwb.tables import series_preview
from engine.data.nwb.units import _raster, check_units


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
