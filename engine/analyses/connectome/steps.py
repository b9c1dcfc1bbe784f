"""Heavy steps of the ``connectome`` and ``stimulus`` analyses (torch is imported here).

Both analyses share these steps; ``input`` ("modulate" for seed 001,
"additive" for seed 003) decides how the external field enters, and the
``stimulus`` analysis only adds its own metrics table and result keys.

What reads the generator's truth.  ``generate`` writes it; ``train`` reads the
activity (and ``dxdt`` only under ``target="oracle"``); ``evaluate`` reads the
model and a fresh simulated run of the same network, never W, the types, the
functions or the field; only ``truth`` (:mod:`engine.analyses.connectome.truth`)
scores against them (tests/test_truth.py shuffles them to check).

Gauge.  What the data determine is the coupling ``Omega_i W_ij psi_j``, not
its factors: ``W psi = (W/c)(c psi)`` per sender and ``Omega W = (k Omega)(W/k)``
per receiver.  Both W matrices (true and learned) are therefore compared in
the same gauge, ``<Omega_i>_t * W_ij * psi_j'(0)`` (:func:`gauge_fixed_W`),
with the true W times the gain g (the model has no separate gain); the
simulator's default types have ``psi'(0) = 1`` and ``<Omega> ~ 1``, so this is
``g W`` of the simulator up to a percent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.analyses.base import StepContext
from engine.truth import r2_slope

DATA_FILE = "pde_n4.h5"
MODEL_FILE = "gnn.pt"
CURVES_FILE = "functions.npz"
FIELD_FILE = "field.npz"
CONNECTIVITY_FILE = "connectivity.npz"
ROLLOUT_FILE = "rollout.npz"
CLUSTERS_FILE = "clusters.npz"
EVALUATE_FILE = "evaluate.json"


# --------------------------------------------------------------------------- generate


def sim_config(p: dict[str, Any], input_mode: str):
    from engine.data.pde_n4 import PDEN4Config

    return PDEN4Config(n_neurons=p["n_neurons"], grid=p["grid"], n_frames=p["n_frames"], n_runs=p["n_runs"],
                       dt=p["dt"], gain=p["gain"], connectivity=p["connectivity"], input=input_mode,
                       input_amplitude=p["input_amplitude"], noise=p["noise"], burn_in=p["burn_in"],
                       measurement_noise=p["measurement_noise"], seed=p["seed"])


def require_sim_memory(p: dict[str, Any]) -> None:
    """Refuse, in one line, a network that cannot fit: W (float64, and its mask) and the
    stored voltages and derivatives of every run (float32)."""
    from engine.resources import require_memory

    n = p["n_neurons"]
    require_memory(n * n * 8 * 2 + p["n_runs"] * (p["n_frames"] + 1) * n * 4 * 3, "the network simulation",
                   {"n_neurons": n, "n_frames": p["n_frames"], "n_runs": p["n_runs"]})


def generate(ctx: StepContext, p: dict[str, Any], input_mode: str = "modulate") -> dict[str, Any]:
    from engine.data.pde_n4 import simulate, write_h5

    require_sim_memory(p)
    cfg = sim_config(p, input_mode)
    ctx.reporter.progress(0, 2, f"simulating {cfg.n_neurons} neurons x {cfg.n_frames} frames x {cfg.n_runs} runs")
    data = simulate(cfg, device=p["device"])
    ctx.reporter.progress(1, 2, f"writing {DATA_FILE}")
    path = write_h5(data, ctx.workdir / DATA_FILE)
    ctx.reporter.artifact(DATA_FILE, path, kind="hdf5")
    ctx.reporter.progress(2, 2, "done")
    return {"data": str(path), "n_neurons": cfg.n_neurons, "n_input": cfg.n_input,
            "activity_std": float(data.x.std()), "activity_max": float(np.abs(data.x).max())}


def load(ctx: StepContext):
    from engine.data.pde_n4 import read_h5

    return read_h5(ctx.workdir / DATA_FILE)


# --------------------------------------------------------------------------- train


def frame_times(n_frames: int) -> np.ndarray:
    """Frame times normalised to [-1, 1]: the SIREN's time coordinate."""
    return (2.0 * np.arange(n_frames) / max(n_frames - 1, 1) - 1.0).astype(np.float32)


