"""Why the MEI falls short of the true optimum: optimiser, constraint or model (issue 18).

Runs every step of ``mei`` for one seed (in a temporary folder), then, as a diagnostic
only (the generator's neuron is used here and nowhere in the analysis):

* the generator's own neuron, written as a torch model, gets an MEI from the same
  optimiser settings; its ratio to the true optimum says what the optimiser and the
  [0, 1] pixel range allow (``true_model_*``);
* the trained model scores the in-range true optimum against its own MEI: where it
  rates its MEI higher, the optimiser did its job and the model's landscape is wrong
  (``model_prefers_its_mei``);
* the true drive (in sd of the natural images' drive) of the best natural image, the
  MEI and the optimum: how far the MEI lies outside what the model was trained on.

    python -m benchmarks.bench_mei_diagnose --seed 0 [--set ensemble=3 ...] [--out diag.json]

Prints one JSON line.  About 1 min per seed with the CPU defaults (unloaded), more with an ensemble.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def generator_neurons(rfs, gains, scales, cfg):
    """The generator's neurons (:func:`engine.data.allen.true_rates`) as a torch model."""
    import numpy as np
    import torch

    class TrueV1(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.as_tensor(rfs / scales[:, None, None], dtype=torch.float32))
            self.register_buffer("a", torch.as_tensor(
                gains * (cfg.peak_rate - cfg.base_rate) / np.logaddexp(0, 3.0), dtype=torch.float32))

        def forward(self, x):
            z = torch.einsum("bhw,nhw->bn", x - 0.5, self.w)
            return cfg.base_rate + self.a * torch.nn.functional.softplus(2 * z - 1)

    return TrueV1()


def diagnose(workdir: Path, p: dict) -> dict:
    import numpy as np
    import torch

    from engine.analyses.base import StepContext
    from engine.analyses.mei.steps import MEIS, _load_model, _load_responses
    from engine.analyses.mei.truth import compare_one, contrast_match_in_range
    from engine.data.allen import TRUTH, SyntheticV1Config
    from engine.mei import MEIConfig, optimize_meis

    ctx = StepContext(workdir=workdir)
    gen = json.loads((workdir / "allen" / "generator.json").read_text())
    cfg = SyntheticV1Config(**{k: v for k, v in gen.items() if k in SyntheticV1Config.__dataclass_fields__})
    r = _load_responses(ctx)
    images = r["images"].astype(np.float32)
    with np.load(workdir / "allen" / TRUTH) as f:
        t = {k: f[k] for k in f.files}
    ids = list(t["unit_ids"])
    j = [ids.index(u) for u in r["unit_ids"][r["keep"]]]
    rfs, gains, scales = t["rfs"][j], t["gabor_gain"][j], t["drive_scale"][j]
    n = len(j)
    with np.load(workdir / MEIS) as f:
        meis = f["meis"]
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    norm = float(np.linalg.norm(centred.reshape(len(images), -1), axis=1).mean())
    mcfg = MEIConfig(steps=p["mei_steps"], lr=p["mei_lr"], starts=p["mei_starts"], precondition=(p["precondition"], 0.0),
                     blur=(p["blur_start"], p["blur_end"]), mean=float(images.mean()), norm=norm,
                     jitter=p["jitter"], seed=p["mei_seed"])
    true_meis = optimize_meis(generator_neurons(rfs, gains, scales, cfg), np.arange(n), images.shape[1:], mcfg).images

    def ratios(ims):
        rows = [compare_one(ims[i], ims[i], images[:1], rfs[i], float(gains[i]), float(scales[i]), cfg) for i in range(n)]
        return (np.array([x["mei_vs_optimum"] for x in rows]), np.array([x["mei_vs_in_range_optimum"] for x in rows]))

    open_true, in_true = ratios(true_meis)
    open_mei, in_mei = ratios(meis)
    opt = np.stack([contrast_match_in_range(rfs[i], float(meis[i].mean()), float(np.linalg.norm(meis[i] - meis[i].mean())))
                    for i in range(n)]).astype(np.float32)
    model, _ = _load_model(ctx)
    with torch.no_grad():
        on_mei = model(torch.as_tensor(meis)).numpy()[np.arange(n), np.arange(n)]
        on_opt = model(torch.as_tensor(opt)).numpy()[np.arange(n), np.arange(n)]
    z = lambda ims: np.einsum("...hw,nhw->...n", ims - 0.5, rfs) / scales  # noqa: E731
    med = lambda x: round(float(np.median(x)), 4)  # noqa: E731
    return {"mei_vs_optimum_median": med(open_mei), "mei_vs_in_range_optimum_median": med(in_mei),
            "mei_vs_in_range_optimum_min": round(float(in_mei.min()), 4),
            "true_model_vs_optimum_median": med(open_true), "true_model_vs_in_range_optimum_median": med(in_true),
            "true_model_vs_in_range_optimum_min": round(float(in_true.min()), 4),
            "model_optimum_over_mei_median": med(on_opt / on_mei),
            "model_prefers_its_mei": round(float(np.mean(on_mei > on_opt)), 4),
            "true_drive_best_image_median": med(z(images).max(axis=0)),
            "true_drive_mei_median": med(np.diagonal(z(meis))), "true_drive_optimum_median": med(np.diagonal(z(opt)))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from engine.analyses.base import StepContext, parse_sets
    from engine.analyses.mei import ANALYSIS

    p = ANALYSIS.defaults()
    p.update(parse_sets(args.set, ANALYSIS.params()), seed=args.seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_mei_") as tmp:
        ctx = StepContext(workdir=Path(tmp))
        for step in ANALYSIS.steps:
            step.load()(ctx, dict(p))
        out = {"bench": "mei_diagnose", "seed": args.seed, "sets": args.set, **diagnose(Path(tmp), p),
               "wall_s": round(time.perf_counter() - t0, 1)}
    line = json.dumps(out)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
