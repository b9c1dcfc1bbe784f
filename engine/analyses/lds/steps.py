"""Steps of the ``lds`` analysis (declared in :mod:`engine.analyses.lds`)."""
from __future__ import annotations

import json
from typing import Any

from engine.analyses.base import StepContext
from engine.analyses.lds import TRAIN_PARAMS
from engine.analyses.lds.inputs import (  # the names sindy.py, truth.py and tests take from here
    DATA_FILE as DATA_FILE,
    PRED_FILE as PRED_FILE,
    READOUT_DIR as READOUT_DIR,
    TRAIN_DIR as TRAIN_DIR,
    _config,
    _full_batch,
    _neuron_split,
    _reset_if_changed,
    load_data as load_data,
    split_neurons as split_neurons,
    split_trials as split_trials,
    trial_split as trial_split,
    write_json as write_json,
)


# --------------------------------------------------------------------------- steps


def generate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """Simulate the LDS into ``lds.h5`` (skipped when present with the same settings, and
    when ``data=`` names a recording: the other steps read that)."""
    from engine.data.lds_gen import generate as gen

    if (recording := ctx.recording_instead(p)) is not None:
        return recording

    from engine.resources import require_memory

    cfg = _config(p)
    # rates, spikes and their float copies per trial, step and neuron; latents per step
    require_memory(cfg.trials * cfg.steps * (cfg.neurons * 8 * 4 + cfg.latents * 8 * 2), "the LDS generate step",
                   {"trials": cfg.trials, "steps": cfg.steps, "neurons": cfg.neurons})
    ctx.reporter.progress(0, 1, "simulating LDS")
    path, written = gen(ctx.workdir / DATA_FILE, cfg)
    ctx.reporter.log(("wrote " if written else "kept existing ") + str(path))
    ctx.reporter.artifact(DATA_FILE, path, kind="hdf5")
    ctx.reporter.progress(1, 1, "done")
    import h5py

    with h5py.File(path, "r") as f:
        total = int(f["spikes"][()].sum())
    return {"data": str(path), "generated": written, "spike_total": total}


