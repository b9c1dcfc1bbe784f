"""What the synthetic retina's training frames allow: the generator's own LNP family, fitted.

The CfC is scored by its whole-validation correlation over the noise ceiling.  This fits the
model that *generated* the file -- per cell a spatial filter, a 30-tap temporal filter, the
absolute value, a threshold, a gain and the 6-bin smoothing -- to the same training frames
with the same Poisson loss, and scores it the same way: started from the stored truth (it
scores 1.0, then drifts as it fits the noise) and from a random start, at full resolution
and with frames average-pooled (fewer weights per filter).  The truth is used here only to
measure the limit of the data, never by the analysis.

    python -m benchmarks.bench_retina_limit --seeds 0-2 --frames 12000,30000 [--steps 2000]

Prints one JSON line: per (seed, frames, start, pool) the best and the last validation ratio
(the best is chosen on the validation frames themselves: an optimistic bound).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def fit_family(path: Path, start: str, pool: int, steps: int, lr: float, seed: int = 0) -> dict:
    import h5py
    import numpy as np
    import torch
    from scipy.signal import lfilter

    from engine.metrics import pearson

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    with h5py.File(path, "r") as fh:
        stim = fh["train/stimulus"][:].astype(np.float32) / 255
        resp = fh["train/response/firing_rate_10ms"][:].T
        expected = fh["ground_truth/train/expected_rate"][:].T
        spatial = fh["ground_truth/spatial_filters"][:]
        temporal = fh["ground_truth/temporal_filters"][:]
        th, gain = fh["ground_truth/thresholds"][:], fh["ground_truth/gains"][:]
    T, size = stim.shape[0], stim.shape[1]
    cells, L = temporal.shape
    cut = int(T * 0.85)
    s = size // pool
    X = torch.tensor(stim.reshape(T, s, pool, s, pool).mean((2, 4)).reshape(T, -1))
    sp = spatial.reshape(cells, s, pool, s, pool).sum((2, 4)).reshape(cells, -1)
    proj = X.numpy() @ sp.T
    proj -= proj.mean(0)
    dstd = np.stack([lfilter(temporal[c], [1.0], proj[:, c]) for c in range(cells)], 1).std(0)
    truth = start == "truth"
    w = torch.nn.Parameter(torch.tensor(sp.T / dstd if truth else rng.normal(0, 1e-2, sp.T.shape), dtype=torch.float32))
    k = torch.nn.Parameter(torch.tensor(temporal if truth else rng.normal(0, 0.1, temporal.shape), dtype=torch.float32))
    a = torch.nn.Parameter(torch.tensor(gain * 0.01 if truth else np.ones(cells), dtype=torch.float32))
    b = torch.nn.Parameter(torch.tensor(th if truth else np.zeros(cells), dtype=torch.float32))
    smooth = np.exp(-np.arange(6) / 1.5)
    smooth = torch.tensor((smooth / smooth.sum())[::-1].copy(), dtype=torch.float32).expand(cells, 1, 6)
    F = torch.nn.functional

    def predict(lo: int, hi: int) -> torch.Tensor:
        p = X[lo:hi] @ w
        d = F.conv1d(F.pad((p - p.mean(0)).T[None], (L - 1, 0)), k.flip(-1)[:, None], groups=cells)[0].T
        lam = a * torch.relu(d.abs() - b)
        return F.conv1d(F.pad(lam.T[None], (5, 0)), smooth, groups=cells)[0].T + 1e-4

    def ratio() -> float:
        with torch.no_grad():
            r = predict(cut - L - 6, T)[L + 6:].numpy()
        return float(pearson(resp[cut:], r) / pearson(resp[cut:], expected[cut:]))

    opt = torch.optim.Adam([w, k, a, b], lr=lr)
    first, best, best_step = ratio(), -1.0, 0
    for step in range(1, steps + 1):
        lo = int(rng.integers(0, cut - 600))
        r = predict(lo, lo + 600)[L + 6:]
        y = torch.tensor(resp[lo + L + 6: lo + 600])
        loss = (r - y * torch.log(r)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            q = ratio()
            if q > best:
                best, best_step = q, step
    return {"start": start, "pool": pool, "at_start": round(first, 3), "best": round(best, 3),
            "best_step": best_step, "last": round(ratio(), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--frames", default="12000,30000")
    ap.add_argument("--pools", default="1,2")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args(argv)
    import torch

    from benchmarks.bench_retina_seeds import _seeds
    from engine.data.retina_gen import generate_retina

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="bench_retina_limit_"))
    rows = []
    for frames in (int(f) for f in args.frames.split(",")):
        for seed in _seeds(args.seeds):
            path = generate_retina(root / f"s{seed}_{frames}.h5", frames=frames, seed=seed)
            for start in ("truth", "random"):
                for pool in (int(p) for p in args.pools.split(",")):
                    row = {"seed": seed, "frames": frames, **fit_family(path, start, pool, args.steps, args.lr)}
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    rows.append(row)
    print(json.dumps({"bench": "retina_limit", "steps": args.steps, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