def _pairs(data, target: str = "diff", window: int = 1):
    """Frames, normalised times and derivative targets (what the GNN sees).

    ``target="diff"`` (default): forward differences of the activity alone;
    ``"oracle"``: the simulator's noise-free ``dxdt`` (seed 001's ``y_list``).
    See :mod:`engine.analyses.connectome.targets`.
    """
    from engine.analyses.connectome.targets import derivative_targets

    x = data.x
    n_runs, n_frames, n = x.shape
    keep, y = derivative_targets(x, data.config.dt, target, window,
                                 dxdt=data.dxdt if target == "oracle" else None)
    t_all = np.broadcast_to(frame_times(n_frames), (n_runs, n_frames))
    k = keep.reshape(-1)
    return x.reshape(-1, n)[k], np.ascontiguousarray(t_all.reshape(-1)[k]), y.reshape(-1, n)[k]


class _FrameBatches:
    """Shuffled mini-batches of whole frames ``((x, t), dx)``, deterministic in the epoch."""

    def __init__(self, x, t, y, idx, batch_size: int, seed: int, shuffle: bool = True):
        self.x, self.t, self.y, self.idx = x, t, y, idx
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle

    def __len__(self) -> int:
        return -(-len(self.idx) // self.batch_size)

    def __call__(self, epoch: int = 0):
        import torch

        idx = self.idx
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            idx = idx[torch.randperm(len(idx), generator=gen)]
        for i in range(len(self)):
            b = idx[i * self.batch_size:(i + 1) * self.batch_size]
            yield (self.x[b], self.t[b]), self.y[b]


def build_model(data, p: dict[str, Any], input_mode: str):
    from engine.models.gnn import GNNConfig, SignalGNN

    cfg = GNNConfig(n_neurons=data.config.n_neurons, grid=data.config.grid if input_mode != "none" else 0,
                    input=input_mode, embedding_dim=p["embedding_dim"], hidden=p["hidden"],
                    siren_hidden=p["siren_hidden"], siren_layers=p["siren_layers"], omega0=p["omega0"],
                    input_through_phi=bool(p.get("input_through_phi", False)),
                    lr_scales=(p["lr_W"] / p["lr"], p["lr_embedding"] / p["lr"], 1.0, p["lr_siren"] / p["lr"]))
    return SignalGNN(cfg)


def train(ctx: StepContext, p: dict[str, Any], input_mode: str | None = None) -> dict[str, Any]:
    """Derivative loss through engine.train.fit: a full-rate phase, then a refine phase.

    The refine phase (seed 003's alternation) multiplies the GNN's rates (W,
    embeddings, MLPs) by ``refine_factor`` and keeps the SIREN's.  Before it,
    stranded neurons are moved to the type that fits them (:func:`reassign_stranded`).
    """
    import torch

    from engine.train import TrainConfig, fit, save_model

    data = load(ctx)
    mode = input_mode or data.config.input
    if p["learn_input"] is False or data.config.grid == 0:
        mode = "none"
    torch.manual_seed(p["seed"])
    target, window = p.get("target", "diff"), int(p.get("target_window", 1))
    x, t, y = (torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32) for a in _pairs(data, target, window))
    n = x.shape[0]
    # Validation: every 10th frame, interleaved (not a trailing block): the SIREN
    # represents the input only over the times it was trained on.
    all_idx = torch.arange(n)
    val_idx = all_idx[all_idx % 10 == 5]
    tr_idx = all_idx[all_idx % 10 != 5]
    train_b = _FrameBatches(x, t, y, tr_idx, p["batch_size"], p["seed"])
    val_b = _FrameBatches(x, t, y, val_idx, 256, p["seed"], shuffle=False)
    model = build_model(data, p, mode)
    w_l1 = p["w_l1"]

    def loss_fn(pred, target):
        loss = torch.nn.functional.mse_loss(pred, target)
        if w_l1 > 0:
            loss = loss + w_l1 * model.W_masked().abs().mean()
        return loss

    results, moves = {}, []
    phases = [("gnn", p["steps"], 1.0)]
    if p["refine_steps"] > 0:
        phases.append(("refine", p["refine_steps"], p["refine_factor"]))
    base = model.config.lr_scales
    for name, steps, factor in phases:
        model.apply_lr_scales((base[0] * factor, base[1] * factor, base[2] * factor, base[3]))
        cfg = TrainConfig(steps=steps, lr=p["lr"], batch_size=p["batch_size"], loss="mse", clip_grad=None,
                          val_every=max(1, min(250, steps)), checkpoint_every=max(1, min(1000, steps)),
                          device=p["device"], seed=p["seed"], log_every=50, amp=False)
        ctx.reporter.log(f"phase {name}: {steps} steps, GNN lr x{factor}")
        res = fit(model, train_b, val_b, cfg, ctx.reporter, ctx.checkpoint_dir(f"train_{name}"),
                  resume=ctx.resuming, loss_fn=loss_fn)
        results[name] = res
        model.cpu()
        if name == "gnn":
            moves = reassign_stranded(model, x[tr_idx], t[tr_idx], y[tr_idx], p)
            for m in moves:
                ctx.reporter.log(f"neuron {m.neuron} moved to the type of cluster {m.to_cluster} "
                                 f"(loss {m.loss_stay:.4f} -> {m.loss_moved:.4f})")
    save_model(model, ctx.workdir / MODEL_FILE, extra={"input": mode, "target": target, "target_window": window})
    ctx.reporter.artifact(MODEL_FILE, ctx.workdir / MODEL_FILE, kind="checkpoint")
    last = results[phases[-1][0]]
    return {"train_status": last.status, "best_val_loss": last.best_val_loss, "reassigned": [m.neuron for m in moves],
            "train_s": round(sum(r.elapsed_s for r in results.values()), 1),
            "device": last.device.get("device", "cpu")}


