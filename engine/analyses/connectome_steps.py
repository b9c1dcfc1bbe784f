"""Heavy steps of the ``connectome`` and ``stimulus`` analyses (torch is imported here).

Both analyses share these steps; ``input`` ("modulate" for seed 001,
"additive" for seed 003) decides how the external field enters, and the
``stimulus`` analysis only adds its own metrics table and result keys.

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

DATA_FILE = "pde_n4.h5"
MODEL_FILE = "gnn.pt"
CURVES_FILE = "functions.npz"
FIELD_FILE = "field.npz"
CONNECTIVITY_FILE = "connectivity.npz"
ROLLOUT_FILE = "rollout.npz"


# --------------------------------------------------------------------------- generate


def sim_config(p: dict[str, Any], input_mode: str):
    from engine.data.pde_n4 import PDEN4Config

    return PDEN4Config(n_neurons=p["n_neurons"], grid=p["grid"], n_frames=p["n_frames"], n_runs=p["n_runs"],
                       dt=p["dt"], gain=p["gain"], connectivity=p["connectivity"], input=input_mode,
                       input_amplitude=p["input_amplitude"], noise=p["noise"], burn_in=p.get("burn_in", 100),
                       seed=p["seed"])


def generate(ctx: StepContext, p: dict[str, Any], input_mode: str = "modulate") -> dict[str, Any]:
    from engine.data.pde_n4 import simulate, write_h5

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


def _pairs(data):
    """Frames, normalised times and the simulator's noise-free derivatives (what the GNN sees).

    The target is the stored right-hand side ``dxdt`` (seed 001's ``y_list``),
    not a finite difference: with process noise ``(x[k+1] - x[k]) / dt`` carries
    ``sigma xi / sqrt(dt)``, larger than the signal.  Without noise the two are
    equal (Euler steps).
    """
    x = data.x
    n_runs, n_frames, n = x.shape
    t_all = np.broadcast_to(frame_times(n_frames), (n_runs, n_frames)).reshape(-1)
    return x.reshape(-1, n), np.ascontiguousarray(t_all), data.dxdt.reshape(-1, n)


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
    embeddings, MLPs) by ``refine_factor`` and keeps the SIREN's.
    """
    import torch

    from engine.train import TrainConfig, fit, save_model

    data = load(ctx)
    mode = input_mode or data.config.input
    if p["learn_input"] is False or data.config.grid == 0:
        mode = "none"
    torch.manual_seed(p["seed"])
    x, t, y = (torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32) for a in _pairs(data))
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

    results = {}
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
        res = fit(model, train_b, val_b, cfg, ctx.reporter, ctx.fresh_dir(f"train_{name}"),
                  resume=ctx.resuming, loss_fn=loss_fn)
        results[name] = res
        model.cpu()
    save_model(model, ctx.workdir / MODEL_FILE, extra={"input": mode})
    ctx.reporter.artifact(MODEL_FILE, ctx.workdir / MODEL_FILE, kind="checkpoint")
    last = results[phases[-1][0]]
    return {"train_status": last.status, "best_val_loss": last.best_val_loss,
            "train_s": round(sum(r.elapsed_s for r in results.values()), 1),
            "device": last.device.get("device", "cpu")}


# --------------------------------------------------------------------------- metrics


def r2_slope(true, pred) -> tuple[float, float]:
    """R² of ``pred`` against ``true`` (1 - SS_res/SS_tot) and the least-squares slope of pred on true."""
    t, q = np.asarray(true, float).ravel(), np.asarray(pred, float).ravel()
    ss_tot = float(((t - t.mean()) ** 2).sum())
    if ss_tot == 0:
        raise ValueError("true values are constant; R² is undefined")
    tc = t - t.mean()
    slope = float((tc * (q - q.mean())).sum() / (tc * tc).sum())
    return 1.0 - float(((t - q) ** 2).sum()) / ss_tot, slope


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


