"""Allen Brain Observatory (Neuropixels) natural-scene tables, and a synthetic V1 that writes them.

Seed 002 works from three AllenSDK tables of one session:

``units``
    one row per sorted unit (``unit_id`` index, ``ecephys_structure_acronym``...);
``presentationwise_spike_times``
    one row per spike: ``spike_time``, ``stimulus_presentation_id``, ``unit_id``,
    ``time_since_stimulus_presentation_onset`` (``session.presentationwise_spike_times``);
``stimulus_presentations``
    ``session.get_stimulus_table('natural_scenes')``: ``stimulus_presentation_id``,
    ``start_time``, ``stop_time``, ``frame`` (image index, -1 = blank), ...

and of the 118 natural-scene images (``natural_scenes.npy``, images x height x
width, uint8 or floats in [0, 1]).  :func:`load_tables` reads them from a folder
of CSV or parquet files as AllenSDK's ``DataFrame.to_csv``/``to_parquet`` writes
them; a plain ``spike_times`` table (``unit_id``, ``spike_time``) works in place
of the presentationwise one, and :func:`read_nwb` reads an Allen NWB file with
h5py.  :func:`spike_counts` counts spikes per presentation in a window after
onset, :func:`trial_responses` arranges them as (repeats, images, units).

:func:`generate` writes the same files from a population of model V1 simple cells
with known Gabor receptive fields (linear filter -> softplus -> Poisson, with an
optional gamma-distributed trial gain for extra-Poisson noise) shown 1/f-noise
images, plus ``ground_truth.npz`` with the receptive fields, the true rates and
the oracle correlation the noise level implies (:func:`expected_oracle`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.atomic import save_npz, write_json, write_with
from engine.data.errors import DataError

#: Bumped when the draw order or the file layout changes.
GENERATOR_VERSION = 1

PRESENTATIONS = "stimulus_presentations"
SPIKES = "presentationwise_spike_times"
PLAIN_SPIKES = "spike_times"
UNITS = "units"
IMAGES = "natural_scenes.npy"
TRUTH = "ground_truth.npz"

__all__ = [
    "AllenTables", "SyntheticV1Config", "load_tables", "read_nwb", "spike_counts", "trial_responses",
    "mean_responses", "load_images", "one_over_f_images", "gabor", "expected_oracle", "generate",
]


@dataclass
class AllenTables:
    """The tables of one session restricted to natural scenes.

    Attributes
    ----------
    units : DataFrame
        Indexed by ``unit_id``.
    spikes : DataFrame
        Columns ``unit_id`` and ``spike_time`` (seconds), one row per spike.
    presentations : DataFrame
        Indexed by ``stimulus_presentation_id``; columns ``start_time``,
        ``stop_time``, ``frame`` (int, -1 = blank), sorted by start time.
    images : ndarray (n_images, height, width) or None
        Float images in [0, 1] when ``natural_scenes.npy`` is present.
    """

    units: pd.DataFrame
    spikes: pd.DataFrame
    presentations: pd.DataFrame
    images: np.ndarray | None = None


# --------------------------------------------------------------------------- reading


def _find(folder: Path, stem: str) -> Path | None:
    for ext in (".parquet", ".csv", ".csv.gz"):
        path = folder / f"{stem}{ext}"
        if path.exists():
            return path
    return None


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for a bad file
        raise DataError(f"{path}: cannot read table ({type(exc).__name__}: {exc})") from None


def _need(df: pd.DataFrame, cols: tuple[str, ...], path: Path | str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(map(str, df.columns))})")


def _clean_presentations(pres: pd.DataFrame, where) -> pd.DataFrame:
    if "stimulus_presentation_id" not in pres.columns:
        pres = pres.reset_index()
        if "stimulus_presentation_id" not in pres.columns:
            pres = pres.rename(columns={pres.columns[0]: "stimulus_presentation_id"})
    _need(pres, ("stimulus_presentation_id", "start_time", "stop_time", "frame"), where)
    if "stimulus_name" in pres.columns and (pres["stimulus_name"] == "natural_scenes").any():
        pres = pres[pres["stimulus_name"] == "natural_scenes"]
    frame = pd.to_numeric(pres["frame"], errors="coerce")
    if frame.isna().any():
        raise DataError(f"{where}: 'frame' holds non-numeric values")
    pres = pres.assign(frame=frame.astype(int))
    if not np.all(np.isfinite(pres[["start_time", "stop_time"]].to_numpy(float))):
        raise DataError(f"{where}: start_time/stop_time hold NaN or inf")
    if (pres["stop_time"] < pres["start_time"]).any():
        raise DataError(f"{where}: a presentation stops before it starts")
    return pres.set_index("stimulus_presentation_id").sort_values("start_time")


def load_images(path: str | Path) -> np.ndarray:
    """Natural-scene templates as float32 in [0, 1], shape (images, height, width)."""
    path = Path(path)
    try:
        arr = np.load(path)
    except Exception as exc:
        raise DataError(f"{path}: cannot read images ({type(exc).__name__})") from None
    if arr.ndim != 3:
        raise DataError(f"{path}: images must be (n, height, width), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: images hold NaN or inf")
    return arr


def load_tables(folder: str | Path) -> AllenTables:
    """Read units, spikes, natural-scene presentations (and images) from ``folder``.

    Raises
    ------
    DataError
        A table is missing, unreadable or lacks a column the analysis needs.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of AllenSDK tables")
    pres_path = _find(folder, PRESENTATIONS)
    if pres_path is None:
        raise DataError(f"{folder}: no {PRESENTATIONS}.csv/.parquet")
    pres = _clean_presentations(_read(pres_path), pres_path)
    spk_path = _find(folder, SPIKES) or _find(folder, PLAIN_SPIKES)
    if spk_path is None:
        raise DataError(f"{folder}: no {SPIKES}.csv or {PLAIN_SPIKES}.csv (.parquet)")
    spikes = _read(spk_path)
    if "spike_time" not in spikes.columns and spikes.index.name == "spike_time":
        spikes = spikes.reset_index()
    _need(spikes, ("unit_id", "spike_time"), spk_path)
    spikes = spikes[["unit_id", "spike_time"]]
    unit_path = _find(folder, UNITS)
    if unit_path is not None:
        units = _read(unit_path)
        if "unit_id" not in units.columns:
            units = units.rename(columns={units.columns[0]: "unit_id"})
        units = units.set_index("unit_id")
    else:
        units = pd.DataFrame(index=pd.Index(np.unique(spikes["unit_id"]), name="unit_id"))
    images = load_images(folder / IMAGES) if (folder / IMAGES).exists() else None
    if images is not None and pres["frame"].max() >= len(images):
        raise DataError(f"{folder}: frame {pres['frame'].max()} but only {len(images)} images")
    return AllenTables(units=units, spikes=spikes, presentations=pres, images=images)