def reassign_stranded(model, x, t, y, p: dict[str, Any]) -> list:
    """Neurons whose embedding stopped between types moved to the best-fitting type
    (:mod:`engine.analyses.connectome.reassign`), on at most 2**19 / n evenly spaced
    training frames (the loss is judged by full forward passes)."""
    from engine.analyses.connectome.reassign import reassign

    tried = int(p.get("reassign_neurons", 0))
    if tried <= 0:
        return []
    step = max(1, -(-len(x) // max(1, 2**19 // x.shape[1])))
    # one-neuron clusters allowed here: a stray alone is then not counted in any type
    _, labels, _ = choose_n_clusters(model.embedding.detach().numpy(), int(p.get("max_types", 8)), seed=p["seed"],
                                     min_size=1)
    return reassign(model, x[::step], t[::step], y[::step], labels, tried)


# --------------------------------------------------------------------------- metrics


def clustering_accuracy(embedding: np.ndarray, types: np.ndarray, seed: int = 0) -> float:
    """KMeans on the embeddings, clusters matched to types by the Hungarian algorithm; fraction right."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans

    types = np.asarray(types)
    k = int(types.max()) + 1
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(np.asarray(embedding, float))
    confusion = np.zeros((k, k))
    np.add.at(confusion, (labels, types), 1)
    rows, cols = linear_sum_assignment(-confusion)
    return float(confusion[rows, cols].sum() / len(types))


def gauge_fixed_W(W, psi_slope, omega_mean) -> np.ndarray:
    """``<Omega_i> W_ij psi_j'(0)``: the part of the coupling the data determine."""
    return np.asarray(omega_mean)[:, None] * np.asarray(W) * np.asarray(psi_slope)[None, :]


def _true_psi_slope(data, h: float = 1e-3) -> np.ndarray:
    from engine.data.pde_n4 import psi

    g, th = data.params[data.types, 2], data.params[data.types, 3]
    return (psi(h, g, th) - psi(-h, g, th)) / (2 * h)


def choose_n_clusters(embedding: np.ndarray, k_max: int = 8, seed: int = 0,
                      min_size: int = 2) -> tuple[int, np.ndarray, dict[int, float]]:
    """The number of cell types chosen by the method: KMeans for k = 2..k_max, the best silhouette.

    A partition with a cluster of fewer than ``min_size`` neurons is passed over: one
    neuron whose embedding stopped away from the others is an outlier, not a type (seed 1
    of the CPU default: silhouette 0.891 at 4 types, 0.905 at 5 with neuron 25 alone);
    when every partition has one, the best silhouette is taken anyway.  Returns ``(k,
    labels, scores)``.  Nothing about the true types is read: this is the count a
    researcher without the generator would report.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    emb = np.asarray(embedding, float)
    k_max = max(2, min(int(k_max), len(emb) - 1))
    scores: dict[int, float] = {}
    labels: dict[int, np.ndarray] = {}
    for k in range(2, k_max + 1):
        labels[k] = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(emb)
        scores[k] = float(silhouette_score(emb, labels[k])) if len(np.unique(labels[k])) > 1 else -1.0
    sized = [k for k in scores if np.bincount(labels[k], minlength=k).min() >= min_size] or list(scores)
    best = max(sized, key=lambda k: scores[k])
    return best, labels[best], scores


def integrate(model, x0: np.ndarray, dt: float, n_frames: int, total_frames: int) -> np.ndarray:
    """The learned model stepped with Euler ``dt`` from ``x0`` (n,), its own learned input; (T, n).

    Stops early (shorter output) if the model diverges.
    """
    import torch

    tn = torch.as_tensor(frame_times(total_frames)[:n_frames])
    x = torch.as_tensor(np.asarray(x0, np.float32)[None])
    out = [x]
    with torch.no_grad():
        for k in range(n_frames - 1):
            x = x + dt * model(x, tn[k:k + 1])
            if not torch.isfinite(x).all():  # a diverging model: keep the traces up to here
                break
            out.append(x)
    return torch.cat(out).numpy()


def fresh_run(config, run_seed: int, noise: bool = True):
    """A new run of the same network (same W, types, input; new initial state and noise)."""
    import dataclasses

    from engine.data.pde_n4 import simulate

    cfg = dataclasses.replace(config, n_runs=1) if noise else \
        dataclasses.replace(config, n_runs=1, noise=0.0, measurement_noise=0.0)
    return simulate(cfg, device="cpu", run_seed=run_seed)


def load_model(ctx: StepContext):
    """The trained GNN (rebuilt from its own file, whatever the parameters now) and its ``extra``."""
    from engine.models.gnn import SignalGNN
    from engine.train import load_model as read_model_file

    path = ctx.workdir / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the 'train' step first")
    return read_model_file(path, expect=SignalGNN)


def evaluate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """What the model says without the generator's truth: cell types, held-out fit.

    * the number of cell types chosen by silhouette on the embeddings
      (:func:`choose_n_clusters`), labels in ``clusters.npz``;
    * a fresh run of the same network (``heldout_seed``; new initial state and
      noise, as a second recording would be): the one-frame prediction R²
      against its own forward differences (the realistic target, noise
      included, so its ceiling is below 1) and the free rollout R² against the
      noisy recording over ``rollout_frames`` frames.

    Writes ``evaluate.json`` for the truth step's table; reads nothing of the
    stored truth (W, types, functions, field, dxdt).
    """
    import torch

    from engine.analyses.connectome.targets import derivative_targets, label
    from engine.atomic import save_npz

    data = load(ctx)
    model, payload = load_model(ctx)
    target, window = payload.get("target", "oracle"), int(payload.get("target_window", 1))
    ctx.reporter.progress(0, 3, "choosing the number of cell types")
    emb = model.embedding.detach().numpy()
    k, labels, scores = choose_n_clusters(emb, int(p.get("max_types", 8)), seed=p["seed"])
    save_npz(ctx.workdir / CLUSTERS_FILE, labels=labels, k=np.array(k), k_tried=np.array(list(scores)),
             silhouette=np.array(list(scores.values())))
    ctx.reporter.progress(1, 3, "held-out run of the same network")
    fresh = fresh_run(data.config, int(p.get("heldout_seed", 1)))
    keep, y = derivative_targets(fresh.x, data.config.dt, "diff", 1)
    x = torch.as_tensor(fresh.x[0][keep[0]])
    tn = torch.as_tensor(frame_times(fresh.x.shape[1])[keep[0]])
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 512], tn[i:i + 512]) for i in range(0, len(x), 512)]).numpy()
    heldout_r2 = r2_slope(y[0][keep[0]], pred)[0]
    T = min(int(p.get("rollout_frames", 250)), fresh.x.shape[1])
    roll = integrate(model, fresh.x[0, 0], data.config.dt, T, fresh.x.shape[1])
    roll_r2 = r2_slope(fresh.x[0, :len(roll)], roll)[0] if len(roll) > 1 else float("nan")
    out = {"target": label(target, window), "n_types_found": k, "silhouette": scores[k],
           "heldout_deriv_r2": heldout_r2, "heldout_rollout_r2": roll_r2, "heldout_rollout_frames": len(roll)}
    _write_json(ctx.workdir / EVALUATE_FILE, out)
    for key, value in (("n_types_found", k), ("heldout_deriv_r2", heldout_r2), ("heldout_rollout_r2", roll_r2)):
        if math.isfinite(float(value)):
            ctx.reporter.metric(key, float(value))
    ctx.reporter.progress(3, 3, "done")
    return out


def _write_json(path, obj) -> None:
    import json

    from engine.atomic import write_with

    def write(tmp) -> None:
        tmp.write_text(json.dumps(obj))

    write_with(path, write)


