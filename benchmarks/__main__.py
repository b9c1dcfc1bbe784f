"""Run every benchmark; each prints one JSON line.  ``python -m benchmarks [--device cuda] [names...]``"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

BENCHES = ["bench_sindy", "bench_train", "bench_tui", "bench_hdf5", "bench_dask"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("names", nargs="*", help=f"subset of {BENCHES}")
    args = ap.parse_args()
    failed = 0
    for name in args.names or BENCHES:
        importlib.import_module(f"benchmarks.{name}")  # fail fast on a typo
        # each in its own interpreter: no torch threads or caches shared between them
        cmd = [sys.executable, "-m", f"benchmarks.{name}"]
        if name == "bench_train":
            cmd += ["--device", args.device]
        failed += subprocess.call(cmd) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
