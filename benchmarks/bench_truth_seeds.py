"""Issue 18's figures: one synthetic analysis over fresh seeds, scored against the generator's truth.

Runs every step (truth included) of ``connectome``, ``stimulus``, ``lds`` or ``mei`` once
per seed through :func:`engine.seeds.over_seeds` (in this process; ``workbench seeds NAME ...``
does), each seed in its own folder, and prints one JSON line: the per-seed results of the
figures the issue's targets name, and their mean and std over seeds.

    python -m benchmarks.bench_truth_seeds connectome --seeds 0,1,2 [--set target=oracle ...]
        [--workers 3] [--out results.json]

CPU defaults take minutes per seed (connectome/stimulus ~1-2 min unloaded, lds ~5 min).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

FIGURES = {
    "connectome": ("W_r2", "W_slope", "types_ari", "n_types_found", "n_types_true", "phi_r2", "psi_r2",
                   "omega_r2_corrected", "rollout_r2", "heldout_deriv_r2", "reassigned"),
    "stimulus": ("r2_corrected", "W_r2", "W_slope", "types_ari", "n_types_found", "rollout_r2"),
    "lds": ("co_bps", "latent_r2_cv", "inferred_diag_found", "inferred_extra_max_per_eq", "inferred_missed",
            "inferred_diag_max_abs_err", "reference_diag_found", "reference_extra_max_per_eq",
            "reference_diag_max_abs_err", "sindy_threshold_chosen", "sindy_terms"),
    "mei": ("mei_vs_optimum_median", "mei_vs_optimum_min", "best_natural_vs_optimum_median",
            "gabor_vs_optimum_median", "frac_mei_above_natural", "frac_mei_above_gabor", "model_vs_true_median",
            "median_test_corr", "mei_vs_in_range_optimum_median", "mei_vs_in_range_optimum_min",
            "best_natural_vs_in_range_optimum_median", "gabor_vs_in_range_optimum_median",
            "frac_mei_above_gabor_in_range"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("analysis", choices=sorted(FIGURES))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--workers", type=int, default=1, help="seeds at once (each one torch thread)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from engine import analyses
    from engine.analyses.base import parse_sets
    from engine.seeds import over_seeds, parse_seeds

    seeds = parse_seeds(args.seeds)
    sets = parse_sets(args.set, analyses.get(args.analysis).params())
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_truth_") as tmp:
        res = over_seeds(args.analysis, seeds, sets, workdir=tmp, n_jobs=args.workers)
    summary = res.summary()
    figs = FIGURES[args.analysis]
    out = {"bench": "truth_seeds", "analysis": args.analysis, "seeds": seeds, "sets": sets,
           "target": res.results[0].get("target"), "wall_s": round(time.perf_counter() - t0, 1),
           "per_seed": [{k: r.get(k) for k in figs} for r in res.results],
           "mean": {k: summary[k]["mean"] for k in figs if k in summary},
           "std": {k: summary[k]["std"] for k in figs if k in summary}}
    line = json.dumps(out, default=str)
    print(line)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
