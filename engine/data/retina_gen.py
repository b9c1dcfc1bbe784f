"""Synthetic retina recording in the deep-retina ``naturalscene.h5`` layout.

The real file cannot be downloaded here, so this writes the same layout from a
linear-nonlinear-Poisson (LNP) model whose pieces are known and stored:

* stimulus: 1/f ("natural-scene-like") images, each held for a random number of
  frames with fixational jitter (a one-pixel random walk), then a scene change;
* spatial filters: difference-of-Gaussians (centre-surround), ON or OFF;
* temporal filters: zero for ``latency`` frames, then a biphasic transient, so a
  scene change drives a brief burst ``latency`` (8-12) frames later;
* nonlinearity: thresholded linear, threshold chosen so that about
  ``zero_fraction`` (80 %) of the smoothed firing rates are exactly zero;
* Poisson spikes in 10 ms bins, smoothed with a short causal kernel into
  ``response/firing_rate_10ms`` (spikes per 10 ms bin, the scale of the seed's
  targets: mostly 0, bursts around 0.1-2); raw counts go to ``response/binned``.

Layout written (the real file's: ``train`` is several recording blocks whose ``time`` jumps
between them, as the stream ran on unrecorded between blocks; ``test`` is one stimulus shown
``repeats`` times, each with its own Poisson noise, its response the mean over trials)::

    /train/stimulus                    (T, 50, 50) uint8, ``blocks`` blocks end to end
    /train/response/firing_rate_10ms   (cells, T) float32
    /train/response/binned             (cells, T) float32 spike counts
    /train/time                        (T,) float64 seconds (jumps by ``block_gap`` frames)
    /test/stimulus, time               T_test frames, one block
    /test/response/firing_rate_10ms    (cells, T_test) mean over the repeats
    /test/response/binned              (cells, T_test) mean spike count over the repeats
    /test/repeats/cell01 ...           (repeats, T_test) each cell's single trials
    /ground_truth/spatial_filters      (cells, 50, 50)
    /ground_truth/temporal_filters     (cells, L)  (lag 0 first)
    /ground_truth/latency_frames       (cells,)
    /ground_truth/thresholds, gains    (cells,)
    /ground_truth/{train,test}/scene_changes  first frame of every new scene
    /ground_truth/{train,test}/expected_rate  (cells, T) noise-free target (the ceiling)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from scipy.signal import lfilter

from engine.atomic import write_with
from engine.data.errors import DataError

__all__ = ["generate_retina", "RetinaTruth", "simulate_retina"]

DT = 0.01  # seconds per frame / bin (the "10ms" in firing_rate_10ms)
JITTER_P = 0.3  # chance per frame of a one-pixel fixational step
# Biphasic temporal filter: positive lobe just after the latency, slower negative
# lobe, so a step in the stimulus gives one brief transient (centre, width in frames).
# Offsets are from the first non-zero tap, one frame before the latency: the drive
# then crosses threshold a frame early and the first Poisson spike, i.e. the
# firing-rate rise, lands on ``latency`` itself (checked in tests/test_data_eda.py).
POS_C, POS_S, NEG_C, NEG_S = 0.5, 0.9, 5.0, 2.0
# Causal smoothing of spike counts into rates (6 bins, tau 1.5): short bursts, exact zeros between.
_SMOOTH = np.exp(-np.arange(6) / 1.5)
_SMOOTH = (_SMOOTH / _SMOOTH.sum()).astype(np.float32)  # causal: a rise starts at its spike


@dataclass
class RetinaTruth:
    """Everything :func:`simulate_retina` produced, with the ground truth.

    Attributes
    ----------
    stimulus : ndarray, uint8, shape (T, S, S)
    rates : ndarray, float32, shape (cells, T)
        Smoothed firing rates, spikes per 10 ms bin.
    counts : ndarray, float32, shape (cells, T)
        Spike counts per bin.
    expected : ndarray, float32, shape (cells, T)
        The noise-free target: expected spikes per bin, smoothed like ``rates``.
        ``corr(expected, rates)`` is the best correlation any model can reach.
    scene_changes : ndarray, int64
        First frame of every scene after the first.
    spatial, temporal : ndarray
        (cells, S, S) and (cells, L) filters.
    latency : ndarray, int64, shape (cells,)
        Frames between a scene change and the typical firing-rate rise.
    thresholds, gains : ndarray, shape (cells,)
    expected_counts : ndarray, float32, shape (cells, T)
        Expected spikes per bin (the Poisson means), unsmoothed.
    """

    stimulus: np.ndarray
    rates: np.ndarray
    counts: np.ndarray
    expected: np.ndarray
    scene_changes: np.ndarray
    spatial: np.ndarray
    temporal: np.ndarray
    latency: np.ndarray
    thresholds: np.ndarray
    gains: np.ndarray
    expected_counts: np.ndarray | None = None  # (cells, T) expected spikes per bin, before smoothing


def _pink_images(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    """``n`` images (size, size) with amplitude spectrum 1/f**exponent, zero mean, unit std."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    f = np.sqrt(fy**2 + fx**2)
    f[0, 0] = 1.0
    amp = (1.0 / f**exponent).astype(np.float32)
    amp[0, 0] = 0.0
    out = np.empty((n, size, size), np.float32)
    for start in range(0, n, 256):  # bounded temporaries
        m = min(256, n - start)
        noise = rng.standard_normal((m, size, size), dtype=np.float32)
        img = np.fft.irfft2(np.fft.rfft2(noise) * amp, s=(size, size)).astype(np.float32)
        img -= img.mean(axis=(1, 2), keepdims=True)
        img /= img.std(axis=(1, 2), keepdims=True) + 1e-8
        out[start : start + m] = img
    return out