def rollout(model, data, n_frames: int = 250):
    """Noise-free truth and the learned model integrated from run 0's first state.

    The truth is re-simulated without noise (same seed: same W, types, input and
    initial state); the model is stepped with the same Euler ``dt`` and its own
    learned input.  Returns ``(t, x_true, x_pred)``, each (T, n) but ``t``.
    """
    import dataclasses

    import torch

    from engine.data.pde_n4 import simulate

    clean = simulate(dataclasses.replace(data.config, n_runs=1, noise=0.0), device="cpu")
    T = min(n_frames, clean.x.shape[1])
    tn = torch.as_tensor(frame_times(clean.x.shape[1])[:T])
    x = torch.as_tensor(clean.x[0, :1])
    out = [x]
    with torch.no_grad():
        for k in range(T - 1):
            x = x + data.config.dt * model(x, tn[k:k + 1])
            if not torch.isfinite(x).all():  # a diverging model: keep the traces up to here
                break
            out.append(x)
    pred = torch.cat(out).numpy()
    return clean.t[:len(pred)], clean.x[0, :len(pred)], pred


def evaluate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """W R²/slope, clustering accuracy, phi*/psi* per type, the learned field, a rollout; tables and npz.

    Arrays for the views (every file an ``.npz`` in the step's folder):

    ``connectivity.npz``
        ``W_true``, ``W_learned`` (n, n): both in the common gauge
        ``<Omega_i> W_ij psi_j'(0)`` (what ``W_r2``/``W_slope`` compare; the
        diagonal is 0); ``W_true_raw`` (g W of the simulator) and
        ``W_learned_raw`` (the model's W*); ``psi_slope`` (n,) learned
        ``psi*'(0)``; ``omega_mean`` (n,) learned ``<Omega*_i>``.
    ``functions.npz``
        ``x`` (G,) grid of activities; ``phi_true``, ``phi_learned``,
        ``psi_true``, ``psi_learned`` (n_types, G), psi in the gauge
        ``psi'(0) = 1``, learned curves the median over the neurons of each
        true type; ``embedding`` (n, d) and ``types`` (n,) true cell types.
    ``field.npz`` (when an input was learned)
        ``true``, ``learned`` (n_frames, n_input) Omega/I and the SIREN's
        Omega*/I*; ``learned_corrected`` = ``a * learned + b`` (the global
        linear fit of the corrected R²); ``t`` (n_frames,); ``pos``
        (n_input, 2) grid positions in [0, 1]² (row-major ``grid x grid``).
    ``rollout.npz``
        ``t`` (T,), ``x_true``, ``x_pred`` (T, n): a noise-free simulation from
        run 0's first state and the learned model integrated from it
        (:func:`rollout`); ``rollout_r2`` is their R².
    """
    import pandas as pd
    import torch

    from engine.atomic import save_npz
    from engine.data.pde_n4 import phi, psi
    from engine.metrics import corrected_r2
    from engine.train import load_checkpoint

    data = load(ctx)
    path = ctx.workdir / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the 'train' step first")
    model, _ = load_checkpoint(path)
    model.eval()
    cfg = model.config
    n, g = cfg.n_neurons, cfg.grid**2
    ctx.reporter.progress(0, 4, "reading out W, embeddings, functions")
    n_frames = data.x.shape[1]
    t_norm = torch.as_tensor(frame_times(n_frames))
    with torch.no_grad():
        a = model.embedding.detach()
        W_learned = model.W_masked().numpy().astype(float)
        h = 0.1 * float(np.std(data.x))
        xs = torch.tensor([[-h], [h]], dtype=torch.float32).expand(2, n)
        pv = model.psi_of(xs, a).numpy()
        psi_slope = (pv[1] - pv[0]) / (2 * h)
        field = None
        if cfg.input != "none":
            field = torch.cat([model.omega(t_norm[i:i + 512]) for i in range(0, len(t_norm), 512)]).numpy()
    omega_learned = np.ones(n)
    omega_true = np.ones(n)
    if cfg.input == "modulate":
        omega_learned[:g] = field.mean(0)
        omega_true[:g] = data.field.mean(0)
    elif data.config.input == "modulate":  # no input learned: the model can only learn the mean gain
        omega_true[: data.config.n_input] = data.field.mean(0)
    # the model's W* also carries the global gain g (g W psi is what the data see)
    W_true_g = gauge_fixed_W(data.config.gain * data.W, _true_psi_slope(data), omega_true)
    W_learn_g = gauge_fixed_W(W_learned, psi_slope, omega_learned)
    off = ~np.eye(n, dtype=bool)
    W_r2, W_slope = r2_slope(W_true_g[off], W_learn_g[off])
    W_r2_raw, W_slope_raw = r2_slope(data.config.gain * data.W[off], W_learned[off])
    save_npz(ctx.workdir / CONNECTIVITY_FILE, W_true=W_true_g, W_learned=W_learn_g,
             W_true_raw=data.config.gain * data.W, W_learned_raw=W_learned, psi_slope=psi_slope,
             omega_mean=omega_learned)
    ctx.reporter.artifact(CONNECTIVITY_FILE, ctx.workdir / CONNECTIVITY_FILE, kind="npz")
    emb = a.numpy()
    acc = clustering_accuracy(emb, data.types, seed=p["seed"])

    ctx.reporter.progress(1, 4, "update and edge functions per type")
    lim = float(np.percentile(np.abs(data.x), 99))
    grid_x = np.linspace(-lim, lim, 101)
    n_types = len(data.params)
    inp0 = None
    out: dict[str, Any] = {}
    fit = None
    if cfg.input == "additive":
        fit = corrected_r2(data.field, field)
        if model.phi_takes_input:
            # phi* is read at the learned input that corresponds to no stimulus (I = a I* + b = 0)
            inp0 = -fit.b / fit.a if fit.a else 0.0
        out.update(r2_raw=fit.r2_raw, r2_corrected=fit.r2_corrected, a=fit.a, b=fit.b)
    elif cfg.input == "modulate":
        fit = corrected_r2(data.field, field)
        out.update(omega_r2_raw=fit.r2_raw, omega_r2_corrected=fit.r2_corrected, omega_a=fit.a, omega_b=fit.b)
    with torch.no_grad():
        gx = torch.as_tensor(grid_x, dtype=torch.float32)[:, None].expand(-1, n)
        inp = None if inp0 is None else torch.full_like(gx, float(inp0))
        phi_n = model.phi_of(gx, a, inp).numpy().T            # (n, G)
        psi_n = (model.psi_of(gx, a).numpy() / psi_slope).T   # in the gauge psi'(0) = 1
    phi_l, psi_l, phi_t, psi_t = (np.zeros((n_types, len(grid_x))) for _ in range(4))
    for k in range(n_types):
        sel = data.types == k
        tau, s, gam, th = data.params[k]
        phi_l[k], psi_l[k] = np.median(phi_n[sel], 0), np.median(psi_n[sel], 0)
        phi_t[k], psi_t[k] = phi(grid_x, tau, s), psi(grid_x, gam, th) / ((1 / gam) - th)
    phi_r2, _ = r2_slope(phi_t, phi_l)
    psi_r2, _ = r2_slope(psi_t, psi_l)
    save_npz(ctx.workdir / CURVES_FILE, x=grid_x, phi_learned=phi_l, phi_true=phi_t, psi_learned=psi_l,
             psi_true=psi_t, embedding=emb, types=data.types)
    ctx.reporter.artifact(CURVES_FILE, ctx.workdir / CURVES_FILE, kind="npz")
    if field is not None:
        save_npz(ctx.workdir / FIELD_FILE, true=data.field, learned=field, learned_corrected=fit.a * field + fit.b,
                 t=data.t, pos=data.pos)
        ctx.reporter.artifact(FIELD_FILE, ctx.workdir / FIELD_FILE, kind="npz")

    ctx.reporter.progress(2, 4, "rollout")
    t_roll, x_true, x_pred = rollout(model, data, int(p.get("rollout_frames", 250)))
    save_npz(ctx.workdir / ROLLOUT_FILE, t=t_roll, x_true=x_true, x_pred=x_pred)
    ctx.reporter.artifact(ROLLOUT_FILE, ctx.workdir / ROLLOUT_FILE, kind="npz")
    rollout_r2 = r2_slope(x_true, x_pred)[0] if len(x_pred) > 1 else float("nan")

    ctx.reporter.progress(3, 4, "tables")
    out.update(W_r2=W_r2, W_slope=W_slope, W_r2_raw=W_r2_raw, W_slope_raw=W_slope_raw,
               clustering_accuracy=acc, phi_r2=phi_r2, psi_r2=psi_r2, rollout_r2=rollout_r2,
               rollout_frames=len(x_pred))
    out = {k: (float(v) if v is not None and math.isfinite(float(v)) else None) for k, v in out.items()}
    ctx.save_table(p.get("table", "connectome recovery"),
                   pd.DataFrame({"value": pd.Series(out, dtype=float)}).rename_axis("metric"))
    for k, v in out.items():
        if v is not None:
            ctx.reporter.metric(k, v)
    ctx.reporter.progress(4, 4, "done")
    return out