def read_nwb(path: str | Path, stimulus: str = "natural_scenes") -> AllenTables:
    """Read an Allen ecephys NWB file (HDF5) with h5py: units and one stimulus table."""
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable NWB/HDF5 file ({exc})") from None
    with f:
        if "units" not in f or "spike_times" not in f["units"]:
            raise DataError(f"{path}: no units/spike_times")
        u = f["units"]
        times = u["spike_times"][...]
        index = u["spike_times_index"][...] if "spike_times_index" in u else np.array([len(times)])
        ids = u["id"][...] if "id" in u else np.arange(len(index))
        counts = np.diff(np.concatenate([[0], index]))
        spikes = pd.DataFrame({"unit_id": np.repeat(ids, counts), "spike_time": times})
        key = f"intervals/{stimulus}_presentations"
        if key not in f:
            raise DataError(f"{path}: no {key}")
        g = f[key]
        cols = {c: g[c][...] for c in ("start_time", "stop_time", "frame") if c in g}
        cols["stimulus_presentation_id"] = g["id"][...] if "id" in g else np.arange(len(cols["start_time"]))
        pres = _clean_presentations(pd.DataFrame(cols), f"{path}:{key}")
        units = pd.DataFrame(index=pd.Index(ids, name="unit_id"))
    return AllenTables(units=units, spikes=spikes, presentations=pres)


