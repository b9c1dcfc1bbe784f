"""The demo's system and data file: the cubic oscillator, its RK4 integrator, reading demo.h5."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.analyses.base import StepContext


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


def load(ctx: StepContext) -> tuple[np.ndarray, float]:
    import h5py

    path = ctx.workdir / "demo.h5"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the 'generate' step first")
    with h5py.File(path, "r") as f:
        return f["latents"][...].astype(np.float64), float(f.attrs["dt"])


def split(z: np.ndarray, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    n_test = max(1, int(round(p["test_fraction"] * len(z))))
    return z[:-n_test], z[-n_test:]
