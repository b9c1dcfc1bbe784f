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

Split by concern: ``opening`` (the file; pynwb's errors as one line), ``summary`` (the
tree, the areas), ``units`` (checks, counts, the raster), ``tables`` (table rows, series
previews, the intervals check), ``figures`` (the Datasets pane's raster and series plots).
"""

from engine.data.nwb.figures import raster_figure, raster_page, series_figure
from engine.data.nwb.opening import is_nwb, open_nwb
from engine.data.nwb.summary import (
    MAX_ROWS, NWBSummary, SeriesInfo, TableInfo, electrode_areas, format_summary, summarize, unit_areas, walk,
)
from engine.data.nwb.tables import check_intervals, find, series_preview, table_head, table_page
from engine.data.nwb.units import MAX_SPIKES, Raster, bisect_sorted, check_units, raster, spike_counts, units_table

__all__ = [
    "TableInfo", "SeriesInfo", "NWBSummary", "Raster", "open_nwb", "is_nwb", "summarize", "walk",
    "find", "units_table", "spike_counts", "raster", "bisect_sorted", "electrode_areas", "table_head",
    "unit_areas", "series_preview", "raster_figure", "raster_page", "table_page", "series_figure",
    "check_intervals", "check_units", "format_summary", "MAX_ROWS", "MAX_SPIKES",
]