def _dog(size: int, cy: float, cx: float, sc: float, ss: float, ws: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    r2 = (y - cy) ** 2 + (x - cx) ** 2
    c = np.exp(-r2 / (2 * sc**2))
    s = np.exp(-r2 / (2 * ss**2))
    f = c / c.sum() - ws * s / s.sum()
    return (f / np.abs(f).sum()).astype(np.float32)


def _temporal(latency: int, length: int) -> np.ndarray:
    tau = np.arange(length, dtype=np.float32)
    latency = max(0, latency - 1)
    pos = np.exp(-((tau - latency - POS_C) ** 2) / (2 * POS_S**2))
    neg = np.exp(-((tau - latency - NEG_C) ** 2) / (2 * NEG_S**2))
    k = pos / pos.sum() - 0.9 * neg / neg.sum()
    k[:latency] = 0.0  # nothing reaches the output before the latency
    return (k / np.abs(k).sum()).astype(np.float32)


def _zero_fraction(lam_dt: np.ndarray) -> float:
    """Expected fraction of zero smoothed rates: no spike in the kernel's reach."""
    reach = np.convolve(lam_dt, np.ones(len(_SMOOTH)), mode="full")[: len(lam_dt)]
    return float(np.exp(-reach).mean())


def simulate_retina(
    frames: int,
    cells: int = 9,
    seed: int = 0,
    size: int = 50,
    scene_frames: tuple[int, int] = (20, 60),
    latency_range: tuple[int, int] = (8, 12),
    zero_fraction: float = 0.8,
    peak_rate: float = 150.0,
    jitter: int = 3,
    exponent: float = 1.2,
    filter_length: int = 30,
) -> RetinaTruth:
    """Simulate the LNP retina for ``frames`` frames (in memory; see :func:`generate_retina`)."""
    if frames < 1 or cells < 1 or size < 8:
        raise DataError(f"need frames >= 1, cells >= 1 and size >= 8; got {frames}, {cells}, {size}")
    lo, hi = latency_range
    if not 0 <= lo <= hi < filter_length - 8:
        raise DataError(f"latency_range {latency_range} must satisfy 0 <= lo <= hi < {filter_length - 8}")
    if not 0.0 < zero_fraction < 1.0:
        raise DataError(f"zero_fraction must be in (0, 1), got {zero_fraction}")
    rng = np.random.default_rng(seed)

    # Scenes and their lengths.
    smin, smax = scene_frames
    lengths = rng.integers(smin, smax + 1, size=frames // max(1, smin) + 2)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    n_scenes = int(np.searchsorted(starts, frames, side="left"))
    starts = starts[:n_scenes]
    scene_of = np.repeat(np.arange(n_scenes), np.diff(np.append(starts, frames)))

    # Images with margin for the jitter; luminance and contrast vary per scene.
    big = size + 2 * jitter
    imgs = _pink_images(rng, n_scenes, big, exponent)
    mean = rng.uniform(0.3, 0.7, n_scenes).astype(np.float32)
    contrast = rng.uniform(0.10, 0.22, n_scenes).astype(np.float32)
    imgs = np.clip(imgs * contrast[:, None, None] + mean[:, None, None], 0, 1)
    imgs = np.round(imgs * 255).astype(np.uint8)

    # Fixational jitter: a lazy one-pixel random walk restarted at each scene.
    steps = rng.integers(-1, 2, size=(frames, 2)) * (rng.random((frames, 1)) < JITTER_P)
    walk = np.cumsum(steps, axis=0)
    walk -= walk[starts[scene_of]]
    off = np.clip(jitter + walk, 0, 2 * jitter)
    windows = np.lib.stride_tricks.sliding_window_view(imgs, (size, size), axis=(1, 2))
    stimulus = np.ascontiguousarray(windows[scene_of, off[:, 0], off[:, 1]])

    # Receptive fields: DoG centre somewhere in the middle, half ON, half OFF.
    spatial = np.empty((cells, size, size), np.float32)
    for c in range(cells):
        cy, cx = rng.uniform(0.3 * size, 0.7 * size, 2)
        sc = rng.uniform(1.5, 3.0)
        spatial[c] = _dog(size, cy, cx, sc, 2.5 * sc, rng.uniform(0.5, 0.8))
        if c % 2:
            spatial[c] *= -1
    latency = rng.integers(lo, hi + 1, size=cells)
    temporal = np.stack([_temporal(int(d), filter_length) for d in latency])

    # Linear stage: spatial projection in chunks (no (T, S*S) float copy), then causal FIR.
    proj = np.empty((frames, cells), np.float32)
    rf = spatial.reshape(cells, -1).T
    for a in range(0, frames, 4096):
        proj[a : a + 4096] = (stimulus[a : a + 4096].reshape(-1, size * size).astype(np.float32) / 255) @ rf
    proj -= proj.mean(axis=0)
    drive = np.empty((cells, frames), np.float32)
    for c in range(cells):
        drive[c] = lfilter(temporal[c], [1.0], proj[:, c])
    drive /= drive.std(axis=1, keepdims=True) + 1e-8

    # Nonlinearity: threshold per cell by bisection on the expected zero fraction.
    thresholds = np.empty(cells)
    gains = np.empty(cells)
    lam = np.empty_like(drive)
    for c in range(cells):
        # ON-OFF: a scene change of either sign drives the cell, once, at its latency.
        g = np.abs(drive[c]).astype(np.float64)
        top = np.quantile(g, 0.999)
        below, above = float(np.median(g)), float(top)  # never fire on the jitter-level baseline
        for _ in range(30):
            th = 0.5 * (below + above)
            gain = peak_rate / max(top - th, 1e-6)
            zf = _zero_fraction(np.maximum(g - th, 0) * gain * DT)
            if zf < zero_fraction:
                below = th
            else:
                above = th
        thresholds[c], gains[c] = th, gain
        lam[c] = np.maximum(g - th, 0) * gain

    counts = rng.poisson(lam * DT).astype(np.float32)
    # per 10 ms bin, like the seed's targets (0.20, 0.12, 0.03...), not Hz
    rates = lfilter(_SMOOTH, [1.0], counts, axis=1).astype(np.float32)
    rates[rates < 1e-5] = 0.0  # lfilter round-off must not turn exact zeros into 1e-9
    expected = lfilter(_SMOOTH, [1.0], lam * DT, axis=1).astype(np.float32)
    return RetinaTruth(
        stimulus=stimulus,
        rates=rates,
        counts=counts,
        expected=expected,
        scene_changes=starts[1:].astype(np.int64),
        spatial=spatial,
        temporal=temporal,
        latency=latency.astype(np.int64),
        thresholds=thresholds,
        gains=gains,
        expected_counts=(lam * DT).astype(np.float32),
    )


def generate_retina(
    path: str | Path,
    cells: int = 9,
    frames: int = 30000,
    seed: int = 0,
    test_frames: int | None = None,
    *,
    size: int = 50,
    latency_range: tuple[int, int] = (8, 12),
    zero_fraction: float = 0.8,
    scene_frames: tuple[int, int] = (20, 60),
    compression: str | None = None,
    blocks: int = 3,
    repeats: int = 5,
    block_gap: int = 200,
) -> Path:
    """Write a synthetic ``naturalscene.h5`` to ``path`` (atomically) and return the path.

    Parameters
    ----------
    path : str or Path
        Output file; parent folders are created.
    cells : int
        Number of ganglion cells.
    frames : int
        Frames in ``train``.
    seed : int
        Random seed; the same arguments give the same file contents.
    test_frames : int, optional
        Frames in ``test`` (default ``max(frames // 6, 100)``); simulated as a
        continuation of the same stimulus stream with new scenes.
    size : int
        Frame side in pixels (50 in the real data).
    latency_range : (int, int)
        Range of per-cell response latencies in frames (inclusive).
    zero_fraction : float
        Target fraction of exactly-zero firing rates.
    scene_frames : (int, int)
        Range of frames a scene is held before it changes.
    compression : str, optional
        h5py filter for the stimulus ("lzf", "gzip"); none by default, for speed.
    blocks : int
        Recording blocks of ``train`` (near-equal lengths; 1: one continuous block).
    repeats : int
        Trials of the test stimulus in ``test/repeats`` (0: none, and ``test`` is a
        single trial as in files written before repeats).
    block_gap : int
        Frames simulated but not written before every block after the first and before
        ``test``: the stimulus and the cells' filters run on, so no state crosses a gap.
    """
    if test_frames is None:
        test_frames = max(frames // 6, 100)
    if test_frames < 1:
        raise DataError(f"test_frames must be at least 1, got {test_frames}")
    if not 1 <= blocks <= max(1, frames // 10) or repeats < 0 or block_gap < 0:
        raise DataError(f"need 1 <= blocks <= frames / 10, repeats >= 0 and block_gap >= 0; "
                        f"got {blocks}, {repeats}, {block_gap}")
    # stream frames of each train block and of the test split, gaps between them unwritten
    edges = np.linspace(0, frames, blocks + 1).round().astype(int)
    spans, pos = [], 0
    for a, b in zip(edges[:-1], edges[1:]):
        spans.append((pos, pos + b - a))
        pos += b - a + block_gap
    test_span = (pos, pos + test_frames)
    total = test_span[1]
    from engine.resources import require_memory

    # the movie (uint8, and float32 while filtering) and rates, counts and expectations per cell
    require_memory(total * (size * size * (1 + 4 * 2) + cells * 4 * 4), "the synthetic retina",
                   {"frames": frames, "test_frames": test_frames, "cells": cells}, error=DataError)
    sim = simulate_retina(
        total,
        cells=cells,
        seed=seed,
        size=size,
        scene_frames=scene_frames,
        latency_range=latency_range,
        zero_fraction=zero_fraction,
    )
    train_idx = np.concatenate([np.arange(a, b) for a, b in spans])
    test_idx = np.arange(*test_span)
    trial_rates = trial_counts = np.zeros((0,))
    if repeats:
        # the same test stimulus again: the same expected counts, new Poisson noise per trial
        # (the first trial is the simulation's own), smoothed like every recorded rate
        rng = np.random.default_rng([seed, 7])
        assert sim.expected_counts is not None  # simulate_retina always keeps them
        lam = sim.counts[:, test_idx][None].repeat(repeats, 0)
        lam[1:] = rng.poisson(sim.expected_counts[:, test_idx], size=(repeats - 1, cells, len(test_idx)))
        trial_counts = lam.astype(np.float32)
        trial_rates = lfilter(_SMOOTH, [1.0], trial_counts, axis=-1).astype(np.float32)
        trial_rates[trial_rates < 1e-5] = 0.0
    path = Path(path)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as fh:
            fh.attrs.update(
                generator="engine.data.retina_gen.generate_retina",
                model="linear-nonlinear-Poisson",
                seed=seed,
                cells=cells,
                frames=frames,
                test_frames=test_frames,
                dt=DT,
                latency_range=np.asarray(latency_range),
                zero_fraction_target=zero_fraction,
            )
            fh.attrs.update(blocks=blocks, repeats=repeats, block_gap=block_gap)
            for split, idx in (("train", train_idx), ("test", test_idx)):
                grp = fh.create_group(split)
                n = len(idx)
                grp.create_dataset(
                    "stimulus",
                    data=sim.stimulus[idx],
                    chunks=(min(n, 256), size, size),
                    compression=compression,
                )
                # seconds since the split's first frame, jumping over the unrecorded gaps
                grp.create_dataset("time", data=(idx - idx[0]) * DT)
                resp = grp.create_group("response")
                rates, counts = (trial_rates, trial_counts) if split == "test" and repeats else (sim.rates, sim.counts)
                resp.create_dataset("firing_rate_10ms", data=rates.mean(0) if rates.ndim == 3 else rates[:, idx])
                resp.create_dataset("binned", data=counts.mean(0) if counts.ndim == 3 else counts[:, idx])
                if split == "test" and repeats:
                    for c in range(cells):
                        grp.create_dataset(f"repeats/cell{c + 1:02d}", data=trial_rates[:, c])
                sc = sim.scene_changes
                sc = sc[np.isin(sc, idx)]
                fh.create_dataset(f"ground_truth/{split}/scene_changes", data=np.searchsorted(idx, sc))
                fh.create_dataset(f"ground_truth/{split}/expected_rate", data=sim.expected[:, idx])
            gt = fh["ground_truth"]
            gt.attrs["description"] = "LNP model that generated the responses; not present in real files"
            gt.create_dataset("spatial_filters", data=sim.spatial)
            gt.create_dataset("temporal_filters", data=sim.temporal)
            gt["temporal_filters"].attrs["axis1"] = "lag in frames, 0 = current frame"
            gt.create_dataset("latency_frames", data=sim.latency)
            gt.create_dataset("thresholds", data=sim.thresholds)
            gt.create_dataset("gains", data=sim.gains)

    # HDF5 must not meet a full disk (its state breaks, the process crashes): check first
    return write_with(path, write, need_bytes=sum(a.nbytes for a in (sim.stimulus, sim.rates, sim.counts, sim.expected)))
