"""Synthetic latent linear dynamical system with Poisson spikes (seed 004).

Reproduces the Neuromatch notebook's simulation draw for draw::

    A0      = diag(.8 + .2 * rand(ncomp))          # stable diagonal dynamics
    C0      = .025 * randn(ncomp, NN)              # latents -> neurons
    y       = 2 * randn(ncomp)                     # initial state (shared by trials)
    y       = y @ A0 + randn(ntrials, ncomp)       # NT times
    rates   = relu(latents @ C0)
    spikes  = poisson(rates)

with ``np.random.RandomState(seed)``, whose stream equals the legacy global
generator after ``np.random.seed(seed)`` (pinned by tests/test_lds_gen.py), so
the default settings give exactly the seed's arrays.  Arrays are time-major,
``(steps, trials, ...)``, as in the seed.

The file written by :func:`write_h5` has datasets ``spikes``, ``rates``,
``latents``, ``A0``, ``C0`` and the settings as root attributes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from engine.atomic import write_with

#: Bumped when the draw order or file layout changes, so cached files are redone.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class LDSConfig:
    """Settings of the simulation (defaults are the seed's)."""

    seed: int = 42
    trials: int = 100
    neurons: int = 400
    steps: int = 250
    latents: int = 10

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise ValueError(f"{f.name} must be an integer, got {v!r}")
            if f.name != "seed" and v < 1:
                raise ValueError(f"{f.name} must be >= 1, got {v}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")

    def as_attrs(self) -> dict[str, int]:
        return {**{k: int(v) for k, v in asdict(self).items()}, "generator_version": GENERATOR_VERSION}


@dataclass
class LDSData:
    """One simulation.

    Attributes
    ----------
    spikes : int64 array (steps, trials, neurons)
    rates : float array (steps, trials, neurons)
    latents : float array (steps, trials, latents)
    A0 : float array (latents, latents)
        Diagonal dynamics, ``y_{t+1} = y_t @ A0 + noise``.
    C0 : float array (latents, neurons)
    config : LDSConfig
    """

    spikes: np.ndarray
    rates: np.ndarray
    latents: np.ndarray
    A0: np.ndarray
    C0: np.ndarray
    config: LDSConfig


def simulate(config: LDSConfig | None = None) -> LDSData:
    """Draw one LDS-Poisson data set; same draws in the same order as the seed."""
    cfg = config or LDSConfig()
    rs = np.random.RandomState(cfg.seed)
    ncomp, nn, nt, ntr = cfg.latents, cfg.neurons, cfg.steps, cfg.trials
    A0 = np.diag(0.8 + 0.2 * rs.rand(ncomp))
    C0 = 0.025 * rs.randn(ncomp, nn)
    y = 2 * rs.randn(ncomp)
    latents = np.zeros((nt, ntr, ncomp))
    for t in range(nt):
        y = y @ A0 + rs.randn(ntr, ncomp)
        latents[t] = y
    rates = np.maximum(0, latents @ C0)
    spikes = rs.poisson(rates)
    return LDSData(spikes=spikes, rates=rates, latents=latents, A0=A0, C0=C0, config=cfg)


def write_h5(path: str | Path, data: LDSData) -> Path:
    """Write ``data`` to HDF5 atomically (temp file + rename)."""
    import h5py

    def _write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            # Counts are small: int32 halves the file; values are unchanged.
            f.create_dataset("spikes", data=data.spikes.astype(np.int32), compression="gzip", compression_opts=1)
            f.create_dataset("rates", data=data.rates, compression="gzip", compression_opts=1)
            f.create_dataset("latents", data=data.latents)
            f.create_dataset("A0", data=data.A0)
            f.create_dataset("C0", data=data.C0)
            f.attrs.update(data.config.as_attrs())
            f.attrs["layout"] = "time, trial, neuron"

    return write_with(path, _write, need_bytes=4 * data.spikes.size + data.rates.nbytes + data.latents.nbytes)  # HDF5 must not meet a full disk


def read_settings(path: str | Path) -> dict[str, int] | None:
    """Settings stored in an LDS file, or None when the file is missing or not one."""
    import h5py

    path = Path(path)
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as f:
            keys = list(LDSConfig().as_attrs())
            if not all(k in f.attrs for k in keys):
                return None
            return {k: int(f.attrs[k]) for k in keys}
    except OSError:
        return None


def read_h5(path: str | Path) -> LDSData:
    """Load a file written by :func:`write_h5` (whole arrays; they are small)."""
    import h5py

    with h5py.File(path, "r") as f:
        missing = [k for k in ("spikes", "rates", "latents", "A0", "C0") if k not in f]
        if missing:
            raise ValueError(f"{path} is not an LDS file (missing {', '.join(missing)})")
        cfg = LDSConfig(**{k: int(f.attrs[k]) for k in ("seed", "trials", "neurons", "steps", "latents")})
        return LDSData(
            spikes=f["spikes"][()].astype(np.int64),
            rates=f["rates"][()],
            latents=f["latents"][()],
            A0=f["A0"][()],
            C0=f["C0"][()],
            config=cfg,
        )


def generate(path: str | Path, config: LDSConfig | None = None, *, overwrite: bool = False) -> tuple[Path, bool]:
    """Simulate and write to ``path`` unless a file with the same settings is there.

    Returns
    -------
    (path, written) : written is False when an up-to-date file was kept.
    """
    cfg = config or LDSConfig()
    path = Path(path)
    if not overwrite and read_settings(path) == cfg.as_attrs():
        return path, False
    write_h5(path, simulate(cfg))
    return path, True
