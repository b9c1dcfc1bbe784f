"""The demo analysis: small, real, and fast (about 20 s on a laptop CPU).

A damped cubic oscillator (the classic SINDy example,
x' = -0.1 x^3 + 2 y^3, y' = -2 x^3 - 0.1 y^3) is simulated from random initial
states.  ``train`` fits an MLP vector field to it through the shared training
loop; ``sindy`` distils sparse equations from the same trajectories; ``evaluate``
rolls both models out on held-out trajectories and scores them against the truth.
Every pane of the workbench has something to show after one run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.analyses.base import Analysis, Param, Step, StepContext
from engine.views import View

TRUE_COEF = {"x0": {"x0^3": -0.1, "x1^3": 2.0}, "x1": {"x0^3": -2.0, "x1^3": -0.1}}


def cubic_oscillator(z: np.ndarray) -> np.ndarray:
    x, y = z[..., 0], z[..., 1]
    return np.stack([-0.1 * x**3 + 2 * y**3, -2 * x**3 - 0.1 * y**3], axis=-1)


def rk4(f, z0: np.ndarray, dt: float, n: int) -> np.ndarray:
    """Batched fixed-step RK4 for the ground truth: z0 (B, d) -> (B, n, d)."""
    out = np.empty((z0.shape[0], n, z0.shape[1]))
    z = z0.astype(float)
    for i in range(n):
        out[:, i] = z
        k1 = f(z)
        k2 = f(z + dt / 2 * k1)
        k3 = f(z + dt / 2 * k2)
        k4 = f(z + dt * k3)
        z = z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return out


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


def _load(ctx: StepContext) -> tuple[np.ndarray, float]:
    import h5py

    path = ctx.workdir / "demo.h5"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the 'generate' step first")
    with h5py.File(path, "r") as f:
        return f["latents"][...].astype(np.float64), float(f.attrs["dt"])


def _split(z: np.ndarray, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    n_test = max(1, int(round(p["test_fraction"] * len(z))))
    return z[:-n_test], z[-n_test:]


ANALYSIS = Analysis(
    name="demo",
    title="Demo: cubic oscillator — MLP vs SINDy",
    help="A 20-second end-to-end run that exercises every pane.",
    steps=(
        Step("generate", "engine.analyses.demo:generate", "simulate trajectories into demo.h5",
             {"seed": Param(0, "random seed", 0, 2**32 - 1),
              "trajectories": Param(48, "simulated trajectories (test_fraction of them held out)", 2, 10**7),
              "timesteps": Param(400, "time steps per trajectory", 8, 10**8),
              "dt": Param(0.01, "time step of the simulation (s)", 1e-6, 1.0),
              "neurons": Param(12, "recorded neurons (mixtures of the two latents)", 1, 10**5),
              "noise": Param(0.02, "observation noise (std)", 0.0, 1e3),
              "test_fraction": Param(0.25, "share of trajectories held out for scoring", 0.05, 0.9)}),
        Step("train", "engine.analyses.demo_steps:train", "fit an MLP vector field (shared train loop)",
             {"hidden": Param(64, "hidden units per layer of the MLP", 1, 65536),
              "iterations": Param(1500, "optimiser steps", 1, 10**8),
              "lr": Param(3e-3, "learning rate", 1e-8, 10.0),
              "batch_size": Param(256, "samples per step", 1, 10**7),
              "device": Param("auto", "auto, cpu, cuda, cuda:N or mps")}),
        Step("sindy", "engine.analyses.demo_steps:sindy", "distil sparse equations",
             {"degree": Param(3, "polynomial degree of the library", 1),
              "threshold": Param(0.05, "STLSQ threshold", 0.0, 1e6),
              "alpha": Param(0.0, "ridge penalty", 0.0, 1e6),
              "sweep": Param(48, "thresholds in the sweep", 1, 10_000)}),
        Step("evaluate", "engine.analyses.demo_steps:evaluate", "roll out both models, MAE table",
             {"horizon": Param(200, "rollout steps scored", 2, 10**8)}),
    ),
    views=(View("rollouts", "True vs MLP and SINDy rollouts", "engine.analyses.demo_views:rollouts",
                index="trajectory"),),
)
