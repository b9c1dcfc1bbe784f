"""The units table: its checks, spikes per unit and the windowed raster (bisection on disk)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.errors import DataError
from engine.data.nwb.opening import _n_rows, open_nwb

#: Most spike times :func:`raster` returns in total.
MAX_SPIKES = 1_000_000


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
