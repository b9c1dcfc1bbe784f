"""Simulator of the seed-001 signalling network (PDE_N4) with an external input field.

The network (seed 001, Allier et al.)::

    dx_i/dt = -x_i/tau_i + s_i tanh(x_i)
              + g * Omega_i(t) * sum_j W_ij (tanh(x_j/gamma_j) - theta_j x_j)   [input="modulate"]
              + I_i(t)                                                         [input="additive"]
              + eta_i(t)

Each neuron belongs to one of ``len(TYPES)`` cell types with its own
``(tau, s, gamma, theta)``.  The first ``grid**2`` neurons sit on a ``grid x
grid`` lattice in the unit square and receive the external input, a moving
pattern (two drifting gratings and a travelling Gaussian blob); the others have
``Omega = 1`` / ``I = 0``.  ``input="modulate"`` is seed 001 (Omega gates the
synaptic drive; its space-time mean is 1 by construction); ``input="additive"``
is the visual-stimulus setting of seed 003 (the stimulus adds to the drive).

Noise: Euler-Maruyama with ``eta = noise * dW/dt`` (``noise`` is sigma of
seed 003's ``sigma * xi``).  Runs are batched in torch: several independent
runs (random initial states) share one W and step together, on the GPU when
there is one.

The default types all have ``psi'(0) = 1/gamma - theta = 1``.  That is a
convention, not physics: the scale of the edge function and of W is
degenerate (``W psi = (W/c)(c psi)``), and the analyses compare the gauge-fixed
coupling ``<Omega_i> W_ij psi_j'(0)``, which with these types *is* the
simulator's W (see :func:`engine.analyses.connectome.steps.gauge_fixed_W`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import write_with
from engine.data.errors import DataError
from engine.lattice import grid_positions

GENERATOR_VERSION = 1

#: (tau, s, gamma, theta) per cell type; every psi has slope 1 at 0 (see module docstring).
TYPES = np.array(
    [
        [1.0, 0.5, 1.0, 0.0],      # psi = tanh(x)
        [0.5, 1.0, 0.5, 1.0],      # psi = tanh(2x) - x
        [1.0, 1.5, 2 / 3, 0.5],    # psi = tanh(1.5x) - x/2; s*tau > 1: bistable alone
        [0.25, 0.5, 0.8, 0.25],    # psi = tanh(1.25x) - x/4; fast
    ]
)


@dataclass(frozen=True)
class PDEN4Config:
    """Settings of one simulation.

    Parameters
    ----------
    n_neurons : int
        Network size (2048 in the seed).
    grid : int
        The first ``grid**2`` neurons receive the input, on a ``grid x grid``
        lattice (32 in the seed).
    n_frames : int
        Stored frames per run (after ``burn_in``).
    n_runs : int
        Independent runs (initial states) simulated side by side.
    dt : float
        Euler step; every step is stored.
    gain : float
        ``g``: overall synaptic gain.
    connectivity : float
        Fraction of non-zero ``W_ij`` (1 = dense); the non-zeros are
        ``N(0, 1/(connectivity * n))`` so the spectral radius stays ~1.
    input : {"modulate", "additive"}
    input_amplitude : float
        Peak-to-mean amplitude of the pattern (Omega stays positive for < 1).
    noise : float
        sigma of the process noise.
    measurement_noise : float
        sigma of white noise added to the stored activity ``x`` only (a
        recording's noise; ``dxdt`` and the dynamics are unaffected).
    """

    n_neurons: int = 256
    grid: int = 12
    n_frames: int = 4000
    n_runs: int = 2
    dt: float = 0.05
    gain: float = 2.0
    connectivity: float = 1.0
    input: str = "modulate"
    input_amplitude: float = 0.5
    noise: float = 0.0
    burn_in: int = 100
    seed: int = 0
    measurement_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.n_neurons < 2:
            raise ValueError(f"n_neurons must be >= 2, got {self.n_neurons}")
        if self.grid < 0 or self.grid**2 > self.n_neurons:
            raise ValueError(f"grid**2 = {self.grid**2} input neurons do not fit in n_neurons = {self.n_neurons}")
        for name in ("n_frames", "n_runs"):
            if getattr(self, name) < 2 if name == "n_frames" else getattr(self, name) < 1:
                raise ValueError(f"{name} is too small: {getattr(self, name)}")
        if not self.dt > 0:
            raise ValueError(f"dt must be > 0, got {self.dt}")
        if not 0 < self.connectivity <= 1:
            raise ValueError(f"connectivity must be in (0, 1], got {self.connectivity}")
        if self.input not in ("modulate", "additive"):
            raise ValueError(f"input must be 'modulate' or 'additive', got {self.input!r}")
        if self.noise < 0 or self.burn_in < 0 or self.measurement_noise < 0:
            raise ValueError("noise, measurement_noise and burn_in must be >= 0")

    @property
    def n_input(self) -> int:
        return self.grid**2

    def as_attrs(self) -> dict[str, Any]:
        return {**asdict(self), "generator_version": GENERATOR_VERSION}


@dataclass
class PDEN4Data:
    """One simulation (all arrays numpy).

    Attributes
    ----------
    x : (n_runs, n_frames, n) float32 activity
    dxdt : (n_runs, n_frames, n) float32 noise-free right-hand side at each frame
    field : (n_frames, n_input) float32 Omega (modulate) or I (additive) of the input neurons
    t : (n_frames,) times
    W : (n, n) true connectivity (zero diagonal)
    types : (n,) int cell type
    params : (n_types, 4) (tau, s, gamma, theta)
    pos : (n_input, 2) grid positions in [0, 1]^2
    config : PDEN4Config
    """

    x: np.ndarray
    dxdt: np.ndarray
    field: np.ndarray
    t: np.ndarray
    W: np.ndarray
    types: np.ndarray
    params: np.ndarray
    pos: np.ndarray
    config: PDEN4Config


def input_pattern(pos: np.ndarray, t: np.ndarray, t_total: float) -> np.ndarray:
    """Zero-mean moving pattern in [-1, 1] at positions ``pos`` (P, 2) and times ``t`` (T,) -> (T, P).

    Two drifting gratings (different orientation and speed) and a Gaussian blob
    travelling on a circle; ``t_total`` sets the speeds so that a run sees a few
    full cycles whatever its length (and the SIREN has a fixed bandwidth to learn).
    """
    tau = np.asarray(t, float)[:, None] / max(t_total, 1e-12)
    x, y = pos[None, :, 0], pos[None, :, 1]
    g1 = np.sin(2 * np.pi * (1.0 * x + 0.5 * y - 3.0 * tau))
    g2 = np.sin(2 * np.pi * (-0.5 * x + 1.0 * y - 2.0 * tau) + 1.0)
    cx = 0.5 + 0.3 * np.cos(2 * np.pi * 2.0 * tau)
    cy = 0.5 + 0.3 * np.sin(2 * np.pi * 2.0 * tau)
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 0.15**2))
    out = 0.35 * g1 + 0.35 * g2 + 0.6 * (blob - 0.2)
    return np.clip(out, -1.0, 1.0)


def psi(x, gamma, theta, xp=np):
    """True edge function ``tanh(x/gamma) - theta x`` (numpy or torch)."""
    return xp.tanh(x / gamma) - theta * x


def phi(x, tau, s, xp=np):
    """True update function ``-x/tau + s tanh(x)`` (numpy or torch)."""
    return -x / tau + s * xp.tanh(x)


def make_network(cfg: PDEN4Config, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cell types (balanced, shuffled) and W (zero diagonal, optional sparsity)."""
    n = cfg.n_neurons
    types = rng.permutation(np.arange(n) % len(TYPES))
    W = rng.normal(0.0, 1.0 / np.sqrt(cfg.connectivity * n), (n, n))
    if cfg.connectivity < 1:
        W *= rng.random((n, n)) < cfg.connectivity
    np.fill_diagonal(W, 0.0)
    return types, W


def simulate(cfg: PDEN4Config, device: str = "auto", run_seed: int | None = None) -> PDEN4Data:
    """Run the network; deterministic in ``cfg.seed`` (the draw happens in numpy).

    ``run_seed`` keeps the network (W, types, input) of ``cfg.seed`` but draws
    new initial states and noise from ``(cfg.seed, run_seed)``: fresh runs of
    the same network, for held-out scoring.
    """
    import torch

    from engine.device import pick_device

    dev = pick_device(device)
    rng = np.random.default_rng(cfg.seed)
    types, W = make_network(cfg, rng)
    n, n_in = cfg.n_neurons, cfg.n_input
    pos = grid_positions(cfg.grid)
    total = cfg.burn_in + cfg.n_frames
    t_all = (np.arange(total) - cfg.burn_in) * cfg.dt
    t_span = cfg.n_frames * cfg.dt
    pattern = input_pattern(pos, t_all, t_span) if n_in else np.zeros((total, 0))
    if cfg.input == "modulate":
        field = 1.0 + cfg.input_amplitude * pattern
    else:
        field = cfg.input_amplitude * pattern
    if run_seed is not None:
        rng = np.random.default_rng([cfg.seed, 1 + int(run_seed)])
    x0 = rng.normal(0.0, 1.0, (cfg.n_runs, n))
    noise = rng.standard_normal((total, cfg.n_runs, n)).astype(np.float32) if cfg.noise > 0 else None

    f64 = torch.float32  # float32: 2x faster, far below the noise and Euler error
    p = torch.as_tensor(TYPES[types], dtype=f64, device=dev)
    tau, s, gamma, theta = p.unbind(1)
    Wt = torch.as_tensor(W, dtype=f64, device=dev)
    fld = torch.as_tensor(field, dtype=f64, device=dev)
    x = torch.as_tensor(x0, dtype=f64, device=dev)
    xs = torch.empty((cfg.n_runs, cfg.n_frames, n), dtype=torch.float32, device=dev)
    ds = torch.empty_like(xs)
    sq = float(np.sqrt(cfg.dt)) * cfg.noise
    for k in range(total):
        drive = psi(x, gamma, theta, torch) @ Wt.T * cfg.gain
        f = phi(x, tau, s, torch)
        if cfg.input == "modulate":
            drive[:, :n_in] = drive[:, :n_in] * fld[k]
        else:
            f[:, :n_in] = f[:, :n_in] + fld[k]
        dx = f + drive
        if k >= cfg.burn_in:
            xs[:, k - cfg.burn_in] = x.float()
            ds[:, k - cfg.burn_in] = dx.float()
        x = x + cfg.dt * dx
        if noise is not None:
            x = x + sq * torch.as_tensor(noise[k], dtype=f64, device=dev)
        if not torch.isfinite(x).all():
            raise DataError(f"simulation diverged at step {k}: lower gain ({cfg.gain}) or dt ({cfg.dt})")
    x_out = xs.cpu().numpy()
    if cfg.measurement_noise > 0:  # drawn after the dynamics: the runs are the same with or without it
        x_out = x_out + cfg.measurement_noise * rng.standard_normal(x_out.shape).astype(np.float32)
    return PDEN4Data(x=x_out, dxdt=ds.cpu().numpy(), field=field[cfg.burn_in:].astype(np.float32),
                     t=t_all[cfg.burn_in:], W=W, types=types, params=TYPES.copy(), pos=pos, config=cfg)


def write_h5(data: PDEN4Data, path: str | Path) -> Path:
    """Ground truth to HDF5 (``x``, ``dxdt``, ``field``, ``t``, ``W``, ``types``, ``params``, ``pos``)."""
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            for k, v in data.config.as_attrs().items():
                f.attrs[k] = v
            f.attrs["model"] = "PDE_N4: dx/dt = -x/tau + s tanh(x) + g Omega sum_j W_ij (tanh(x_j/gamma_j) - theta_j x_j)"
            f.create_dataset("x", data=data.x, chunks=True, compression="gzip")
            f.create_dataset("dxdt", data=data.dxdt, chunks=True, compression="gzip")
            f.create_dataset("field", data=data.field, chunks=True, compression="gzip")
            f.create_dataset("t", data=data.t)
            f.create_dataset("W", data=data.W)
            f.create_dataset("types", data=data.types)
            d = f.create_dataset("params", data=data.params)
            d.attrs["columns"] = "tau,s,gamma,theta"
            f.create_dataset("pos", data=data.pos)

    write_with(Path(path), write)
    return Path(path)


def read_h5(path: str | Path) -> PDEN4Data:
    """Read a file written by :func:`write_h5`; :class:`DataError` on a missing or foreign file."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file (run the 'generate' step first)")
    try:
        with h5py.File(path, "r") as f:
            keys = {k for k in PDEN4Config.__dataclass_fields__}
            cfg = PDEN4Config(**{k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items() if k in keys})
            arrays = {k: f[k][...] for k in ("x", "dxdt", "field", "t", "W", "types", "params", "pos")}
    except (OSError, KeyError) as exc:
        raise DataError(f"{path}: not a PDE_N4 simulation file ({str(exc).splitlines()[0]})") from None
    if isinstance(cfg.input, bytes):
        cfg = PDEN4Config(**{**asdict(cfg), "input": cfg.input.decode()})
    return PDEN4Data(config=cfg, **arrays)
