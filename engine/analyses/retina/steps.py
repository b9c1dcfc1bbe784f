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
    settings = {k: p[k] for k in ("cells", "frames", "test_frames", "seed")}
    stamp = path.with_suffix(".settings.json")
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == settings:
        ctx.reporter.log(f"{path.name} already generated with these settings")
        return {"data": str(path), "generated": False}
    ctx.reporter.progress(0, 1, "generating synthetic retina")
    generate_retina(path, cells=p["cells"], frames=p["frames"], seed=p["seed"],
                    test_frames=p["test_frames"])
    write_json(stamp, settings)
    ctx.reporter.artifact(path.name, path, kind="hdf5")
    ctx.reporter.progress(1, 1, "done")
    return {"data": str(path), "generated": True}


# -- batches ------------------------------------------------------------------------
class Sequences:
    """Random sequences of frame windows and targets from a stimulus in memory.

    A batch is ``(frames (B, L, N, H, W), targets (B, L, cells))``: ``L`` steps,
    each with the last ``N`` frames; the CfC carries its state along the ``L`` steps.
    """

    def __init__(self, stim, resp, lo: int, hi: int, n_frames: int, seq_len: int,
                 batch: int, seed: int = 0, per_epoch: int = 50):
        self.stim, self.resp = stim, resp
        self.n, self.L, self.B = n_frames, seq_len, batch
        self.first, self.last = lo + n_frames - 1, hi - seq_len
        if self.last < self.first:
            raise ValueError(f"frames {lo}..{hi} are too few for {seq_len}-step sequences "
                             f"of {n_frames}-frame windows")
        self.seed, self.per_epoch = seed, per_epoch

    def make(self, starts):
        import torch

        from engine.models.retina_cfc import frame_windows

        x = torch.stack([frame_windows(self.stim[s - self.n + 1: s + self.L], self.n) for s in starts])
        y = torch.stack([self.resp[s: s + self.L] for s in starts])
        return x, y

    def __call__(self, epoch: int):
        import torch

        g = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        for _ in range(self.per_epoch):
            starts = torch.randint(self.first, self.last + 1, (self.B,), generator=g).tolist()
            yield self.make(starts)

    def fixed(self, n_batches: int) -> list:
        """Evenly spaced batches (validation)."""
        total = n_batches * self.B
        starts = np.linspace(self.first, self.last, total).astype(int).tolist()
        return [self.make(starts[i:i + self.B]) for i in range(0, total, self.B)]


def _load_split(path: Path, split: str, max_frames: int | None = None):
    import torch

    from engine.data.retina import load_retina

    data = load_retina(path, split, frames=(0, max_frames) if max_frames else None)
    stim = torch.from_numpy(np.ascontiguousarray(data.stimulus, dtype=np.float32))
    resp = torch.from_numpy(np.ascontiguousarray(data.responses.T, dtype=np.float32))
    return data, stim, resp


def _save_model(path: Path, model, norm: tuple[float, float]) -> None:
    import torch

    from engine.atomic import write_with

    # the stimulus standardisation travels with the weights: every later step applies it
    payload = {"config": model.config.to_dict(), "state": model.state_dict(),
               "stim_mean": float(norm[0]), "stim_std": float(norm[1])}
    write_with(path, lambda tmp: torch.save(payload, tmp))


def _load_model(path: Path, device: str = "cpu"):
    import torch

    from engine.models.retina_cfc import RetinaCfC

    if not path.exists():
        raise FileNotFoundError(f"{path.name} is missing: run the step that makes it first")
    payload = torch.load(path, map_location=device, weights_only=True)
    model = RetinaCfC.from_config(payload["config"])
    model.load_state_dict(payload["state"])
    model.stim_norm = (payload.get("stim_mean", 0.0), payload.get("stim_std", 1.0))
    return model.to(device).eval()


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
    train_dir = ctx.fresh_dir("train") if dist.is_main else None
    distributed.barrier()  # rank 0's earlier steps made the data, and it emptied train_dir
    data, stim, resp = _load_split(_data_path(ctx, p), "train")
    T = stim.shape[0]
    cut = int(T * (1 - p["val_fraction"]))
    # standardised frames: with raw [0, 1] pixels the CfC barely learned in a CPU budget
    norm = (float(stim[:cut].mean()), float(stim[:cut].std()) or 1.0)
    stim = (stim - norm[0]) / norm[1]
    torch.manual_seed(p["seed"])
    config = RetinaCfCConfig(n_cells=data.n_cells, n_frames=p["n_frames"],
                             frame_size=tuple(stim.shape[1:]), units=p["units"], mode=p["mode"],
                             channels=(p["enc_channels"], 2 * p["enc_channels"]), pool=p["enc_pool"],
                             kernel_sizes=(p["enc_kernel"], 3),
                             encoder_features=p["encoder_features"])
    model = RetinaCfC.from_config(config)
    part = distributed.shard(cut) if dist.distributed else slice(0, cut)
    train_b = Sequences(stim, resp, part.start, part.stop, p["n_frames"], p["seq_len"], p["batch_size"], p["seed"])
    # every rank validates on the same batches, so that all keep the same best step
    val_b = Sequences(stim, resp, cut, T, p["n_frames"], p["seq_len"], p["batch_size"]).fixed(p["val_batches"])
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
    whole, ceiling = _save_validation(ctx, model.eval(), stim, resp, cut, p["n_frames"], _data_path(ctx, p))
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


