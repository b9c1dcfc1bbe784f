"""Steps of the ``retina`` analysis (seed 000).  Heavy imports stay inside functions.

Files in the analysis's workdir, each step reading what the previous wrote:
``naturalscene.h5`` (generate) → ``cfc.pt`` (train) → ``cfc_pruned.pt`` (prune)
→ ``sindy_<model>.npz`` + equations in the session (sindy) → ``predictions.npz``
+ the MAE table in the session (evaluate).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.analyses.base import StepContext

MODELS = {"CfC": "cfc.pt", "CfC-pruned": "cfc_pruned.pt"}


def _data_path(ctx: StepContext, p: dict[str, Any], generating: bool = False) -> Path:
    if p["data"]:
        return Path(p["data"]).expanduser()  # a missing real file: the loader's DataError names it
    path = ctx.workdir / "naturalscene.h5"
    if not generating and not path.exists():
        raise FileNotFoundError(f"{path.name} is missing: run the 'generate' step first (or --set data=PATH)")
    return path


# -- generate -----------------------------------------------------------------------
def generate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    from engine.atomic import write_json
    from engine.data.retina import inspect_retina
    from engine.data.retina_gen import generate_retina

    path = _data_path(ctx, p, generating=True)
    if p["data"]:  # a real recording: check its layout, generate nothing
        layout = inspect_retina(path)
        ctx.reporter.log(f"using {path}: {json.dumps(layout.splits)}")
        return {"data": str(path), "generated": False}
    settings = {k: p[k] for k in ("cells", "frames", "test_frames", "seed", "blocks", "repeats")}
    stamp = path.with_suffix(".settings.json")
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == settings:
        ctx.reporter.log(f"{path.name} already generated with these settings")
        return {"data": str(path), "generated": False}
    ctx.reporter.progress(0, 1, "generating synthetic retina")
    generate_retina(path, cells=p["cells"], frames=p["frames"], seed=p["seed"],
                    test_frames=p["test_frames"], blocks=p["blocks"], repeats=p["repeats"])
    write_json(stamp, settings)
    ctx.reporter.artifact(path.name, path, kind="hdf5")
    ctx.reporter.progress(1, 1, "done")
    return {"data": str(path), "generated": True}


# -- data ---------------------------------------------------------------------------
from engine.analyses.retina.sequences import Sequences, control_inputs, run_blocks, run_model  # noqa: E402,F401  (re-exported)


def _load_split(path: Path, split: str, max_frames: int | None = None, p: dict[str, Any] | None = None):
    import torch

    from engine.data.retina import load_retina

    n_blocks = int((p or {}).get("train_blocks", 0)) if split == "train" else 0
    data = load_retina(path, split, frames=(0, max_frames) if max_frames else None, n_blocks=n_blocks)
    stim = torch.from_numpy(np.ascontiguousarray(data.stimulus, dtype=np.float32))
    resp = torch.from_numpy(np.ascontiguousarray(data.responses.T, dtype=np.float32))
    return data, stim, resp


def _save_model(path: Path, model, norm: tuple[float, float]) -> None:
    from engine.train.model_file import save_model

    # the stimulus standardisation travels with the weights: every later step applies it
    save_model(model, path, extra={"stim_mean": float(norm[0]), "stim_std": float(norm[1])})


def _load_model(path: Path, device: str = "cpu"):
    import torch

    from engine.train.model_file import MODEL_FORMAT, load_model

    if not path.exists():
        raise FileNotFoundError(f"{path.name} is missing: run the step that makes it first")
    from engine.models.retina_cfc import RetinaCfC

    payload = torch.load(path, map_location="cpu", weights_only=True)
    extra: dict[str, Any]
    if isinstance(payload, dict) and payload.get("format") == MODEL_FORMAT:
        model, extra = load_model(path, expect=RetinaCfC)
    elif isinstance(payload, dict) and {"config", "state"} <= set(payload):
        # a cfc.pt written before the one model-file format: {config, state, stim_mean, stim_std}
        model, extra = RetinaCfC.from_config(payload["config"]), payload
        model.load_state_dict(payload["state"])
    else:
        from engine.errors import TrainingError

        raise TrainingError(f"{path.name}: not a retina model file")
    model.stim_norm = (float(extra.get("stim_mean", 0.0)), float(extra.get("stim_std", 1.0)))
    return model.to(device).eval()


def _segments(data, lo: int, hi: int, p: dict[str, Any]) -> list[tuple[int, int]]:
    """Frames ``lo..hi`` of ``data`` inside its recording blocks, less the first
    ``skip_after_block`` frames of each block (train split only; test blocks keep theirs)."""
    from engine.data.retina_blocks import block_segments

    skip = int(p.get("skip_after_block", 0)) if data.split == "train" else 0
    return block_segments(data.blocks, lo, hi, skip)


def _split_segments(data, p: dict[str, Any]) -> tuple[int, list, list]:
    """The validation cut and the training and validation segments of the train split."""
    T = data.n_frames
    cut = int(T * (1 - p["val_fraction"]))
    return cut, _segments(data, 0, cut, p), _segments(data, cut, T, p)


def _standardise(stim, model):
    mean, std = model.stim_norm
    return (stim - mean) / std


# -- train --------------------------------------------------------------------------
def train(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """Train the encoder + CfC.  Under torchrun (``nproc`` > 1) each rank draws its
    sequences (``batch_size`` each) from its own block of the training frames and DDP
    averages the gradients; rank 0 alone writes checkpoints, the model and the trace."""
    import torch

    from engine import distributed
    from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig
    from engine.train import TrainConfig, fit

    dist = distributed.check_nproc(p.get("nproc", 1), ctx.reporter)
    train_dir = ctx.checkpoint_dir("train") if dist.is_main else None
    distributed.barrier()  # rank 0's earlier steps made the data, and it emptied train_dir
    data, stim, resp = _load_split(_data_path(ctx, p), "train", p=p)
    cut, train_seg, val_seg = _split_segments(data, p)
    if len(data.blocks) > 1 or p.get("skip_after_block"):
        ctx.reporter.log(f"{len(data.blocks)} recording blocks; training in {len(train_seg)} and validating in "
                         f"{len(val_seg)} segments, none across a block boundary")
    # standardised frames: with raw [0, 1] pixels the CfC barely learned in a CPU budget
    norm = (float(stim[:cut].mean()), float(stim[:cut].std()) or 1.0)
    stim = (stim - norm[0]) / norm[1]
    torch.manual_seed(p["seed"])
    config = RetinaCfCConfig(n_cells=data.n_cells, n_frames=p["n_frames"],
                             frame_size=tuple(stim.shape[1:]), units=p["units"], mode=p["mode"],
                             channels=(p["enc_channels"], 2 * p["enc_channels"]), pool=p["enc_pool"],
                             kernel_sizes=(p["enc_kernel"], 3), surround_pool=p.get("enc_surround", 0),
                             temporal_channels=p.get("enc_temporal", 0), frame_diff=p.get("frame_diff", False),
                             encoder_features=p["encoder_features"],
                             front=p.get("enc_front", "conv"), dog_filters=p.get("enc_dogs", 16))
    model = RetinaCfC.from_config(config)
    part = distributed.shard(cut) if dist.distributed else slice(0, cut)
    mine = [(max(a, part.start), min(b, part.stop)) for a, b in train_seg if min(b, part.stop) > max(a, part.start)]
    train_b = Sequences(stim, resp, mine, p["n_frames"], p["seq_len"], p["batch_size"], p["seed"])
    # every rank validates on the same batches, so that all keep the same best step
    val_b = Sequences(stim, resp, val_seg, p["n_frames"], p["seq_len"], p["batch_size"]).fixed(p["val_batches"])
    cfg = TrainConfig(steps=p["iterations"], lr=p["lr"], loss=p["loss"],
                      device=str(dist.device) if dist.distributed else p["device"],
                      val_every=max(10, p["iterations"] // 10), checkpoint_every=max(20, p["iterations"] // 5),
                      seed=p["seed"], log_every=5, patience=None, lr_schedule=p["lr_schedule"] or None,
                      amp=p["amp"])
    workdir = distributed.workdir(train_dir or ctx.workdir / "train")
    if dist.distributed:
        ctx.reporter.log(f"{dist.world_size} ranks ({dist.backend}), each {p['batch_size']} sequences a step "
                         f"from its {part.stop - part.start} training frames")
    result = fit(distributed.wrap(model), train_b, val_b, cfg, distributed.reporter(ctx.reporter), workdir)
    if not dist.is_main:  # the model file, the trace and the result are rank 0's
        return {"steps": result.step, "rank": dist.rank}
    _save_model(ctx.workdir / "cfc.pt", model.cpu(), norm)
    # the validation windows may reach back into the training frames of the cut's block
    val_run = _segments(data, cut - p["n_frames"] + 1, data.n_frames, p)
    whole, ceiling = _save_validation(ctx, model.eval(), stim, resp, val_run, cut, p["n_frames"], _data_path(ctx, p))
    _, corr = result.series("val_corr")
    _, vloss = result.series("val_loss")
    out = {"train_status": result.status, "steps": result.step,
           "val_corr": float(corr[-1]) if len(corr) else None,
           "val_loss": float(vloss[-1]) if len(vloss) else None,
           "train_s": round(result.elapsed_s, 1), "device": result.device.get("device"),
           # over every validation frame, state carried (the figure the target is set on)
           "val_corr_whole": whole, "val_ceiling": ceiling, "best_step": result.best_step}
    if dist.distributed:
        out["train_ranks"] = dist.world_size
    return out


def _save_validation(ctx: StepContext, model, stim, resp, segments: list, cut: int, n_frames: int,
                     path: Path) -> tuple[float, float | None]:
    """Predicted and recorded rates over the whole validation split (the Training
    pane's trace), with the noise-free rate when the file is synthetic.  Returns the
    mean-over-cells correlation over those frames and the noise ceiling's (or None).

    The CfC runs each segment from a zero state (a block starts afresh); rows before
    ``cut`` (window history in the training frames) are not scored."""
    import h5py

    from engine.atomic import save_npz
    from engine.metrics import pearson

    times, _, _, rates_l = run_blocks(model, stim, n_frames, segments)
    keep = times >= cut
    times, rates = times[keep], np.concatenate(rates_l)[keep]
    extra = {}
    with h5py.File(path, "r") as fh:
        key = "ground_truth/train/expected_rate"
        if key in fh:
            extra["expected"] = fh[key][:, :].T[times]
    target = resp.numpy()[times]
    save_npz(ctx.workdir / "val_predictions.npz", pred=rates.astype(np.float32),
             target=target, start=np.int64(times[0]), times=times, **extra)
    ctx.reporter.artifact("val_predictions.npz", ctx.workdir / "val_predictions.npz", kind="npz")
    ceiling = float(pearson(target, extra["expected"])) if "expected" in extra else None
    return float(pearson(target, rates)), ceiling


# -- ln (baseline) ------------------------------------------------------------------
def ln(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """The LN baseline (a regularised Poisson GLM on the frame history): fitted on the
    training segments, its ridge strength picked on the same validation segments as the
    CfC's; like the CfC's state, its history starts again in each recording block."""
    from engine.atomic import save_npz
    from engine.metrics import pearson
    from engine.models.ln import LNConfig, LNModel

    data, stim_t, resp_t = _load_split(_data_path(ctx, p), "train", p=p)
    stim, resp = stim_t.numpy(), resp_t.numpy()
    # the CfC's training and validation segments: no lag reaches into another recording block
    cut, train_segs, val_segs = _split_segments(data, p)
    mean, std = float(stim[:cut].mean()), float(stim[:cut].std()) or 1.0
    z = (stim - mean) / std
    cfg = LNConfig(lags=p["ln_lags"], n_basis=p["ln_basis"], pool=p["ln_pool"])
    ctx.reporter.progress(0, 1, "fitting the LN model")
    model = LNModel(cfg).fit_segments(z, resp, train_segs, val_segs)
    val = model.predict_segments(z, val_segs)
    corr = float(pearson(np.concatenate([resp[a:b] for a, b in val_segs]), val))
    save_npz(ctx.workdir / "ln.npz", stim_mean=np.float64(mean), stim_std=np.float64(std), **model.to_arrays())
    ctx.reporter.metric("LN val corr", corr)
    ctx.reporter.progress(1, 1, "done")
    return {"ln_val_corr": corr, "ln_alpha": model.alpha_}


# -- prune --------------------------------------------------------------------------
def prune(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    from engine.prune import prune_global
    from engine.train import TrainConfig

    model = _load_model(ctx.workdir / "cfc.pt")
    kwargs: dict[str, Any] = {}
    if p["finetune_iterations"] > 0:
        data, stim, resp = _load_split(_data_path(ctx, p), "train", p=p)
        stim = _standardise(stim, model)
        _, train_seg, val_seg = _split_segments(data, p)
        kwargs = dict(
            finetune=TrainConfig(steps=p["finetune_iterations"], lr=p["finetune_lr"], loss=p["loss"],
                                 device=p["device"], log_every=5,
                                 val_every=max(10, p["finetune_iterations"] // 5)),
            train_batches=Sequences(stim, resp, train_seg, p["n_frames"], p["seq_len"], p["batch_size"]),
            val_batches=Sequences(stim, resp, val_seg, p["n_frames"], p["seq_len"], p["batch_size"]).fixed(2),
            reporter=ctx.reporter, workdir=ctx.checkpoint_dir("finetune"))
    amount = p["prune_amount"]
    report = prune_global(model, amount if amount >= 1 else float(amount), **kwargs)
    _save_model(ctx.workdir / "cfc_pruned.pt", model.cpu(), model.stim_norm)
    for layer in report["layers"]:
        ctx.reporter.log(f"pruned {layer['pruned']:>4} of {layer['size']:>5} in {layer['name']}")
    return {"pruned": report["pruned"], "prune_candidates": report["candidates"]}


# -- hidden states ------------------------------------------------------------------
def _first_samples(segments: list, n_frames: int, samples: int) -> list:
    """The first segments, the last one cut, holding ``samples`` model outputs in all
    (each segment spends ``n_frames - 1`` frames on its first window)."""
    out, left = [], samples
    for lo, hi in segments:
        if left <= 0:
            break
        if hi - lo < n_frames:
            continue
        hi = min(hi, lo + n_frames - 1 + left)
        out.append((lo, hi))
        left -= hi - lo - n_frames + 1
    return out


# -- sindy --------------------------------------------------------------------------
def sindy(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """Each model's hidden states over the training frames → SINDy equations with control
    (the fit and its options live in ``engine.analyses.retina.sindy``)."""
    from engine.analyses.retina.sindy import distil

    n_frames = p["n_frames"]
    data, stim, _ = _load_split(_data_path(ctx, p), "train", p=p)
    # the first `samples` states of the train split, collected block by block (state restarts)
    segs = _first_samples(_segments(data, 0, data.n_frames, p), n_frames, p["samples"])
    out: dict[str, Any] = {}
    for tag, fname in MODELS.items():
        model = _load_model(ctx.workdir / fname)
        ctx.reporter.log(f"{tag}: collecting hidden states in {len(segs)} block(s)")
        _, us, xs, _ = run_blocks(model, _standardise(stim, model), n_frames, segs, reporter=ctx.reporter)
        out.update(distil(ctx, tag, model, us, xs, p))
    return out


# -- evaluate -----------------------------------------------------------------------
def evaluate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """Score models, baselines and the ceiling on the same test frames (see ``retina_eval``).

    SINDy rows: each model's equations rolled out two ways, both labelled -- reset to the
    CfC's state every ``horizon`` frames ("SINDy", "SINDy-pruned", the seed's scoring) and
    free-running from the first frame over the whole test split ("... free-run")."""
    import h5py
    import torch

    from engine.analyses.retina.scoring import HIGHER_IS_BETTER, METRICS, RANK_METRIC, Rollout, score, sindy_rollout
    from engine.atomic import save_npz
    from engine.sindy.export import model_from_dict

    n_frames, H = p["n_frames"], p["horizon"]
    path = _data_path(ctx, p)
    data, stim, resp = _load_split(path, "test", max_frames=p["max_test_frames"])
    test_seg = _segments(data, 0, data.n_frames, p)
    times = np.concatenate([np.arange(a + n_frames - 1, b) for a, b in test_seg if b - a >= n_frames])
    target = resp.numpy()[times].astype(float)
    # single trials (reps, T', cells): the FEV's noise and the noise ceiling, where the file has them
    repeats = None if data.repeats is None or len(data.repeats) < 2 else data.repeats[:, :, times].transpose(0, 2, 1)
    with h5py.File(path, "r") as fh:  # the noise-free rate: a ceiling row (and the FEV's noise), never fitted
        key = "ground_truth/test/expected_rate"
        truth = fh[key][:, : len(stim)].T[times].astype(float) if key in fh else None
    train, _, train_resp = _load_split(path, "train", p=p)
    cut, train_seg, _ = _split_segments(train, p)
    train_mean = np.concatenate([train_resp[a:b].numpy() for a, b in train_seg]).mean(0).astype(float)
    rows: dict[str, dict] = {}
    terms: dict[str, int] = {}
    for tag, fname in MODELS.items():
        model = _load_model(ctx.workdir / fname)
        ctx.reporter.log(f"{tag}: predicting the test split")
        _, us, states_l, rates_l = run_blocks(model, _standardise(stim, model), n_frames, test_seg,
                                              reporter=ctx.reporter)
        rows[tag] = {"pred": np.concatenate(rates_l), "role": "model", "scoring": "carried state"}
        eqs = ctx.equations(f"retina {tag}")
        if eqs is None:
            raise FileNotFoundError("no SINDy equations in this session: run the sindy step first")
        sindy_model = model_from_dict(eqs)
        terms[tag] = int(np.count_nonzero(sindy_model.coef_))
        npz = np.load(ctx.workdir / f"sindy_{tag}.npz")
        if "u_step_ref" in npz.files:  # control=step: the CfC's own step from a reference state
            from engine.analyses.retina.sindy import step_drives

            upcs = [step_drives(model, u, npz["u_step_ref"], sindy_model.discrete_time) for u in us]
        else:
            shape = npz["u_shape"] if "u_shape" in npz.files else None  # a drive's nonlinearity (drive_degree > 1)
            bounds = npz["u_bounds"] if "u_bounds" in npz.files else None  # files from before it: unbounded
            upcs = [control_inputs(u, npz["u_mean"], npz["u_components"], sindy_model.discrete_time, shape,
                                   bounds) for u in us]

        def readout(h, model=model):
            with torch.no_grad():
                return model.readout(torch.as_tensor(h, dtype=torch.float32)).double().numpy()

        name = "SINDy" if tag == "CfC" else "SINDy-pruned"
        for label, horizon, scoring in ((name, H, f"reset to the CfC state every {H} frames"),
                                        (f"{name} free-run", None, "free-running over the whole test split")):
            # each test block from the CfC's state at its start (no rollout crosses a block)
            rolls = [sindy_rollout(sindy_model, x, u, readout, horizon, p["dt"]) for x, u in zip(states_l, upcs)]
            roll = Rollout(np.concatenate([r.pred for r in rolls]), sum(r.windows for r in rolls),
                           sum(r.diverged for r in rolls))
            rows[label] = {"pred": roll.pred, "role": "model", "scoring": scoring,
                           "windows": roll.windows, "diverged": roll.diverged, "terms": terms[tag]}
            if roll.diverged:
                ctx.reporter.log(f"{label}: {roll.diverged} of {roll.windows} rollouts diverged; their frames "
                                 "after the divergence predict the training mean", level="warning")
    T = len(target)
    rows["zeros"] = {"pred": np.zeros_like(target), "role": "baseline", "scoring": "all zeros"}
    rows["train mean"] = {"pred": np.broadcast_to(train_mean, target.shape), "role": "baseline",
                          "scoring": "per-cell mean of the training frames"}
    ln_path = ctx.workdir / "ln.npz"
    if ln_path.exists():
        from engine.models.ln import LNModel

        ln = np.load(ln_path)
        lnm = LNModel.from_arrays(ln)
        z = (stim.numpy() - float(ln["stim_mean"])) / float(ln["stim_std"])
        rows["LN"] = {"pred": lnm.predict(z)[times], "role": "baseline", "scoring": "Poisson GLM"}
    if truth is not None:
        rows["noise-free rate"] = {"pred": truth, "role": "ceiling", "scoring": "generator's expected rate"}
    cells = [f"c{i}" for i in range(target.shape[1])]
    table = score(rows, target, truth, train_mean, cells, repeats=repeats)
    table["terms"] = [int(rows[k].get("terms", -1)) for k in table.index]  # -1: not an equation
    from engine.session import TableMeta

    ctx.save_table("retina MAE", table, meta=TableMeta.of(
        higher=[m for m in METRICS if HIGHER_IS_BETTER[m]] + ["corr_frac"],
        lower=[m for m in METRICS if not HIGHER_IS_BETTER[m]], rank_by=RANK_METRIC))
    save_npz(ctx.workdir / "predictions.npz", target=target,
             **{k.replace("-", "_").replace(" ", "_"): np.asarray(v["pred"], dtype=float) for k, v in rows.items()})
    for k in table.index:
        flag = " (worse than zeros by MAE)" if table.loc[k, "worse_than_zeros"] and table.loc[k, "role"] == "model" else ""
        ctx.reporter.log(f"{k:<22} {table.loc[k, 'role']:<8} MAE {table.loc[k, 'mae']:.4f}  corr "
                         f"{table.loc[k, 'corr']:.3f}  bits/spike {table.loc[k, RANK_METRIC]:.3f}  FEV "
                         f"{table.loc[k, 'fev']:.3f}{flag}")
    ctx.reporter.log(f"FEV noise and correlation ceiling ({table['corr_ceiling'].iloc[0]:.3f}) from: "
                     f"{table['noise_from'].iloc[0]}")
    col = lambda c: {k: (None if not np.isfinite(v) else float(v)) for k, v in table[c].items()}  # noqa: E731
    return {"mae": col("mae"), "corr": col("corr"), "bits_per_spike": col("bits_per_spike"), "fev": col("fev"),
            "role": {k: str(v) for k, v in table["role"].items()},
            "diverged_windows": {k: f"{int(table.loc[k, 'diverged_windows'])}/{int(table.loc[k, 'windows'])}"
                                 for k in table.index if table.loc[k, "windows"]},
            "diverged_fraction": col("diverged_frac"),
            "sindy_terms": terms, "rank_by": RANK_METRIC,
            # where the FEV's noise and the ceiling came from ("repeats", "noise-free rate" or "none")
            "noise_from": str(table["noise_from"].iloc[0]), "corr_ceiling": col("corr_ceiling")["CfC"],
            "best_model": next((k for k in table.index if table.loc[k, "best"]), None),
            "test_frames_scored": T}
