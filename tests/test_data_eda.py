"""EDA on a synthetic retina: sparsity, scene changes from the stimulus, rise lags."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine.data.eda import (
    detect_rises,
    detect_scene_changes,
    frame_change_score,
    lag_histogram,
    retina_eda,
    rise_example,
    rise_lags,
)
from engine.data.retina_gen import generate_retina


@pytest.fixture(scope="module")
def retina(tmp_path_factory):
    path = tmp_path_factory.mktemp("eda") / "ns.h5"
    generate_retina(path, cells=9, frames=8000, seed=1, test_frames=200)
    return path


def test_small_helpers_on_known_input():
    rate = np.array([0, 0, 5, 3, 0, 0, 2, 0, 1], float)
    np.testing.assert_array_equal(detect_rises(rate), [2, 6, 8])
    lags = rise_lags(np.array([0, 5]), np.array([2, 3, 6, 8, 40]), max_lag=10)
    np.testing.assert_array_equal(lags, [2, 1])  # first rise after each change only
    all_lags = rise_lags(np.array([0, 5]), np.array([2, 3, 6, 8]), first_only=False)
    np.testing.assert_array_equal(all_lags, [2, 3, 1, 3])
    np.testing.assert_array_equal(lag_histogram([1, 1, 3, 99], max_lag=4), [0, 2, 0, 1, 0])
    # A one-pixel shift scores ~0, a new image scores high.
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (30, 30), dtype=np.uint8)
    other = rng.integers(0, 255, (30, 30), dtype=np.uint8)
    stack = np.stack([img, np.roll(img, 1, axis=1), np.roll(img, 1, axis=1), other])
    score = frame_change_score(stack)
    assert score[1] == pytest.approx(0, abs=1e-6) and score[2] == 0 and score[3] > 0.2
    np.testing.assert_array_equal(detect_scene_changes(score, threshold=0.1), [3])


def test_scene_changes_are_found_from_the_stimulus(retina):
    eda = retina_eda(retina)
    with h5py.File(retina) as fh:
        truth = fh["ground_truth/train/scene_changes"][()]
    found = eda.scene_changes
    hits = np.isin(truth, found).mean()
    false = (~np.isin(found, truth)).mean()
    assert hits > 0.97 and false < 0.03, (hits, false)


def test_eda_recovers_sparsity_and_the_generator_latency(retina):
    eda = retina_eda(retina)
    with h5py.File(retina) as fh:
        latency = fh["ground_truth/latency_frames"][()]
        rates = fh["train/response/firing_rate_10ms"][()]
    np.testing.assert_allclose(eda.sparsity, (rates == 0).mean(axis=1))
    assert 0.7 < eda.zero_fraction < 0.9
    # Per cell the median lag of the first rise after a change is the generator's latency.
    med = np.array([np.median(l) for l in eda.cell_lags])
    assert np.abs(med - latency).max() <= 1, (med, latency)
    # Pooled: the lag distribution peaks inside the seed's 8-12 frames.
    assert 8 <= eda.lag_mode <= 12
    assert eda.lag_fraction(8, 12) > 0.5
    assert eda.lag_counts.sum() == len(eda.lags)
    rows = eda.table()
    assert len(rows) == 9 and rows[0]["rises"] == len(eda.rises[0])


def test_rise_example_gives_frames_before_the_rise(retina):
    eda = retina_eda(retina)
    t = int(eda.rises[2][5])
    ex = rise_example(retina, "train", "firing_rate_10ms", cell=2, rise=t, n=10)
    assert ex.frames.shape == (11, 50, 50) and ex.indices[-1] == t
    assert ex.trace[-1] > 0 and ex.trace[-2] == 0  # it is a rise