def _save_validation(ctx: StepContext, model, stim, resp, cut: int, n_frames: int,
                     path: Path) -> tuple[float, float | None]:
    """Predicted and recorded rates over the whole validation split (the Training
    pane's trace), with the noise-free rate when the file is synthetic.  Returns the
    mean-over-cells correlation over those frames and the noise ceiling's (or None)."""
    import h5py

    from engine.atomic import save_npz
    from engine.metrics import pearson

    _, _, rates = run_model(model, stim[cut - n_frames + 1:], n_frames)
    extra = {}
    with h5py.File(path, "r") as fh:
        key = "ground_truth/train/expected_rate"
        if key in fh:
            extra["expected"] = fh[key][:, cut:].T
    save_npz(ctx.workdir / "val_predictions.npz", pred=rates.astype(np.float32),
             target=resp[cut:].numpy(), start=np.int64(cut), **extra)
    ctx.reporter.artifact("val_predictions.npz", ctx.workdir / "val_predictions.npz", kind="npz")
    target = resp[cut:].numpy()
    ceiling = float(pearson(target, extra["expected"])) if "expected" in extra else None
    return float(pearson(target, rates)), ceiling


# -- ln (baseline) ------------------------------------------------------------------
def ln(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """The LN baseline (a regularised Poisson GLM on the frame history): fitted on the
    training frames, its ridge strength picked on the same validation frames as the CfC's."""
    from engine.atomic import save_npz
    from engine.metrics import pearson
    from engine.models.ln import LNConfig, LNModel

    _, stim, resp = _load_split(_data_path(ctx, p), "train")
    stim, resp = stim.numpy(), resp.numpy()
    cut = int(len(stim) * (1 - p["val_fraction"]))
    mean, std = float(stim[:cut].mean()), float(stim[:cut].std()) or 1.0
    z = (stim - mean) / std
    cfg = LNConfig(lags=p["ln_lags"], n_basis=p["ln_basis"], pool=p["ln_pool"])
    ctx.reporter.progress(0, 1, "fitting the LN model")
    model = LNModel(cfg).fit(z[:cut], resp[:cut], val=(z[cut:], resp[cut:]), skip=cfg.lags)
    val = model.predict(z)[cut:]
    corr = float(pearson(resp[cut:], val))
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
        _, stim, resp = _load_split(_data_path(ctx, p), "train")
        stim = _standardise(stim, model)
        T = stim.shape[0]
        cut = int(T * (1 - p["val_fraction"]))
        kwargs = dict(
            finetune=TrainConfig(steps=p["finetune_iterations"], lr=p["lr"] / 3, loss=p["loss"],
                                 device=p["device"], log_every=5,
                                 val_every=max(10, p["finetune_iterations"] // 5)),
            train_batches=Sequences(stim, resp, 0, cut, p["n_frames"], p["seq_len"], p["batch_size"]),
            val_batches=Sequences(stim, resp, cut, T, p["n_frames"], p["seq_len"], p["batch_size"]).fixed(2),
            reporter=ctx.reporter, workdir=ctx.fresh_dir("finetune"))
    amount = p["prune_amount"]
    report = prune_global(model, amount if amount >= 1 else float(amount), **kwargs)
    _save_model(ctx.workdir / "cfc_pruned.pt", model.cpu(), model.stim_norm)
    for layer in report["layers"]:
        ctx.reporter.log(f"pruned {layer['pruned']:>4} of {layer['size']:>5} in {layer['name']}")
    return {"pruned": report["pruned"], "prune_candidates": report["candidates"]}


# -- prune sweep --------------------------------------------------------------------
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
    _, test_stim, test_resp = _load_split(path, "test", max_frames=p["max_test_frames"])
    target = test_resp.numpy()[n_frames - 1:].astype(float)
    _, stim, resp = _load_split(path, "train")
    stim = _standardise(stim, base)
    T = stim.shape[0]
    cut = int(T * (1 - p["val_fraction"]))
    fit_frames = min(cut, p["sweep_samples"] + n_frames - 1)
    rows: list[dict[str, Any]] = []
    plans = [(a, ft) for a in amounts for ft in ((0, p["sweep_finetune"]) if p["sweep_finetune"] else (0,))]
    for i, (amount, ft) in enumerate([(0.0, 0)] + plans):
        ctx.reporter.progress(i, len(plans) + 1, f"pruning {amount:.0%}" + (f", fine-tuned {ft} steps" if ft else ""))
        model = copy.deepcopy(base)
        n_pruned = 0
        if amount > 0:
            kwargs: dict[str, Any] = {}
            if ft:
                kwargs = dict(finetune=TrainConfig(steps=ft, lr=p["lr"] / 3, loss=p["loss"], device="cpu",
                                                   log_every=max(1, ft // 5), val_every=max(1, ft // 2),
                                                   checkpoint_every=10**9, seed=p["seed"]),
                              train_batches=Sequences(stim, resp, 0, cut, n_frames, p["seq_len"], p["batch_size"]),
                              val_batches=Sequences(stim, resp, cut, T, n_frames, p["seq_len"],
                                                    p["batch_size"]).fixed(2),
                              reporter=None, workdir=ctx.fresh_dir(f"sweep_{i}"))
            n_pruned = prune_global(model, amount, **kwargs)["pruned"]
        model = model.cpu().eval()
        _, _, rates = run_model(model, _standardise(test_stim, model), n_frames)
        tag = "CfC" if amount == 0 else f"CfC-p{round(amount * 100)}" + (f"-ft{ft}" if ft else "")
        u, x, _ = run_model(model, stim[:fit_frames], n_frames)
        eq = distil(ctx, tag, model, u, x, p) if amount > 0 else {}
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

    ctx.save_table("retina pruning", pd.DataFrame.from_records(rows).set_index("model"))
    write_json(ctx.workdir / "prune_sweep.json", {"rows": rows})
    ctx.reporter.artifact("prune_sweep.json", ctx.workdir / "prune_sweep.json", kind="json")
    ctx.reporter.progress(len(plans) + 1, len(plans) + 1, "done")
    return {"prune_sweep": rows}


# -- hidden states ------------------------------------------------------------------
def run_model(model, stim, n_frames: int, chunk: int = 512, reporter=None):
    """Run the CfC over a whole stimulus, carrying its state: returns numpy arrays
    ``u`` (T', F) encoder features, ``states`` (T', units), ``rates`` (T', cells),
    for the times ``n_frames-1 .. T-1``."""
    import torch

    from engine.models.retina_cfc import frame_windows

    T = stim.shape[0]
    starts = range(n_frames - 1, T, chunk)
    us, states, rates = [], [], []
    h = None
    with torch.no_grad():
        for i, s in enumerate(starts):
            e = min(T, s + chunk)
            frames = frame_windows(stim[s - n_frames + 1: e], n_frames)[None]
            u = model.encode(frames)
            out, st = model.run_cfc(u, h)
            h = st[:, -1]
            us.append(u[0])
            states.append(st[0])
            rates.append(model.readout(out)[0])
            if reporter is not None:
                reporter.progress(i + 1, len(starts), "running the CfC")
                if reporter.cancelled:
                    from engine.reporting import Cancelled

                    raise Cancelled()
    cat = lambda xs: torch.cat(xs).double().numpy()  # noqa: E731
    return cat(us), cat(states), cat(rates)


def _control(u, mean, comps, discrete_time: bool):
    """Control inputs from encoder features: their principal components.  A discrete-time
    model of the CfC pairs the state at frame k with the input of frame k+1, since the CfC
    step that makes h[k+1] reads u[k+1]; the last frame repeats."""
    upc = (u - mean) @ comps.T
    return np.concatenate([upc[1:], upc[-1:]]) if discrete_time else upc


# -- sindy --------------------------------------------------------------------------
def sindy(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """Each model's hidden states over the training frames → SINDy equations with control
    (the fit and its options live in ``engine.analyses.retina.sindy``)."""
    from engine.analyses.retina.sindy import distil

    n_frames = p["n_frames"]
    _, stim, _ = _load_split(_data_path(ctx, p), "train", max_frames=p["samples"] + n_frames - 1)
    out: dict[str, Any] = {}
    for tag, fname in MODELS.items():
        model = _load_model(ctx.workdir / fname)
        ctx.reporter.log(f"{tag}: collecting hidden states")
        u, x, _ = run_model(model, _standardise(stim, model), n_frames, reporter=ctx.reporter)
        out.update(distil(ctx, tag, model, u, x, p))
    return out


# -- evaluate -----------------------------------------------------------------------
def evaluate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """Score models, baselines and the ceiling on the same test frames (see ``retina_eval``).

    SINDy rows: each model's equations rolled out two ways, both labelled -- reset to the
    CfC's state every ``horizon`` frames ("SINDy", "SINDy-pruned", the seed's scoring) and
    free-running from the first frame over the whole test split ("... free-run")."""
    import h5py
    import torch

    from engine.analyses.retina.scoring import RANK_METRIC, score, sindy_rollout
    from engine.atomic import save_npz
    from engine.sindy.export import model_from_dict

    n_frames, H = p["n_frames"], p["horizon"]
    path = _data_path(ctx, p)
    data, stim, resp = _load_split(path, "test", max_frames=p["max_test_frames"])
    target = resp.numpy()[n_frames - 1:].astype(float)
    with h5py.File(path, "r") as fh:  # the noise-free rate: a ceiling row and the FEV's noise, never fitted
        key = "ground_truth/test/expected_rate"
        truth = fh[key][:, n_frames - 1: len(stim)].T.astype(float) if key in fh else None
    _, _, train_resp = _load_split(path, "train")
    T_train = train_resp.shape[0]
    train_mean = train_resp[: int(T_train * (1 - p["val_fraction"]))].numpy().mean(0).astype(float)
    rows: dict[str, dict] = {}
    terms: dict[str, int] = {}
    for tag, fname in MODELS.items():
        model = _load_model(ctx.workdir / fname)
        ctx.reporter.log(f"{tag}: predicting the test split")
        u, states, rates = run_model(model, _standardise(stim, model), n_frames, reporter=ctx.reporter)
        rows[tag] = {"pred": rates, "role": "model", "scoring": "carried state"}
        eqs = ctx.equations(f"retina {tag}")
        if eqs is None:
            raise FileNotFoundError("no SINDy equations in this session: run the sindy step first")
        sindy_model = model_from_dict(eqs)
        terms[tag] = int(np.count_nonzero(sindy_model.coef_))
        npz = np.load(ctx.workdir / f"sindy_{tag}.npz")
        upc = _control(u, npz["u_mean"], npz["u_components"], sindy_model.discrete_time)

        def readout(h, model=model):
            with torch.no_grad():
                return model.readout(torch.as_tensor(h, dtype=torch.float32)).double().numpy()

        name = "SINDy" if tag == "CfC" else "SINDy-pruned"
        for label, horizon, scoring in ((name, H, f"reset to the CfC state every {H} frames"),
                                        (f"{name} free-run", None, "free-running over the whole test split")):
            roll = sindy_rollout(sindy_model, states, upc, readout, horizon, p["dt"])
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
        rows["LN"] = {"pred": lnm.predict(z)[n_frames - 1:], "role": "baseline", "scoring": "Poisson GLM"}
    if truth is not None:
        rows["noise-free rate"] = {"pred": truth, "role": "ceiling", "scoring": "generator's expected rate"}
    cells = [f"c{i}" for i in range(target.shape[1])]
    table = score(rows, target, truth, train_mean, cells)
    table["terms"] = [int(rows[k].get("terms", -1)) for k in table.index]  # -1: not an equation
    ctx.save_table("retina MAE", table)
    save_npz(ctx.workdir / "predictions.npz", target=target,
             **{k.replace("-", "_").replace(" ", "_"): np.asarray(v["pred"], dtype=float) for k, v in rows.items()})
    for k in table.index:
        flag = " (worse than zeros by MAE)" if table.loc[k, "worse_than_zeros"] and table.loc[k, "role"] == "model" else ""
        ctx.reporter.log(f"{k:<22} {table.loc[k, 'role']:<8} MAE {table.loc[k, 'mae']:.4f}  corr "
                         f"{table.loc[k, 'corr']:.3f}  bits/spike {table.loc[k, RANK_METRIC]:.3f}  FEV "
                         f"{table.loc[k, 'fev']:.3f}{flag}")
    col = lambda c: {k: (None if not np.isfinite(v) else float(v)) for k, v in table[c].items()}  # noqa: E731
    return {"mae": col("mae"), "corr": col("corr"), "bits_per_spike": col("bits_per_spike"), "fev": col("fev"),
            "role": {k: str(v) for k, v in table["role"].items()},
            "diverged_windows": {k: f"{int(table.loc[k, 'diverged_windows'])}/{int(table.loc[k, 'windows'])}"
                                 for k in table.index if table.loc[k, "windows"]},
            "diverged_fraction": col("diverged_frac"),
            "sindy_terms": terms, "rank_by": RANK_METRIC,
            "best_model": next((k for k in table.index if table.loc[k, "best"]), None),
            "test_frames_scored": T}
