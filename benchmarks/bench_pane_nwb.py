"""Benchmark of the Datasets pane's NWB view on a ~1 GB NWB file (issue 21).

``pane_nwb_summary``: write the file of :mod:`benchmarks.bench_nwb` (a child
process), then run the Datasets pane headless at 80x24 (Textual's Pilot) and time
from selecting the file in the tree to the NWB summary drawn in the pane: the
first time (pynwb imported in the worker, its type map warmed up) and again
(the warm case: the file selected after another one).  Then the first raster page
and the trials table, each from its key press to its drawing.  The file was just
written, so it is in the page cache: warm-cache times.

Prints one JSON line.  ``python -m benchmarks.bench_pane_nwb [--gib 1.0] [--keep PATH]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import machine


async def _until(pilot, done, timeout: float = 120.0) -> float:
    t0 = time.perf_counter()
    while not done():
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("the pane did not show it in time")
        await pilot.pause(0.005)
    return time.perf_counter() - t0


async def _measure(path: Path, other: Path) -> dict:
    from textual.app import App
    from textual.widgets import Tree

    from workbench.panes.datasets import DatasetsPane, NwbBrowser

    class PaneApp(App):
        def compose(self):
            yield DatasetsPane([path, other], id="datasets")

    app = PaneApp()
    out: dict = {}
    async with app.run_test(size=(80, 24)) as pilot:
        tree = app.query_one("#ds-tree", Tree)
        browser = app.query_one(NwbBrowser)
        big, small = tree.root.children[0], tree.root.children[1]

        async def select(node) -> float:
            browser.summary = None
            t0 = time.perf_counter()
            tree.select_node(node)
            await _until(pilot, lambda: browser.summary is not None and browser.items)
            await pilot.pause()  # one refresh: the summary is drawn
            return time.perf_counter() - t0

        out["first_summary_ms"] = round(1000 * await select(big), 1)
        await select(small)
        out["summary_ms"] = round(1000 * min([await select(big) for _ in range(3)]), 1)
        t0 = time.perf_counter()
        await pilot.press("enter")  # the first item: the raster
        await _until(pilot, lambda: browser.figure is not None)
        await pilot.pause()
        out["raster_ms"] = round(1000 * (time.perf_counter() - t0), 1)
        out["raster_caption"] = browser.figure.caption
        await pilot.press("escape")
        trials = next(i for i, it in enumerate(browser.items) if it.name == "intervals/trials")
        await pilot.press(*["down"] * trials)
        t0 = time.perf_counter()
        await pilot.press("enter")
        await _until(pilot, lambda: browser.frame is not None)
        await pilot.pause()
        out["trials_table_ms"] = round(1000 * (time.perf_counter() - t0), 1)
    return out


def bench_pane_nwb(gib: float = 1.0, keep: Path | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pane-nwb-"))
    try:
        path = keep if keep is not None else tmp / "big.nwb"
        if not path.exists():
            subprocess.run([sys.executable, "-m", "benchmarks.bench_nwb", "--write", str(path), "--gib", str(gib)],
                           check=True, cwd=Path(__file__).resolve().parent.parent)
        other = tmp / "small.nwb"
        subprocess.run([sys.executable, "-m", "benchmarks.bench_nwb", "--write", str(other), "--gib", "0.02"],
                       check=True, cwd=Path(__file__).resolve().parent.parent)
        size = path.stat().st_size / 2**30
        result = asyncio.run(_measure(path, other))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"name": "pane_nwb_summary", "file_gib": round(size, 2), **result,
            "anchor": "summary < 300 ms once pynwb is imported (issue 21: tree < 300 ms)",
            "ratio": round(result["summary_ms"] / 300.0, 3), "device": "cpu", **machine()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0, help="about the size of the NWB file")
    ap.add_argument("--keep", type=Path, default=None, help="write the file here once and reuse it")
    args = ap.parse_args(argv)
    print(json.dumps(bench_pane_nwb(args.gib, args.keep)), flush=True)


if __name__ == "__main__":
    main()
