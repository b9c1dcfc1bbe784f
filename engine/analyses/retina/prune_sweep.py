"""The retina's ``prune_sweep`` step: prune the trained CfC by several fractions, with and
without fine-tuning, and score each on the test frames and as SINDy equations."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.analyses.base import StepContext
from engine.analyses.retina.sequences import Sequences, run_blocks
from engine.analyses.retina.steps import (
    _data_path,
    _first_samples,
    _load_model,
    _load_split,
    _segments,
    _split_segments,
    _standardise,
)


def prune_sweep(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """Prune the trained CfC by several fractions of its weights, each with and without
    fine-tuning; score every pruned model on the test frames and distil its states into
    SINDy equations.  Do pruned networks give sparser or more accurate equations?"""
    import copy

    from engine.analyses.retina.sindy import distil
    from engine.atomic import write_json
    from engine.metrics import bits_per_spike, mae, pearson
    from engine.prune import prune_global
    from engine.train import TrainConfig

    amounts = [float(a) for a in str(p["sweep_amounts"]).split(",") if a.strip()]
    if not amounts or not all(0 < a < 1 for a in amounts):
        from engine.analyses.base import ParamError

        raise ParamError(f"sweep_amounts must be fractions in (0, 1), comma-separated; got {p['sweep_amounts']!r}")
    n_frames = p["n_frames"]
    base = _load_model(ctx.workdir / "cfc.pt")
    path = _data_path(ctx, p)
    test, test_stim, test_resp = _load_split(path, "test", max_frames=p["max_test_frames"])
    test_seg = _segments(test, 0, test.n_frames, p)
    data, stim, resp = _load_split(path, "train", p=p)
    stim = _standardise(stim, base)
    _, train_seg, val_seg = _split_segments(data, p)
    fit_seg = _first_samples(train_seg, n_frames, p["sweep_samples"])
    rows: list[dict[str, Any]] = []
    plans = [(a, ft) for a in amounts for ft in ((0, p["sweep_finetune"]) if p["sweep_finetune"] else (0,))]
    for i, (amount, ft) in enumerate([(0.0, 0)] + plans):
        ctx.reporter.progress(i, len(plans) + 1, f"pruning {amount:.0%}" + (f", fine-tuned {ft} steps" if ft else ""))
        model = copy.deepcopy(base)
        n_pruned = 0
        if amount > 0:
            kwargs: dict[str, Any] = {}
            if ft:
                kwargs = dict(finetune=TrainConfig(steps=ft, lr=p["finetune_lr"], loss=p["loss"], device="cpu",
                                                   log_every=max(1, ft // 5), val_every=max(1, ft // 2),
                                                   checkpoint_every=10**9, seed=p["seed"]),
                              train_batches=Sequences(stim, resp, train_seg, n_frames, p["seq_len"], p["batch_size"]),
                              val_batches=Sequences(stim, resp, val_seg, n_frames, p["seq_len"],
                                                    p["batch_size"]).fixed(2),
                              reporter=None, workdir=ctx.checkpoint_dir(f"sweep_{i}"))
            n_pruned = prune_global(model, amount, **kwargs)["pruned"]
        model = model.cpu().eval()
        times, _, _, rates_l = run_blocks(model, _standardise(test_stim, model), n_frames, test_seg)
        rates, target = np.concatenate(rates_l), test_resp.numpy()[times].astype(float)
        tag = "CfC" if amount == 0 else f"CfC-p{round(amount * 100)}" + (f"-ft{ft}" if ft else "")
        _, us, xs, _ = run_blocks(model, stim, n_frames, fit_seg)
        eq = distil(ctx, tag, model, us, xs, p) if amount > 0 else {}
        candidates = sum(getattr(m, n).numel() for m, n in model.prunable_parameters())
        zeros = sum(int((getattr(m, n) == 0).sum()) for m, n in model.prunable_parameters())
        rows.append({"model": tag, "amount": amount, "finetune": ft, "pruned": n_pruned,
                     "sparsity": zeros / candidates, "test_corr": float(pearson(target, rates)),
                     "test_mae": float(mae(target, rates)), "test_bits_per_spike": float(bits_per_spike(target, rates)),
                     "sindy_terms": eq.get(f"sindy_terms_{tag}"), "sindy_val_r2": eq.get(f"sindy_val_r2_{tag}")})
        ctx.reporter.log(f"{tag}: sparsity {rows[-1]['sparsity']:.0%} test corr {rows[-1]['test_corr']:.3f}"
                         + (f", SINDy {rows[-1]['sindy_terms']} terms, val R2 {rows[-1]['sindy_val_r2']:.3f}"
                            if eq else ""))
    import pandas as pd

    from engine.session import TableMeta

    ctx.save_table("retina pruning", pd.DataFrame.from_records(rows).set_index("model"), meta=TableMeta.of(
        higher=["test_corr", "test_bits_per_spike", "sindy_val_r2"], lower=["test_mae"]))
    write_json(ctx.workdir / "prune_sweep.json", {"rows": rows})
    ctx.reporter.artifact("prune_sweep.json", ctx.workdir / "prune_sweep.json", kind="json")
    ctx.reporter.progress(len(plans) + 1, len(plans) + 1, "done")
    return {"prune_sweep": rows}
