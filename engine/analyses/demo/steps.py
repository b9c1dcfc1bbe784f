"""The demo's heavy steps (torch and SINDy are imported here, not in the declaration)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.analyses.base import StepContext
from engine.analyses.demo.data import cubic_oscillator, load, rk4, split


def generate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    import h5py

    from engine.atomic import write_with

    from engine.resources import require_memory

    n_traj, n_t, dt = p["trajectories"], p["timesteps"], p["dt"]
    # float64 states + rates and noisy copies (float64, then float32 for the file)
    require_memory(n_traj * n_t * (2 * 8 + p["neurons"] * 8 * 3 + p["neurons"] * 4 * 2), "the demo's generate step",
                   {"trajectories": n_traj, "timesteps": n_t, "neurons": p["neurons"]})
    rng = np.random.default_rng(p["seed"])
    radius = rng.uniform(0.5, 1.5, n_traj)
    angle = rng.uniform(0, 2 * np.pi, n_traj)
    z0 = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    ctx.reporter.progress(0, 2, "simulating")
    z = rk4(cubic_oscillator, z0, dt, n_t)
    # a small "recorded population": rectified mixtures of the latent state, plus noise
    readout = rng.normal(0, 1, (2, p["neurons"]))
    rates = np.logaddexp(0, 2 * z @ readout)
    obs = rates + rng.normal(0, p["noise"], rates.shape)
    ctx.reporter.progress(1, 2, "writing demo.h5")
    path = ctx.workdir / "demo.h5"

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["system"] = "cubic oscillator x'=-0.1x^3+2y^3, y'=-2x^3-0.1y^3"
            f.attrs["dt"] = dt
            f.create_dataset("latents", data=z.astype(np.float32), chunks=True, compression="gzip")
            f.create_dataset("time", data=np.arange(n_t) * dt)
            g = f.create_group("population")
            g.create_dataset("rates", data=rates.astype(np.float32), chunks=True)
            g.create_dataset("observed", data=obs.astype(np.float32), chunks=True)
            g.create_dataset("readout", data=readout)

    write_with(path, write, need_bytes=4 * (z.size + 2 * rates.size) + readout.nbytes)  # HDF5 must not meet a full disk
    ctx.reporter.artifact("demo.h5", path, kind="hdf5")
    ctx.reporter.progress(2, 2, "done")
    return {"data": str(path), "trajectories": n_traj, "timesteps": n_t}


def _mlp(hidden: int):
    from engine.models.mlp import MLP, MLPConfig

    return MLP(MLPConfig(n_in=2, hidden=hidden, n_out=2, layers=2))


def _pairs(z: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """States and centred-difference derivatives of every trajectory, flattened."""
    dz = (z[:, 2:] - z[:, :-2]) / (2 * dt)
    return z[:, 1:-1].reshape(-1, 2), dz.reshape(-1, 2)


def _require_train_memory(z: np.ndarray, p: dict[str, Any]) -> None:
    """Refuse, in one line, an MLP or a batch that cannot fit (hidden=1e8 is 40 PB)."""
    from engine.resources import require_memory

    h, batch = p["hidden"], p["batch_size"]
    weights = h * h + 6 * h + 2
    # weights, gradients and Adam's two moments in float32; a batch's activations
    require_memory(16 * weights + 4 * 6 * h * min(batch, z.shape[0] * z.shape[1]), "the demo's MLP",
                   {"hidden": h, "batch_size": batch})
    # states and derivative pairs, float64 then float32 tensors
    require_memory(z.size * (8 * 2 + 4 * 2), "the demo's training pairs", {"trajectories": z.shape[0],
                   "timesteps": z.shape[1]})


def train(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    import torch

    from engine.device import describe
    from engine.train import TrainConfig, fit, save_model

    z, dt = load(ctx)
    _require_train_memory(z, p)
    z_train, z_test = split(z, p)
    x_tr, y_tr = (torch.as_tensor(a, dtype=torch.float32) for a in _pairs(z_train, dt))
    x_va, y_va = (torch.as_tensor(a, dtype=torch.float32) for a in _pairs(z_test, dt))
    torch.manual_seed(p["seed"])
    model = _mlp(p["hidden"])
    cfg = TrainConfig(steps=p["iterations"], lr=p["lr"], batch_size=p["batch_size"], loss="mse",
                      val_every=100, checkpoint_every=500, device=p["device"], seed=p["seed"],
                      log_every=25)
    result = fit(model, (x_tr, y_tr), (x_va, y_va), cfg, ctx.reporter, ctx.checkpoint_dir("mlp"))
    save_model(model, ctx.workdir / "mlp.pt")  # its own sizes inside: evaluate needs no `hidden`
    _, val = result.series("val_loss")
    return {"train_status": result.status, "val_mse": float(val[-1]) if len(val) else None,
            "device": result.device.get("device", "cpu"), "train_s": round(result.elapsed_s, 2),
            "device_info": describe(torch.device(result.device.get("device", "cpu")))}


def sindy(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    from engine.analyses.sindy_fit import fit_and_sweep

    z, dt = load(ctx)
    z_train, z_test = split(z, p)
    ctx.reporter.progress(0, 2, "fitting and sweeping thresholds")
    model, payload = fit_and_sweep(
        ctx, "demo: SINDy on trajectories", list(z_train), dt, degree=p["degree"],
        threshold=p["threshold"], alpha=p["alpha"], n_thresholds=p["sweep"])
    val_error = model.score(list(z_test), t=dt, metric="mse")
    for line in model.equations():
        ctx.reporter.log(line)
    ctx.reporter.progress(2, 2, "done")
    return {"equations": model.equations(), "sindy_val_mse": val_error,
            "n_terms": int(np.count_nonzero(model.coef_)),
            "knee_threshold": payload["sweep"]["threshold"][payload["sweep"]["knee"]]}


def evaluate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    import torch

    from engine.metrics import score_meta, score_table
    from engine.sindy import Sindy
    from engine.sindy.export import model_from_dict
    from engine.models.mlp import MLP
    from engine.train import load_model

    z, dt = load(ctx)
    _, z_test = split(z, p)
    horizon = min(p["horizon"], z_test.shape[1])
    truth = z_test[:, :horizon]
    ctx.reporter.progress(0, 3, "rolling out the MLP")
    mlp, _ = load_model(ctx.workdir / "mlp.pt", expect=MLP)
    mlp = mlp.double().eval()

    def f(x):
        with torch.no_grad():
            return mlp(torch.as_tensor(x)).numpy()


    mlp_roll = rk4(f, truth[:, 0], dt, horizon)
    ctx.reporter.progress(1, 3, "rolling out SINDy")
    eq = ctx.equations("demo: SINDy on trajectories")  # this job's (or its inputs'), no other's
    model = model_from_dict(eq) if eq else Sindy(degree=p["degree"], threshold=p["threshold"]).fit(list(z[: len(z) - len(z_test)]), t=dt)
    t = np.arange(horizon) * dt
    sindy_roll = np.asarray(model.simulate(truth[:, 0], t, max_wall_time=60).x)
    ctx.reporter.progress(2, 3, "scoring")
    # two trivial predictors scored on the same frames: a model must beat them to mean anything
    held = np.repeat(truth[:, :1], horizon, axis=1)  # the initial state, held
    preds = {"MLP": mlp_roll.reshape(-1, 2), "SINDy": np.asarray(sindy_roll).reshape(-1, 2),
             "zeros": np.zeros_like(truth).reshape(-1, 2), "initial state held": held.reshape(-1, 2)}
    metrics = ("mae", "rmse", "corr")
    table = score_table(preds, truth.reshape(-1, 2), metrics=metrics, cells=["x0", "x1"])
    table["role"] = ["model", "model", "baseline", "baseline"]
    ctx.save_table("demo rollout error", table, meta=score_meta(metrics))
    np.savez(ctx.workdir / "rollouts.npz", truth=truth, MLP=mlp_roll, SINDy=sindy_roll)
    ctx.reporter.progress(3, 3, "done")
    return {"mae": {k: (None if table.loc[k, "diverged"] else float(table.loc[k, "mae"]))
                    for k in table.index}}
