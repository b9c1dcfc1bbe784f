"""The retina pipeline over data seeds and generator sizes: does the CfC learn on each?

For every (data seed, frames) pair: generate the synthetic ``naturalscene.h5``, run every
step of ``retina`` (train, ln, prune, sindy, evaluate) in its own session through the job
runner (what ``workbench run retina --headless --json --set data=F`` does), and keep the
job's result.  Runs go in parallel (one process each, one torch thread each).  Prints one
JSON line: per run the whole-validation correlation of the CfC, the noise ceiling, the
ratio, the test table's metrics per row; and per size the mean and spread over seeds.

    python -m benchmarks.bench_retina_seeds --seeds 0-4 --frames 12000,30000 --workers 10 \\
        --out results.json [--set iterations=1200 ...] [--device cuda]

``--quick`` is a smoke run (tiny sizes); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

QUICK = {"iterations": 6, "samples": 600, "max_test_frames": 400, "seq_len": 12, "n_frames": 6,
         "val_batches": 2, "test_frames": 400}


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def one_run(seed: int, frames: int, sets: dict, root: str, test_frames: int | None,
            out_dir: str | None = None, train_only: bool = False) -> dict:
    """Generate one file and run the whole pipeline on it (two jobs: generate, train, ln;
    then prune, sindy, evaluate, taking the first's files); returns both jobs' results.
    With ``out_dir``, each job's result is also written there as it ends (a run cut short
    by a time limit still leaves its training figures)."""
    import torch

    torch.set_num_threads(1)
    from engine.data.retina_gen import generate_retina
    from engine.jobs import runner
    from engine.session import Session

    name = f"s{seed}_f{frames}"
    data = Path(root) / f"{name}.h5"
    generate_retina(data, frames=frames, seed=seed, test_frames=test_frames)
    session = Session.open(name, Path(root) / "sessions")
    t0 = time.perf_counter()
    res: dict = {"seed": seed, "frames": frames}
    phases = (["generate", "train", "ln"],) if train_only else (["generate", "train", "ln"], ["prune", "sindy", "evaluate"])
    for phase, steps in enumerate(phases):
        job = runner.run_job(session, runner.submit(session, "retina", steps, {**sets, "data": str(data)}))
        res.update(job.result or {})
        res.update(state=job.state, error=job.error, wall_s=round(time.perf_counter() - t0, 1), phase=phase + 1)
        if res.get("val_corr_whole") is not None and res.get("val_ceiling"):
            res["val_ratio"] = res["val_corr_whole"] / res["val_ceiling"]
        if out_dir:
            Path(out_dir, f"{name}.json").write_text(json.dumps(res, default=str, indent=1))
        if job.state != "finished":
            break
    session.close()
    return res


def _free_run_ratio(r: dict) -> float | None:
    """SINDy's free-running test correlation over the CfC's (issue 17's second target)."""
    corr = r.get("corr") or {}
    cfc, free = corr.get("CfC"), corr.get("SINDy free-run")
    return free / cfc if cfc and free is not None else None


def summarise(runs: list[dict]) -> dict:
    """Mean and spread (std, min, max) over seeds of the headline figures, per size."""
    import numpy as np

    out: dict = {}
    for frames in sorted({r["frames"] for r in runs}):
        rs = [r for r in runs if r["frames"] == frames and r.get("state") == "finished"]
        row: dict = {"runs": len(rs)}
        keys = {"val_corr_whole": lambda r: r.get("val_corr_whole"), "val_ceiling": lambda r: r.get("val_ceiling"),
                "val_ratio": lambda r: r.get("val_ratio"), "ln_val_corr": lambda r: r.get("ln_val_corr"),
                "train_s": lambda r: r.get("train_s"), "test_corr_ceiling": lambda r: r.get("corr_ceiling"),
                "sindy_free_run_ratio": _free_run_ratio}
        for metric in ("mae", "corr", "bits_per_spike", "fev"):
            for model in ("CfC", "CfC-pruned", "SINDy", "SINDy free-run", "LN", "zeros", "train mean",
                          "noise-free rate"):
                keys[f"test_{metric}:{model}"] = lambda r, m=metric, k=model: (r.get(m) or {}).get(k)
        for key, get in keys.items():
            vals = np.array([v for v in (get(r) for r in rs) if v is not None], dtype=float)
            if len(vals):
                row[key] = {"mean": float(vals.mean()), "std": float(vals.std()), "min": float(vals.min()),
                            "max": float(vals.max())}
        row["noise_from"] = sorted({str(r.get("noise_from")) for r in rs})
        row["sindy_free_run_at_least_0.9_cfc_every_seed"] = bool(rs) and all(
            (_free_run_ratio(r) or 0) >= 0.9 for r in rs)
        row["cfc_at_least_0.8_ceiling_every_seed"] = bool(rs) and all((r.get("val_ratio") or 0) >= 0.8 for r in rs)
        row["cfc_beats_ln_every_seed"] = bool(rs) and all(
            (r.get("val_corr_whole") or 0) >= (r.get("ln_val_corr") or 0) for r in rs)
        out[str(frames)] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-4")
    ap.add_argument("--frames", default="12000,30000")
    ap.add_argument("--test-frames", type=int, default=None, help="default: the generator's (frames / 6)")
    ap.add_argument("--workers", type=int, default=min(10, os.cpu_count() or 1))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--device", default=None, help="train on this device (default: the step's 'auto')")
    ap.add_argument("--root", default=None, help="folder for files and sessions (default: a temp folder)")
    ap.add_argument("--out", default=None, help="also write the JSON here (rewritten as runs finish)")
    ap.add_argument("--runs-dir", default=None, help="write each run's result here as each of its jobs ends")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--train-only", action="store_true", help="generate, train and ln only (a training variant)")
    args = ap.parse_args(argv)

    from engine.analyses import get
    from engine.analyses.base import parse_sets

    sets = dict(QUICK) if args.quick else {}
    test_frames = sets.pop("test_frames", None) if args.quick else args.test_frames
    sets.update(parse_sets(args.set, get("retina").params()))
    if args.device:
        sets["device"] = args.device
    frames = [int(f) for f in args.frames.split(",")]
    if args.quick:
        frames = [1200]
    root = args.root or tempfile.mkdtemp(prefix="bench_retina_")
    if args.runs_dir:
        Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    jobs = [(s, f) for f in frames for s in _seeds(args.seeds)]
    runs: list[dict] = []
    t0 = time.perf_counter()

    def dump() -> dict:
        out = {"bench": "retina_seeds", "sets": sets, "runs": runs, "summary": summarise(runs),
               "wall_s": round(time.perf_counter() - t0, 1), "load_avg": os.getloadavg()[0]}
        if args.out:
            Path(args.out).write_text(json.dumps(out, default=str, indent=1))
        return out

    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futs = {pool.submit(one_run, s, f, sets, root, test_frames, args.runs_dir, args.train_only): (s, f) for s, f in jobs}
        for fut in as_completed(futs):
            s, f = futs[fut]
            try:
                runs.append(fut.result())
            except Exception as exc:  # one failed run is a result, not the end of the benchmark
                runs.append({"seed": s, "frames": f, "state": "crashed", "error": repr(exc)})
            r = runs[-1]
            print(f"seed {s} frames {f}: {r.get('state')} val corr {r.get('val_corr_whole')} "
                  f"ceiling {r.get('val_ceiling')} LN {r.get('ln_val_corr')} ({r.get('wall_s')} s)",
                  file=sys.stderr, flush=True)
            dump()
    print(json.dumps(dump(), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
