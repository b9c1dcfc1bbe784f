"""The LN baseline (engine.models.ln): a Poisson GLM that finds a known filter."""

from __future__ import annotations

import numpy as np
import pytest

from engine.models.ln import LNConfig, LNModel, temporal_basis


def test_temporal_basis_tiles_the_lags():
    b = temporal_basis(12, 4)
    assert b.shape == (4, 12) and np.all(b >= 0)
    assert b.argmax(1).tolist() == [0, 4, 7, 11]  # bumps centred along the lags
    assert np.allclose(b.sum(0)[1:-1], 1.0, atol=1e-9)  # raised cosines sum to one inside


def test_ln_recovers_a_known_glm_and_beats_the_mean():
    rng = np.random.default_rng(1)
    T, S = 3000, 10
    stim = rng.standard_normal((T, S, S)).astype(np.float32)
    cfg = LNConfig(lags=6, n_basis=3, pool=5, alphas=(1e-3, 1e-1))
    truth = LNModel(cfg)
    X = truth.features(stim)
    w = np.zeros((X.shape[1], 2))
    w[0, 0], w[5, 1] = 4.0, -4.0  # cell 0: pooled block 0 at the first lags; cell 1: block 1, OFF
    rate = np.exp(X @ w - 1.0)
    counts = rng.poisson(rate).astype(float)
    model = LNModel(cfg).fit(stim[:2400], counts[:2400], val=(stim[2400:], counts[2400:]), skip=6)
    assert model.alpha_ in cfg.alphas and set(model.val_nll_) == set(cfg.alphas)
    pred = model.predict(stim)[2400:]
    for c in range(2):
        r = np.corrcoef(pred[:, c], rate[2400:, c])[0, 1]
        assert r > 0.9
    # the held-out likelihood beats the per-cell mean's
    mean = counts[:2400].mean(0)
    nll = lambda p: np.mean(p - counts[2400:] * np.log(p))  # noqa: E731
    assert nll(pred) < nll(np.broadcast_to(mean, pred.shape)) - 0.05
    again = LNModel.from_arrays(model.to_arrays())
    assert np.allclose(again.predict(stim[:50]), model.predict(stim[:50]))


def test_ln_says_what_is_wrong():
    with pytest.raises(RuntimeError, match="not fitted"):
        LNModel().predict(np.zeros((5, 10, 10)))
    with pytest.raises(ValueError, match="resp must be"):
        LNModel(LNConfig(lags=2, n_basis=1, pool=5)).fit(np.zeros((5, 10, 10)), np.zeros((4, 2)))


def test_segments_are_fitted_and_predicted_each_on_its_own_frames():
    """Recording blocks: no lag of a segment's first frames reaches into the block before."""
    rng = np.random.default_rng(2)
    stim = rng.standard_normal((200, 10, 10)).astype(np.float32)
    model = LNModel(LNConfig(lags=6, n_basis=3, pool=5, alphas=(1e-2,)))
    segs = [(0, 90), (100, 200)]
    X, Y = model._rows(stim, np.ones((200, 2)), segs, skip=6)
    assert len(X) == len(Y) == (90 - 6) + (100 - 6)
    # the second segment's rows are its features alone: frames 0-99 change nothing
    other = stim.copy()
    other[:100] = 0.0
    assert np.array_equal(X[84:], model._rows(other, np.ones((200, 2)), [(100, 200)], skip=6)[0])
    counts = rng.poisson(1.0, (200, 2)).astype(float)
    model.fit_segments(stim, counts, segs[:1], segs[1:])
    assert model.predict_segments(stim, segs).shape == (190, 2)
    with pytest.raises(ValueError, match="no segment is longer than 6 frames"):
        model.fit_segments(stim, counts, [(0, 5)])
