"""Synthetic retina generator, loader, lazy windows and time splits."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from engine.data.errors import DataError
from engine.data.retina import (
    FrameWindows,
    inspect_retina,
    is_retina_file,
    load_retina,
    read_h5_to_numpy,
    split_windows,
)
from engine.data.retina_gen import generate_retina, simulate_retina


@pytest.fixture(scope="module")
def retina(tmp_path_factory):
    path = tmp_path_factory.mktemp("retina") / "naturalscene.h5"
    generate_retina(path, cells=4, frames=1500, seed=3, test_frames=300)
    return path


def test_generator_writes_the_deep_retina_layout(retina):
    with h5py.File(retina) as fh:
        assert fh["train/stimulus"].shape == (1500, 50, 50) and fh["train/stimulus"].dtype == np.uint8
        assert fh["test/stimulus"].shape == (300, 50, 50)
        assert fh["train/response/firing_rate_10ms"].shape == (4, 1500)
        assert fh["train/time"].shape == (1500,)
        assert fh["ground_truth/spatial_filters"].shape == (4, 50, 50)
        lat = fh["ground_truth/latency_frames"][()]
        assert ((lat >= 8) & (lat <= 12)).all()
        assert fh.attrs["seed"] == 3 and fh.attrs["cells"] == 4
        changes = fh["ground_truth/train/scene_changes"][()]
        for a, b in load_retina(retina).blocks:  # scenes run on through the unrecorded gaps
            inside = changes[(changes > a) & (changes < b)]
            gaps = np.diff(inside)
            assert len(inside) > 3 and (gaps >= 20).all() and (gaps <= 60).all()
        assert fh["ground_truth/train/expected_rate"].shape == (4, 1500)
        assert fh["ground_truth/test/expected_rate"].shape == (4, 300)


def test_expected_rate_is_the_mean_of_the_recorded_rate():
    sim = simulate_retina(6000, cells=3, seed=5)
    # the smoothed Poisson counts scatter around the noise-free rate: same mean, and the
    # correlation between them is the ceiling a model can reach (well below 1 in 10 ms bins)
    np.testing.assert_allclose(sim.rates.mean(1), sim.expected.mean(1), rtol=0.1)
    ceiling = [np.corrcoef(e, r)[0, 1] for e, r in zip(sim.expected, sim.rates)]
    assert all(0.5 < c < 0.95 for c in ceiling), ceiling


def test_generator_is_deterministic_and_sparse():
    a = simulate_retina(3000, cells=3, seed=7)
    b = simulate_retina(3000, cells=3, seed=7)
    c = simulate_retina(3000, cells=3, seed=8)
    np.testing.assert_array_equal(a.rates, b.rates)
    assert not np.array_equal(a.rates, c.rates)
    zero = (a.rates == 0).mean(axis=1)
    assert np.all((zero > 0.7) & (zero < 0.9)), zero  # the seed: ~80 % zeros
    assert (a.rates >= 0).all() and np.isfinite(a.rates).all()
    # Centre-surround: the strongest opposite-signed weight lies on a ring away from the centre.
    for rf in a.spatial:
        centre = np.array(np.unravel_index(np.abs(rf).argmax(), rf.shape))
        sign = np.sign(rf[tuple(centre)])
        surround = np.array(np.unravel_index((rf * sign).argmin(), rf.shape))
        assert rf[tuple(surround)] * sign < 0
        assert np.linalg.norm(surround - centre) > 2


def test_small_generation_is_fast(tmp_path):
    t0 = time.perf_counter()
    generate_retina(tmp_path / "s.h5", cells=9, frames=1000, test_frames=200)
    assert time.perf_counter() - t0 < 1.0


def test_loader_scales_and_validates(retina):
    d = load_retina(retina)
    assert d.stimulus.dtype == np.float32 and d.stimulus.shape == (1500, 50, 50)
    assert 0.0 <= d.stimulus.min() and d.stimulus.max() <= 1.0
    with h5py.File(retina) as fh:
        raw = fh["train/stimulus"][:5]
        np.testing.assert_allclose(d.stimulus[:5], raw / 255.0, rtol=1e-6)
    x, y = read_h5_to_numpy(retina, "test", "binned")
    assert x.shape == (300, 50, 50) and y.shape == (4, 300)
    part = load_retina(retina, frames=slice(100, 200))
    np.testing.assert_array_equal(part.stimulus, d.stimulus[100:200])
    assert part.start == 100 and part.time[0] == pytest.approx(1.0)
    layout = inspect_retina(retina)
    assert layout.splits["train"]["responses"] == ["binned", "firing_rate_10ms"]
    assert is_retina_file(retina)


def test_windows_are_lazy_and_match_the_frames(retina):
    d = load_retina(retina)
    w = FrameWindows(d.stimulus, 40, d.responses)
    assert len(w) == 1500 - 39 and w.times[0] == 39
    win = w[0]
    assert win.shape == (40, 50, 50) and np.shares_memory(win, d.stimulus)  # a view, not a copy
    np.testing.assert_array_equal(w[10], d.stimulus[10:50])
    b = w.batch([0, 10, len(w) - 1])
    assert b.shape == (3, 40, 50, 50) and b.flags.c_contiguous
    np.testing.assert_array_equal(b[2], d.stimulus[-40:])
    np.testing.assert_array_equal(w.targets([10]), d.responses[:, [49]].T)
    raw = load_retina(retina, raw=True)
    assert raw.stimulus.dtype == np.uint8
    np.testing.assert_allclose(FrameWindows(raw.stimulus, 40).batch([5]), w.batch([5]), rtol=1e-6)
    with pytest.raises(IndexError):
        w[len(w)]


def test_split_in_time_does_not_share_frames(retina):
    d = load_retina(retina)
    train, valid = split_windows(d, history=40, valid_fraction=0.2)
    cut = 1200
    assert train.times[-1] == cut - 1 and valid.times[0] == cut + 39
    first_valid_frame = valid.times[0] - 39
    assert first_valid_frame >= train.times[-1] + 1
    with pytest.raises(DataError, match="too few"):
        split_windows(load_retina(retina, frames=(0, 60)), history=40)


def test_generator_writes_blocks_and_repeats_like_the_real_file(tmp_path, retina):
    with h5py.File(retina) as fh:
        t = fh["train/time"][()]
        assert "block_starts" not in fh["train"]  # the real layout marks blocks by time alone
        rep = np.stack([fh[f"test/repeats/cell{c:02d}"][()] for c in range(1, 5)])  # (cells, reps, T)
        mean = fh["test/response/firing_rate_10ms"][()]
        expected = fh["ground_truth/test/expected_rate"][()]
    jumps = np.flatnonzero(np.diff(t) > 0.015) + 1
    assert jumps.tolist() == [500, 1000] and load_retina(retina).blocks == [(0, 500), (500, 1000), (1000, 1500)]
    assert rep.shape == (4, 5, 300)
    np.testing.assert_allclose(rep.mean(1), mean, rtol=1e-5)
    # independent Poisson noise per trial around one noise-free rate
    assert not np.array_equal(rep[:, 0], rep[:, 1])
    np.testing.assert_allclose(rep.mean((1, 2)), expected.mean(1), rtol=0.35)
    # files from before blocks and repeats: one block, no repeats, still read
    old = generate_retina(tmp_path / "old.h5", cells=2, frames=300, test_frames=100, blocks=1, repeats=0)
    assert load_retina(old).blocks == [(0, 300)] and load_retina(old, "test").repeats is None
