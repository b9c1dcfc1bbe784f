"""Benchmark of opening a large NWB file through pynwb (issue 21).

``nwb_open``: write a ~1 GB NWB file with pynwb in a temp dir (a child process:
384 electrodes in 5 areas, 400 units with 150,000 spike times each, 1,000 trials,
2,000 stimulus presentations, an int16 LFP-like ElectricalSeries of ~500 MB and a
behavioural series), then, in a process that has imported pynwb, time
:func:`engine.data.nwb.summarize` (open + the NWB-aware tree: units, spikes,
areas, tables, series) and the bounded reads the Datasets pane makes (spike
counts, a 50-unit raster of 10 s, a trials head, a decimated series preview),
and report the peak RSS growth.  Anchor from the issue: tree < 300 ms, < 200 MB.
The file was just written, so it is in the page cache: warm-cache times.
``import_s`` (pynwb's import, paid once per process) is reported beside them.

Prints one JSON line.  ``python -m benchmarks.bench_nwb [--gib 1.0] [--keep PATH]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import best_of, machine
from benchmarks.bench_hdf5 import _peak_rss_mb, _reset_peak, _rss_mb

AREAS = ("VISam", "VISp", "VISl", "CA1", "LGd")


def _write_big(path: Path, gib: float) -> None:
    from datetime import datetime, timezone

    from pynwb import H5DataIO, NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.ecephys import ElectricalSeries
    from pynwb.epoch import TimeIntervals

    rng = np.random.default_rng(0)
    n_units, spikes_per_unit, n_ch = 400, int(150_000 * gib), 384
    lfp_rows = int(0.5 * gib * 2**30) // (2 * n_ch)
    f = NWBFile(session_description="bench_nwb", identifier="bench",
                session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    dev = f.create_device("probeA")
    grp = f.create_electrode_group("probeA", description="Neuropixels", location="", device=dev)
    for ch in range(n_ch):
        f.add_electrode(group=grp, location=AREAS[ch * len(AREAS) // n_ch])
    duration = 3600.0
    for u in range(n_units):
        t = np.cumsum(rng.exponential(duration / spikes_per_unit, spikes_per_unit))
        f.add_unit(spike_times=t, electrodes=[u % n_ch])
    for k in range(1000):
        f.add_trial(start_time=3.0 * k, stop_time=3.0 * k + 2.5)
    pres = TimeIntervals(name="natural_scenes_presentations", description="images")
    pres.add_column("frame", "image index")
    for k in range(2000):
        pres.add_interval(start_time=0.25 * k, stop_time=0.25 * (k + 1), frame=k % 118)
    f.add_time_intervals(pres)
    lfp = np.resize(rng.integers(-500, 500, size=(10_000, n_ch), dtype=np.int16), (lfp_rows, n_ch))
    region = f.create_electrode_table_region(list(range(n_ch)), "all channels")
    f.add_acquisition(ElectricalSeries(name="lfp", electrodes=region, rate=2500.0,
                                       data=H5DataIO(lfp, chunks=(10_000, n_ch))))
    beh = f.create_processing_module("behavior", "running")
    beh.add(TimeSeries(name="running_speed", data=rng.normal(size=360_000), unit="cm/s", rate=100.0))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)


def bench_nwb_open(gib: float = 1.0, keep: Path | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-nwb-"))
    try:
        path = keep if keep is not None else tmp / "big.nwb"
        t0 = time.perf_counter()
        if not path.exists():  # written by a child so this process's heap starts clean
            subprocess.run([sys.executable, "-m", "benchmarks.bench_nwb", "--write", str(path), "--gib", str(gib)],
                           check=True, cwd=Path(__file__).resolve().parent.parent)
        write_s = time.perf_counter() - t0
        size = path.stat().st_size / 2**30

        t0 = time.perf_counter()
        import pynwb  # noqa: F401  (once per process; the TUI pays it in a worker thread)

        from engine.data import nwb

        import_s = time.perf_counter() - t0
        exact_peak = _reset_peak()
        rss0 = _rss_mb()
        first_ms = 1000 * best_of(lambda: nwb.summarize(path), 1)[0]  # the first open: pynwb's type map warms up
        tree_s, summary = best_of(lambda: nwb.summarize(path), 3)
        tree_growth = _peak_rss_mb() - rss0
        assert summary.units.n_rows == 400 and summary.unit_areas and summary.trials.n_rows == 1000

        counts_s, (_, counts) = best_of(lambda: nwb.spike_counts(path), 3)
        assert counts.sum() == summary.n_spikes
        raster_s, r = best_of(lambda: nwb.raster(path, n_units=50, t0=1000.0, t1=1010.0), 3)
        head_s, _ = best_of(lambda: nwb.table_head(path, "trials", rows=50), 3)
        prev_s, (t, y) = best_of(lambda: nwb.series_preview(path, "acquisition/lfp", max_points=2000), 3)
        assert len(y) <= 2000
        growth = _peak_rss_mb() - rss0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tree_ms = 1000 * tree_s
    return {
        "name": "nwb_open",
        "file_gib": round(size, 2),
        "write_s": round(write_s, 1),
        "import_s": round(import_s, 2),
        "first_tree_ms": round(first_ms, 1),
        "tree_ms": round(tree_ms, 1),
        "tree_rss_growth_mb": round(tree_growth, 1),
        "spike_counts_ms": round(1000 * counts_s, 1),
        "raster_50_units_10s_ms": round(1000 * raster_s, 1),
        "raster_spikes": r.n_spikes,
        "trials_head_ms": round(1000 * head_s, 1),
        "series_preview_ms": round(1000 * prev_s, 1),
        "rss_growth_mb": round(growth, 1),
        "peak_rss_exact": exact_peak,
        "anchor": "tree < 300 ms and < 200 MB (issue 21)",
        "ratio": round(max(tree_ms / 300.0, growth / 200.0), 3),
        "device": "cpu",
        **machine(),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0, help="about the size of the NWB file")
    ap.add_argument("--keep", type=Path, default=None, help="write the file here once and reuse it")
    ap.add_argument("--write", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.write is not None:
        _write_big(args.write, args.gib)
        return
    print(json.dumps(bench_nwb_open(args.gib, args.keep)), flush=True)


if __name__ == "__main__":
    main()
