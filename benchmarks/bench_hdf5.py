"""Benchmarks of the HDF5 data layer (issue 4).

``hdf5_open``: write a ~2 GB chunked HDF5 file in a temp dir, then time opening
the tree, listing it, node metadata, sampled statistics and previews (a frame,
a strided 1-D line, a 2-D slice), and report the peak RSS growth of those reads.
Anchor from the issue: tree < 200 ms, preview memory < 200 MB.  The file was
just written, so it is in the page cache: times are warm-cache times.

``retina_gen``: seconds to write the default synthetic retina (30,000 frames,
9 cells), anchor "a few seconds" (3 s); ``retina_eda``: seconds for the EDA on it.

Each prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux), so the peak covers only what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _write_big(path: Path, gib: float) -> float:
    import h5py

    frame = 512
    stack_bytes = int(gib * 0.875 * 2**30)
    frames = stack_bytes // (frame * frame * 4)
    line_len = int(gib * 0.125 * 2**30) // 4
    rng = np.random.default_rng(0)
    block = rng.standard_normal((16, frame, frame), dtype=np.float32)
    with h5py.File(path, "w") as fh:
        fh.attrs["purpose"] = "bench_hdf5"
        grp = fh.create_group("recording")
        ds = grp.create_dataset("frames", shape=(frames, frame, frame), dtype="f4", chunks=(8, 256, 256))
        for a in range(0, frames, 16):
            n = min(16, frames - a)
            ds[a : a + n] = block[:n] + a  # cheap, but not constant
        line = grp.create_dataset("signal", shape=(line_len,), dtype="f4", chunks=(1 << 20,))
        piece = rng.standard_normal(1 << 22, dtype=np.float32)
        for a in range(0, line_len, 1 << 22):
            n = min(1 << 22, line_len - a)
            line[a : a + n] = piece[:n]
        for i in range(200):  # a wide group, as in real files with many cells
            fh.create_dataset(f"cells/cell_{i:03d}", data=np.zeros(10, np.float32))
    return path.stat().st_size / 2**30


def bench_hdf5_open(gib: float = 2.0) -> dict:
    from engine.data import h5tree

    tmp = Path(tempfile.mkdtemp(prefix="bench-hdf5-"))
    try:
        path = tmp / "big.h5"
        t0 = time.perf_counter()
        # Written by a child process so this one's heap (and RSS) starts clean.
        subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_hdf5", "--write", str(path), "--gib", str(gib)],
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        size = path.stat().st_size / 2**30
        write_s = time.perf_counter() - t0

        exact_peak = _reset_peak()
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        root = h5tree.open_tree(path)
        kids = root.children()
        sub = h5tree.list_children(path, "/recording")
        tree_ms = 1000 * (time.perf_counter() - t0)
        t0 = time.perf_counter()
        cells = h5tree.list_children(path, "/cells")
        wide_ms = 1000 * (time.perf_counter() - t0)
        assert len(kids) == 2 and len(sub) == 2 and len(cells) == 200

        t0 = time.perf_counter()
        h5tree.node_info(path, "/recording/frames")
        frame = h5tree.read_frame(path, "/recording/frames", 1000)
        frame_ms = 1000 * (time.perf_counter() - t0)
        assert frame.shape == (512, 512)

        t0 = time.perf_counter()
        stats = h5tree.sample_stats(path, "/recording/frames", max_elems=1_000_000)
        stats_ms = 1000 * (time.perf_counter() - t0)
        assert not stats.exact

        t0 = time.perf_counter()
        line = h5tree.preview_slice(path, "/recording/signal", max_points=2000)
        line_ms = 1000 * (time.perf_counter() - t0)
        t0 = time.perf_counter()
        heat = h5tree.preview_slice(path, "/recording/frames", axes=(0, 2), index={1: 100}, max_points=(200, 200))
        slice_ms = 1000 * (time.perf_counter() - t0)
        assert line.data.size <= 2000 and heat.data.shape[0] <= 200
        growth = _peak_rss_mb() - rss0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "name": "hdf5_open",
        "file_gib": round(size, 2),
        "write_s": round(write_s, 2),
        "tree_ms": round(tree_ms, 1),
        "wide_group_200_ms": round(wide_ms, 1),
        "frame_ms": round(frame_ms, 1),
        "stats_ms": round(stats_ms, 1),
        "line_preview_ms": round(line_ms, 1),
        "slice_preview_ms": round(slice_ms, 1),
        "preview_rss_growth_mb": round(growth, 1),
        "peak_rss_exact": exact_peak,
        "anchor": "tree < 200 ms and preview RSS growth < 200 MB (issue 4)",
        "ratio": round(max(tree_ms / 200.0, growth / 200.0), 3),
        "device": "cpu",
    }


def bench_retina(frames: int = 30000) -> list[dict]:
    from engine.data.eda import retina_eda
    from engine.data.retina_gen import generate_retina

    tmp = Path(tempfile.mkdtemp(prefix="bench-retina-"))
    try:
        t0 = time.perf_counter()
        path = generate_retina(tmp / "naturalscene.h5", cells=9, frames=frames, seed=0)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        eda = retina_eda(path)
        eda_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        {"name": "retina_gen", "frames": frames, "cells": 9, "seconds": round(gen_s, 2),
         "anchor": "30,000 frames in a few seconds (3 s)", "ratio": round(gen_s / 3.0, 3), "device": "cpu"},
        {"name": "retina_eda", "frames": frames, "seconds": round(eda_s, 2), "lag_mode": eda.lag_mode,
         "zero_fraction": round(eda.zero_fraction, 3), "anchor": "lag mode within 8-12 frames (seed 000)",
         "ratio": round(eda_s / 3.0, 3), "device": "cpu"},
    ]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=2.0, help="size of the HDF5 file to browse")
    ap.add_argument("--only", choices=["hdf5_open", "retina"], default=None)
    ap.add_argument("--write", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.write is not None:
        _write_big(args.write, args.gib)
        return
    if args.only in (None, "hdf5_open"):
        print(json.dumps(bench_hdf5_open(args.gib)), flush=True)
    if args.only in (None, "retina"):
        for row in bench_retina():
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