def train(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """Train the bidirectional RNN (and the held-in readout) through engine.train.fit.

    Under torchrun (``nproc`` > 1) every rank takes an equal block of the training trials
    and DDP averages the gradients, which for the seed's mean cost over equal blocks is the
    full-batch gradient; rank 0 alone writes files, reports and fits the readout.
    """
    import torch

    from engine import distributed
    from engine.models.rnn import BiRNN, Readout, RNNConfig, seed_poisson_loss
    from engine.train import TrainConfig, fit

    dist = distributed.check_nproc(p.get("nproc", 1), ctx.reporter)
    main = dist.is_main
    data = load_data(ctx, p)
    heldin, heldout = _neuron_split(data)
    tr, te = trial_split(data, p)
    x = torch.from_numpy(data.spikes).float()
    x_in, x_out = x[:, tr, heldin].contiguous(), x[:, tr, heldout].contiguous()

    from engine.resources import require_memory

    h, (n_t, n_tr, n_in) = p["hidden"], x_in.shape
    # two directions of (input + recurrent) weights with gradients and Adam's moments, and
    # the hidden states of every step of the full batch kept for backpropagation
    require_memory(16 * 2 * h * (n_in + h + x_out.shape[-1] + 2) + 4 * 2 * 2 * n_t * n_tr * h,
                   "the bidirectional RNN", {"hidden": h, "trials": n_tr, "steps": n_t})
    torch.manual_seed(p["train_seed"])
    model = BiRNN(RNNConfig(n_in=x_in.shape[-1], n_out=x_out.shape[-1], hidden=p["hidden"]))
    if p["bias_init"] == "seed":
        if x_in.shape[-1] != x_out.shape[-1]:
            raise ValueError("bias_init='seed' needs equal halves (an even neuron count); use bias_init='target'")
        model.init_bias(x_in.mean((0, 1)))
    elif p["bias_init"] == "target":
        model.init_bias(x_out.mean((0, 1)))
    elif p["bias_init"] != "none":
        raise ValueError(f"bias_init must be 'seed', 'target' or 'none', got {p['bias_init']!r}")

    rnn_dir = ctx.workdir / TRAIN_DIR
    first_path = rnn_dir / "cost_first.json"
    if main:
        _reset_if_changed(ctx.workdir, {**{k: p[k] for k in TRAIN_PARAMS if k not in _RUN_ONLY},
                                        **data.config.as_attrs()})
        if not first_path.exists():
            with torch.no_grad():
                write_json(first_path, {"cost_first": float(seed_poisson_loss(model(x_in)[0], x_out))})
    distributed.barrier()  # rank 0 has cleaned rnn_dir: the others may copy its checkpoints
    # A resumed run: the initial cost belongs to the run that started it.
    cost_first = json.loads(first_path.read_text())["cost_first"]

    val = None
    if te.stop > te.start:  # every rank validates on all held-out trials: same decisions
        val = _full_batch(x[:, te, heldin].contiguous(), x[:, te, heldout].contiguous())
    part = distributed.shard(x_in.shape[1]) if dist.distributed else slice(None)
    cfg = TrainConfig(
        steps=p["iterations"], lr=p["lr"], clip_grad=None, amp=False,
        device=str(dist.device) if dist.distributed else p["device"],
        seed=p["train_seed"], log_every=p["log_every"], val_every=max(1, p["iterations"] // 10),
        checkpoint_every=max(1, p["iterations"] // 4), restore_best=False,  # the seed keeps the last net
    )
    rep = distributed.reporter(ctx.reporter)
    rep.log(f"training BiRNN {x_in.shape[-1]}->{x_out.shape[-1]} neurons, hidden {p['hidden']}"
            + (f", {dist.world_size} ranks ({dist.backend}) of {x_in[:, part].shape[1]} trials" if dist.distributed
               else ""))
    res = fit(distributed.wrap(model), _full_batch(x_in[:, part].contiguous(), x_out[:, part].contiguous()), val,
              cfg, rep, distributed.workdir(rnn_dir), resume=True, loss_fn=seed_poisson_loss)
    if not main:  # the rest (readout, files, result) is rank 0's
        return {"train_iterations": res.step, "rank": dist.rank}

    model.eval()
    with torch.no_grad():
        dev = next(model.parameters()).device
        rates, q = model(x_in.to(dev))
        cost_last = float(seed_poisson_loss(rates, x_out.to(dev)))
        q_all = model(x[:, :, heldin].to(dev))[1].cpu()

    # Held-in readout from the frozen latents (for held-in bits/spike); small, on rank 0 alone.
    xh = x[:, :, heldin]
    readout = Readout(p["hidden"], xh.shape[-1])
    readout.fc.bias.data[:] = xh[:, tr].mean((0, 1))
    rcfg = TrainConfig(steps=p["readout_iterations"], lr=p["lr"], clip_grad=None, amp=False, device=cfg.device,
                       seed=p["train_seed"], log_every=p["log_every"], restore_best=False,
                       checkpoint_every=max(1, p["readout_iterations"]))
    rres = fit(readout, _full_batch(q_all[:, tr].contiguous(), xh[:, tr].contiguous()), None, rcfg,
               _Quiet(ctx.reporter), ctx.workdir / READOUT_DIR, resume=True, loss_fn=seed_poisson_loss)

    steps_, losses = res.series("train_loss")
    curve = {"step": steps_.tolist(), "train_loss": losses.tolist()}
    if "val_loss" in res.history:
        vs, vl = res.series("val_loss")
        curve.update(val_step=vs.tolist(), val_loss=vl.tolist())
    write_json(rnn_dir / "cost_curve.json", {"cost_first": cost_first, "cost_last": cost_last, **curve})
    return {
        "cost_first": cost_first,
        "cost_last": cost_last,
        "train_iterations": res.step,
        "train_seconds": round(res.elapsed_s, 2),
        "train_device": res.device.get("device"),
        "train_status": res.status,
        "train_ranks": dist.world_size,
        "readout_cost_last": _last_loss(rres),
        "val_cost_last": float(res.history["val_loss"][-1][1]) if res.history.get("val_loss") else None,
        "n_train_trials": tr.stop - tr.start,
    }


# how a run is carried out, not what it learns: a change keeps the checkpoints
_RUN_ONLY = ("device", "log_every", "nproc")


def _last_loss(res) -> float:
    """Last recorded training loss of a TrainResult (NaN when none)."""
    v = res.final_train_loss
    return float("nan") if v is None else v


class _Quiet:
    """Passes cancel and logs through, but keeps the readout's progress off the RNN's bar."""

    def __init__(self, inner):
        self._inner = inner

    def progress(self, *a, **k):
        pass

    def metric(self, name, value, step=None, **extra):
        self._inner.metric("readout_" + name, value, step=step, **extra)

    def log(self, message, level="info"):
        self._inner.log("readout: " + message, level)

    def artifact_dir(self):
        return self._inner.artifact_dir()

    def artifact(self, name, path, kind="file"):
        self._inner.artifact(name, path, kind)

    @property
    def cancelled(self):
        return self._inner.cancelled


def _predict(ctx: StepContext, data):
    """Held-out rates, inferred latents and held-in rates for all trials."""
    import torch

    from engine.train import load_checkpoint

    heldin, _ = _neuron_split(data)
    model, _ = load_checkpoint(ctx.workdir / TRAIN_DIR)
    readout, _ = load_checkpoint(ctx.workdir / READOUT_DIR)
    x_in = torch.from_numpy(data.spikes[:, :, heldin]).float()
    with torch.no_grad():
        rates_out, q = model(x_in)
        rates_in = readout(q)
    return rates_out.numpy().astype(float), rates_in.numpy().astype(float), q.numpy()


def evaluate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """Score the RNN: Poisson loss, bits/spike, co-bps, correlations; save the table and rates."""
    import numpy as np
    import pandas as pd

    from engine import metrics as M
    from engine.atomic import save_npz
    from engine.session import TableMeta

    data = load_data(ctx, p)
    heldin, heldout = _neuron_split(data)
    tr, te = trial_split(data, p)
    ctx.reporter.progress(0, 2, "predicting")
    pred_out, pred_in, q = _predict(ctx, data)
    spikes, rates = data.spikes.astype(float), data.rates

    rows, per_neuron = [], []
    splits = [("train", tr)] + ([("test", te)] if te.stop > te.start else [])
    for pop, cols, pred in (("heldout", heldout, pred_out), ("heldin", heldin, pred_in)):
        for split, trials in splits:
            s, z = spikes[:, trials, cols], pred[:, trials]
            r = rates[:, trials, cols] if rates is not None else None  # None: real data, no true rates
            corr_rates = M.pearson(r, z, per_cell=True) if r is not None else np.full(z.shape[-1], np.nan)
            corr_spk = M.pearson(s, z, per_cell=True)
            bps = M.bits_per_spike(s, z, per_cell=True)
            rows.append({
                "population": pop, "trials": split,
                "poisson_loss": M.poisson_loss(s, z),
                "bits_per_spike": M.bits_per_spike(s, z),
                "bits_per_spike_true_rates": M.bits_per_spike(s, r) if r is not None else float("nan"),
                "corr_rates": float(np.nanmean(corr_rates)) if np.isfinite(corr_rates).any() else float("nan"),
                "corr_spikes": float(np.nanmean(corr_spk)),
                "mae_rates": M.mae(r, z) if r is not None else float("nan"),
                "n_neurons": int(s.shape[-1]), "n_trials": int(s.shape[1]),
            })
            neuron_ids = np.arange(data.spikes.shape[2])[cols]
            per_neuron.append(pd.DataFrame({
                "neuron": neuron_ids, "population": pop, "trials": split,
                "bits_per_spike": bps, "corr_rates": corr_rates, "corr_spikes": corr_spk,
            }))
    table = pd.DataFrame(rows).set_index(["population", "trials"])
    neurons = pd.concat(per_neuron, ignore_index=True)
    # NaN in the likelihoods is a diverged RNN; in the rate columns, real data (no true rates)
    ctx.save_table("lds_metrics", table.reset_index(), meta=TableMeta.of(
        higher=["bits_per_spike", "bits_per_spike_true_rates", "corr_rates", "corr_spikes"],
        lower=["poisson_loss", "mae_rates"], diverged=["poisson_loss", "bits_per_spike"]))
    ctx.save_table("lds_neurons", neurons, meta=TableMeta.of(
        higher=["bits_per_spike", "corr_rates", "corr_spikes"], diverged=["bits_per_spike"]))

    ctx.reporter.progress(1, 2, "saving predictions")
    path = save_npz(
        ctx.workdir / PRED_FILE,
        rates_heldout=pred_out.astype(np.float32), rates_heldin=pred_in.astype(np.float32),
        latents_inferred=q.astype(np.float32),
        heldout=np.arange(data.spikes.shape[2])[heldout], heldin=np.arange(data.spikes.shape[2])[heldin],
        test_trials=np.arange(data.spikes.shape[1])[te],
    )
    ctx.reporter.artifact(PRED_FILE, path, kind="npz")
    ctx.reporter.progress(2, 2, "done")

    main = "test" if te.stop > te.start else "train"
    ho, hi = table.loc[("heldout", main)], table.loc[("heldin", main)]
    nlb_out = {}
    if hasattr(data, "nlb"):  # an NLB file: the predictions in NLB's submission layout, scored by nlb_tools
        from engine.data.nlb import write_lds_submission

        nlb_out = write_lds_submission(data, pred_out, pred_in, ctx.workdir, p["nlb_dataset"])
    return {**nlb_out,
        "co_bps": float(ho["bits_per_spike"]),
        "co_bps_true_rates": float(ho["bits_per_spike_true_rates"]),
        "bits_per_spike_heldin": float(hi["bits_per_spike"]),
        "poisson_loss_heldout": float(ho["poisson_loss"]),
        "corr_rates_heldout": float(ho["corr_rates"]),
        "corr_spikes_heldout": float(ho["corr_spikes"]),
        "co_bps_train_trials": float(table.loc[("heldout", "train"), "bits_per_spike"]),
        "eval_trials": main,
        "predictions": str(path),
    }


def sindy(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """Degree-1 SINDy on the true latents; compare with the known ``A0 - I``."""
    import numpy as np

    data = load_data(ctx)
    fit = fit_latent_dynamics(data.latents, threshold=p["sindy_threshold"])
    truth = data.A0 - np.eye(data.A0.shape[0])
    err = fit["coef"] - truth
    off = ~np.eye(truth.shape[0], dtype=bool)
    out = {
        "sindy_backend": fit["backend"],
        "sindy_max_abs_err": float(np.abs(err).max()),
        "sindy_diag_max_abs_err": float(np.abs(np.diag(err)).max()),
        "sindy_offdiag_nonzero": int((fit["coef"][off] != 0).sum()),
        "sindy_intercept_max_abs": float(np.abs(fit["intercept"]).max()),
    }
    from engine.sindy.equation_set import linear_map_payload

    eq = linear_map_payload([f"y{i}" for i in range(truth.shape[0])], fit["coef"], fit["intercept"],
                            threshold=p["sindy_threshold"], truth=truth,
                            system="lds latents, discrete step x[t+1]-x[t]", backend=fit["backend"])
    ctx.save_equations("lds_latents", eq)
    write_json(ctx.workdir / "sindy_latents.json", eq)
    return out


def fit_latent_dynamics(latents, threshold: float = 0.05) -> dict[str, Any]:
    """Sparse linear fit of one-step latent differences: ``y[t+1] - y[t] ~ y[t] @ coef + c``.

    The seed's dynamics ``y[t+1] = y[t] @ A0 + noise`` give ``coef = A0 - I``
    (row = source latent, column = target; the ``x(A0 - I)`` convention).
    Fitted with ``engine.sindy.Sindy`` (the same STLSQ as pysindy's, checked
    against it in tests/test_sindy_model.py).

    Parameters
    ----------
    latents : array (time, trials, latents)
    threshold : float
        STLSQ threshold on coefficients.

    Returns
    -------
    dict with ``coef`` (latents, latents), ``intercept`` (latents,), ``backend``.
    """
    import numpy as np

    y = np.asarray(latents, dtype=float)
    if y.ndim != 3 or y.shape[0] < 2:
        raise ValueError(f"latents must be (time >= 2, trials, latents), got shape {y.shape}")
    # Pool all trials: samples are (y[t], y[t+1]-y[t]) pairs, never across trials.
    xt = y[:-1].reshape(-1, y.shape[2])
    dx = (y[1:] - y[:-1]).reshape(-1, y.shape[2])
    from engine.sindy import Sindy

    model = Sindy(degree=1, threshold=threshold).fit(xt, x_dot=dx)
    coef = np.asarray(model.coef_)  # (targets, 1 + latents): bias first
    return {"coef": coef[:, 1:].T, "intercept": coef[:, 0], "backend": "engine.sindy"}