# --------------------------------------------------------------------------- counting


def spike_counts(tables: AllenTables, window: tuple[float, float] = (0.0, 0.25)) -> pd.DataFrame:
    """Spike counts per presentation (rows) and unit (columns) in ``[onset + t0, onset + t1)``.

    One ``searchsorted`` per unit over its sorted spike times: O(spikes log spikes).
    """
    t0, t1 = float(window[0]), float(window[1])
    if not t1 > t0:
        raise ValueError(f"window must be (start, stop) with stop > start, got {window}")
    pres = tables.presentations
    starts = pres["start_time"].to_numpy(float) + t0
    stops = pres["start_time"].to_numpy(float) + t1
    unit_ids = list(tables.units.index)
    out = np.zeros((len(pres), len(unit_ids)), dtype=np.int32)
    grouped = dict(tuple(tables.spikes.groupby("unit_id")["spike_time"]))
    for j, uid in enumerate(unit_ids):
        if uid not in grouped:
            continue
        t = np.sort(grouped[uid].to_numpy(float))
        out[:, j] = np.searchsorted(t, stops, side="left") - np.searchsorted(t, starts, side="left")
    return pd.DataFrame(out, index=pres.index, columns=pd.Index(unit_ids, name="unit_id"))


def trial_responses(counts: pd.DataFrame, frames, repeats: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Arrange counts as (repeats, images, units) for reliability analyses.

    Blank presentations (frame < 0) are dropped; each image keeps its first
    ``repeats`` presentations in time order (default: the fewest any image has).

    Returns
    -------
    trials : ndarray (repeats, images, units)
    image_ids : ndarray (images,)
    """
    frames = np.asarray(frames, dtype=int)
    x = counts.to_numpy(float)
    if len(frames) != len(x):
        raise ValueError(f"{len(frames)} frames for {len(x)} presentations")
    keep = frames >= 0
    frames, x = frames[keep], x[keep]
    image_ids = np.unique(frames)
    if image_ids.size == 0:
        raise DataError("no natural-scene presentations (all frames are blank)")
    per = [np.flatnonzero(frames == i) for i in image_ids]
    fewest = min(len(p) for p in per)
    r = fewest if repeats is None else int(repeats)
    if r < 2 or r > fewest:
        raise DataError(f"need 2 <= repeats <= {fewest} (the fewest presentations of any image), got {r}")
    trials = np.stack([x[p[:r]] for p in per], axis=1)
    return trials, image_ids


def mean_responses(counts: pd.DataFrame, frames) -> pd.DataFrame:
    """Mean count per image (rows: image id, columns: units), over all presentations."""
    frames = np.asarray(frames, dtype=int)
    df = counts.assign(_frame=frames)
    df = df[df["_frame"] >= 0]
    return df.groupby("_frame").mean().rename_axis("image_id")


# --------------------------------------------------------------------------- synthetic V1


@dataclass(frozen=True)
class SyntheticV1Config:
    """Settings of the synthetic population (defaults: seed 002's 118 images, CPU-sized)."""

    seed: int = 0
    n_neurons: int = 50
    n_images: int = 118
    repeats: int = 10
    size: int = 32
    noise: float = 0.3  # trial-gain CV on top of Poisson noise (0 = pure Poisson)
    base_rate: float = 0.5  # counts per presentation at zero drive
    peak_rate: float = 6.0  # typical counts per presentation at 2 sd of drive
    duration: float = 0.25  # seconds per presentation (Allen natural scenes)
    t_start: float = 5909.794447


def one_over_f_images(n: int, size: int, rng: np.random.Generator, exponent: float = 1.0) -> np.ndarray:
    """``n`` images with a 1/f^exponent amplitude spectrum, mean 0.5, sd 0.2, clipped to [0, 1]."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    amp = 1.0 / f**exponent
    amp[0, 0] = 0.0
    spec = (rng.normal(size=(n, size, size // 2 + 1)) + 1j * rng.normal(size=(n, size, size // 2 + 1))) * amp
    img = np.fft.irfft2(spec, s=(size, size))
    img = (img - img.mean(axis=(1, 2), keepdims=True)) / img.std(axis=(1, 2), keepdims=True)
    return np.clip(0.5 + 0.2 * img, 0.0, 1.0).astype(np.float32)


def gabor(size: int | tuple[int, int], x0: float, y0: float, theta: float, wavelength: float,
          phase: float, sigma: float, aspect: float = 1.0) -> np.ndarray:
    """A Gabor patch (unnormalised) centred at pixel (x0, y0); ``theta`` in radians."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    y, x = np.mgrid[0:h, 0:w].astype(float)
    xr = (x - x0) * np.cos(theta) + (y - y0) * np.sin(theta)
    yr = -(x - x0) * np.sin(theta) + (y - y0) * np.cos(theta)
    env = np.exp(-(xr**2 + (aspect * yr) ** 2) / (2 * sigma**2))
    return env * np.cos(2 * np.pi * xr / wavelength + phase)


def expected_oracle(rates: np.ndarray, noise: float, repeats: int) -> np.ndarray:
    """Oracle correlation implied by true mean counts ``rates`` (images, neurons).

    With signal variance ``s2`` across images and mean trial variance
    ``n2 = mean(rate + noise^2 rate^2)`` (Poisson with a gamma trial gain), a trial
    and the mean of the other ``repeats - 1`` trials correlate as
    ``s2 / sqrt((s2 + n2) (s2 + n2 / (repeats - 1)))``.
    """
    s2 = rates.var(axis=0)
    n2 = (rates + noise**2 * rates**2).mean(axis=0)
    return s2 / np.sqrt((s2 + n2) * (s2 + n2 / (repeats - 1)))


def _population(cfg: SyntheticV1Config, rng: np.random.Generator):
    n, s = cfg.n_neurons, cfg.size
    c = (s - 1) / 2
    params = {
        "x0": c + rng.uniform(-s / 8, s / 8, n),
        "y0": c + rng.uniform(-s / 8, s / 8, n),
        "theta": rng.uniform(0, np.pi, n),
        "wavelength": rng.uniform(s / 4, s / 2.5, n),
        "phase": rng.uniform(0, 2 * np.pi, n),
    }
    params["sigma"] = params["wavelength"] * rng.uniform(0.3, 0.45, n)
    params["gain"] = rng.uniform(0.6, 1.4, n)
    rfs = np.stack([gabor(s, *(params[k][i] for k in ("x0", "y0", "theta", "wavelength", "phase", "sigma")))
                    for i in range(n)])
    rfs /= np.linalg.norm(rfs.reshape(n, -1), axis=1)[:, None, None]
    return rfs.astype(np.float32), params


def true_rates(images: np.ndarray, rfs: np.ndarray, gain: np.ndarray, cfg: SyntheticV1Config,
               scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean count per (image, neuron): ``base + a * softplus(2 z - 1)``, z the drive in sd units.

    ``scale`` (the drive's sd per neuron) is computed from ``images`` when not given,
    so that the same neurons can be evaluated on any image (an MEI, a Gabor).
    """
    drive = np.einsum("ihw,nhw->in", images - 0.5, rfs)
    if scale is None:
        scale = drive.std(axis=0) + 1e-12
    z = drive / scale
    a = gain * (cfg.peak_rate - cfg.base_rate) / np.logaddexp(0, 3.0)
    return cfg.base_rate + a * np.logaddexp(0, 2 * z - 1), scale


def generate(folder: str | Path, cfg: SyntheticV1Config = SyntheticV1Config()) -> dict:
    """Write AllenSDK-style tables + images + ground truth for a synthetic V1 population.

    Files: ``units.csv``, ``stimulus_presentations.csv``,
    ``presentationwise_spike_times.csv``, ``natural_scenes.npy`` (uint8) and
    ``ground_truth.npz`` (``rfs``, ``rates``, ``drive_scale``, ``expected_oracle``,
    Gabor parameters).  Returns a summary dict.
    """
    if cfg.repeats < 2 or cfg.n_images < 2 or cfg.n_neurons < 1 or cfg.size < 8:
        raise ValueError("need repeats >= 2, n_images >= 2, n_neurons >= 1 and size >= 8")
    if cfg.noise < 0:
        raise ValueError(f"noise must be >= 0, got {cfg.noise}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    images = one_over_f_images(cfg.n_images, cfg.size, rng)
    images_u8 = np.round(images * 255).astype(np.uint8)
    images = images_u8.astype(np.float32) / 255  # what a reader sees
    rfs, params = _population(cfg, rng)
    rates, scale = true_rates(images, rfs, params["gain"], cfg)
    unit_ids = 951092000 + np.arange(cfg.n_neurons) * 7

    # presentation order: the image set shuffled once per repeat block, back to back
    frames = np.concatenate([rng.permutation(cfg.n_images) for _ in range(cfg.repeats)])
    n_pres = len(frames)
    start = cfg.t_start + np.arange(n_pres) * cfg.duration
    pres = pd.DataFrame({
        "stimulus_presentation_id": 51355 + np.arange(n_pres), "stimulus_block": 9.0,
        "start_time": start, "stop_time": start + cfg.duration, "frame": frames.astype(float),
        "stimulus_name": "natural_scenes", "duration": cfg.duration,
        "stimulus_condition_id": 4908 + frames,
    })
    lam = rates[frames]  # (presentations, neurons)
    if cfg.noise > 0:
        k = 1.0 / cfg.noise**2
        lam = lam * rng.gamma(k, 1.0 / k, size=lam.shape)
    counts = rng.poisson(lam)
    pi, ni = np.nonzero(counts)
    reps = counts[pi, ni]
    pi, ni = np.repeat(pi, reps), np.repeat(ni, reps)
    offset = rng.uniform(0, cfg.duration, size=pi.size)
    spikes = pd.DataFrame({
        "spike_time": start[pi] + offset, "stimulus_presentation_id": pres["stimulus_presentation_id"].to_numpy()[pi],
        "unit_id": unit_ids[ni], "time_since_stimulus_presentation_onset": offset,
    }).sort_values("spike_time")
    units = pd.DataFrame({"unit_id": unit_ids, "ecephys_structure_acronym": "VISp",
                          "firing_rate": rates.mean(axis=0) / cfg.duration})

    write_with(folder / f"{UNITS}.csv", lambda t: units.to_csv(t, index=False))
    write_with(folder / f"{PRESENTATIONS}.csv", lambda t: pres.to_csv(t, index=False))
    write_with(folder / f"{SPIKES}.csv", lambda t: spikes.to_csv(t, index=False, float_format="%.6f"))
    write_with(folder / IMAGES, lambda t: np.save(open(t, "wb"), images_u8))
    oracle = expected_oracle(rates, cfg.noise, cfg.repeats)
    save_npz(folder / TRUTH, rfs=rfs, rates=rates, drive_scale=scale, expected_oracle=oracle,
             unit_ids=unit_ids, **{f"gabor_{k}": v for k, v in params.items()})
    write_json(folder / "generator.json", {"version": GENERATOR_VERSION, **asdict(cfg)})
    return {"folder": str(folder), "n_neurons": cfg.n_neurons, "n_images": cfg.n_images,
            "presentations": int(n_pres), "spikes": int(len(spikes)),
            "expected_oracle_mean": float(oracle.mean())}
