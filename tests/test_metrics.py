"""engine.metrics against hand-computed answers and known limiting cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammaln

from engine import metrics as M


# ----------------------------------------------------------------- pointwise errors

T2 = np.array([[0.0, 1.0], [2.0, 3.0]])
P2 = np.array([[1.0, 1.0], [2.0, 5.0]])  # errors: [[1, 0], [0, 2]]


def test_mae_by_hand():
    assert M.mae(T2, P2) == pytest.approx(0.75)
    np.testing.assert_allclose(M.mae(T2, P2, per_cell=True), [0.5, 1.0])


def test_rmse_by_hand():
    assert M.rmse(T2, P2) == pytest.approx(math.sqrt(5 / 4))
    np.testing.assert_allclose(M.rmse(T2, P2, per_cell=True), [math.sqrt(0.5), math.sqrt(2.0)])


def test_leading_axes_are_samples():
    t = np.arange(24.0).reshape(2, 3, 4)
    p = t + np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(M.mae(t, p, per_cell=True), [1, 2, 3, 4])
    assert M.mae(t, p) == pytest.approx(2.5)


def test_pearson_by_hand():
    t = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]])
    p = np.array([[2.0, 3.0, 1.0], [4.0, 2.0, 3.0], [6.0, 1.0, 2.0]])
    np.testing.assert_allclose(M.pearson(t, p, per_cell=True), [1.0, -1.0, 0.5])
    assert M.pearson(t, p) == pytest.approx((1 - 1 + 0.5) / 3)


def test_pearson_constant_cell_is_nan_and_left_out_of_mean():
    t = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    p = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    r = M.pearson(t, p, per_cell=True)
    assert r[0] == pytest.approx(1.0) and np.isnan(r[1])
    assert M.pearson(t, p) == pytest.approx(1.0)


def test_shape_mismatch_and_nan_target_raise():
    with pytest.raises(ValueError, match="shape"):
        M.mae(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        M.mae(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))


def test_diverged_prediction_gives_nan_not_a_number():
    t = np.zeros((4, 3))
    p = np.array([[0.0, 1, 0], [1, 0, np.inf], [2, 2, 1], [4, 3, 3]])
    for fn in (M.mae, M.rmse, M.pearson, M.fev):
        assert np.isnan(fn(t + np.arange(4)[:, None], p)), fn.__name__
        cells = fn(t + np.arange(4)[:, None], p, per_cell=True)
        assert np.isnan(cells[2]) and np.all(np.isfinite(cells[:2])), fn.__name__
    assert M.is_diverged(p) and not M.is_diverged(t)


# ----------------------------------------------------------------- FEV


def test_fev_without_repeats_is_explained_variance():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(50, 3))
    assert M.fev(t, t) == pytest.approx(1.0)
    mean_pred = np.broadcast_to(t.mean(axis=0), t.shape)
    np.testing.assert_allclose(M.fev(t, mean_pred, per_cell=True), 0.0, atol=1e-12)
    # half the signal: MSE = var/4 -> 0.75
    t1 = np.array([-1.0, 1.0, -1.0, 1.0])
    assert M.fev(t1, 0.5 * t1) == pytest.approx(0.75)


def test_fev_with_known_noise_variance_is_exact():
    s = np.array([[-1.0], [0.0], [1.0], [2.0]])  # signal, var = 1.25
    d = 0.5
    reps = np.stack([s + d, s - d])  # (2, 4, 1); noise of variance d^2 around s
    # the signal itself explains all explainable variance
    assert M.fev(reps, s, noise_var=d**2) == pytest.approx(1.0)
    # by hand with the ddof=1 estimate: noise = 2 d^2 = 0.5, var = 1.25 + 0.25 = 1.5, MSE = 0.25
    assert M.fev(reps, s) == pytest.approx(1 - (0.25 - 0.5) / (1.5 - 0.5))


def test_fev_with_repeats_of_noisy_data_is_near_one_for_the_signal():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(400, 5))
    reps = s + 0.7 * rng.normal(size=(10, 400, 5))
    assert M.fev(reps, s) == pytest.approx(1.0, abs=0.03)
    # the plain explained variance of the same prediction is much lower
    assert M.fev(reps.reshape(-1, 5), np.tile(s, (10, 1))) < 0.75


# ----------------------------------------------------------------- Poisson


def test_poisson_nll_by_hand():
    spikes = np.array([0.0, 1.0, 2.0])
    rates = np.array([1.0, 1.0, 2.0])
    assert M.poisson_nll(spikes, rates) == pytest.approx(4 - math.log(2))


def test_poisson_loss_is_seed_formula():
    spikes = np.array([0.0, 1.0, 3.0])
    rates = np.array([0.5, 2.0, 1.0])
    want = np.mean(rates - spikes * np.log(rates))
    assert M.poisson_loss(spikes, rates) == pytest.approx(want)


def test_bits_per_spike_by_hand():
    # one neuron: null rate 1; gain = 2 ln 1.5 over 2 spikes -> log2(1.5)
    spikes = np.array([[0.0], [2.0]])
    rates = np.array([[0.5], [1.5]])
    assert M.bits_per_spike(spikes, rates) == pytest.approx(math.log2(1.5))


def test_bits_per_spike_constant_mean_predictor_is_zero():
    rng = np.random.default_rng(2)
    spikes = rng.poisson(rng.uniform(0.1, 2, size=(1, 1, 7)), size=(20, 30, 7)).astype(float)
    null = np.broadcast_to(spikes.mean(axis=(0, 1)), spikes.shape)
    assert M.bits_per_spike(spikes, null) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(M.bits_per_spike(spikes, null, per_cell=True), 0.0, atol=1e-12)


def _nlb_bits_per_spike(rates, spikes):
    """The NLB formula written out independently (nlb_tools.evaluation)."""
    def nll(r, s):
        r = r.copy()
        r[r == 0] = 1e-9
        return np.sum(r - s * np.log(r) + gammaln(s + 1.0))

    null = np.tile(np.nanmean(spikes, axis=tuple(range(spikes.ndim - 1)), keepdims=True),
                   spikes.shape[:-1] + (1,))
    return (nll(null, spikes) - nll(rates, spikes)) / np.nansum(spikes) / np.log(2)


def test_bits_per_spike_matches_nlb_and_true_rates_win():
    rng = np.random.default_rng(3)
    true_rates = rng.gamma(2.0, 0.3, size=(40, 50, 6))
    spikes = rng.poisson(true_rates).astype(float)
    got = M.bits_per_spike(spikes, true_rates)
    assert got == pytest.approx(_nlb_bits_per_spike(true_rates, spikes), rel=1e-12)
    assert got > 0.1
    noisy = true_rates * rng.uniform(0.2, 3, size=true_rates.shape)
    assert M.bits_per_spike(spikes, noisy) < got
    assert M.co_bps(spikes, true_rates) == got


def test_bits_per_spike_masks_nan_spikes_and_rejects_negative_rates():
    spikes = np.array([[0.0], [2.0], [np.nan]])
    rates = np.array([[0.5], [1.5], [9.0]])
    assert M.bits_per_spike(spikes, rates) == pytest.approx(math.log2(1.5))
    with pytest.raises(ValueError, match="non-negative"):
        M.bits_per_spike(np.ones((2, 1)), np.array([[1.0], [-0.1]]))
    assert np.isnan(M.bits_per_spike(np.ones((2, 1)), np.array([[1.0], [np.nan]])))


# ----------------------------------------------------------------- corrected R²


def test_corrected_r2_scaled_and_offset_predictor():
    y = np.linspace(-1, 1, 21)
    fit = M.corrected_r2(y, 3 * y + 2)
    assert fit.r2_corrected == pytest.approx(1.0)
    assert fit.a == pytest.approx(1 / 3) and fit.b == pytest.approx(-2 / 3)
    ss_tot = np.sum((y - y.mean()) ** 2)
    assert fit.r2_raw == pytest.approx(1 - np.sum((2 * y + 2) ** 2) / ss_tot)
    assert fit.r2_raw < 0
    assert set(fit.to_dict()) == {"a", "b", "r2_raw", "r2_corrected"}


def test_corrected_r2_perfect_and_constant():
    y = np.array([1.0, 2.0, 4.0])
    fit = M.corrected_r2(y, y)
    assert (fit.a, fit.b, fit.r2_raw, fit.r2_corrected) == pytest.approx((1, 0, 1, 1))
    const = M.corrected_r2(y, np.full(3, 5.0))
    assert const.a == 0 and const.r2_corrected == pytest.approx(0.0)
    with pytest.raises(ValueError, match="constant"):
        M.corrected_r2(np.ones(3), y)


# ----------------------------------------------------------------- oracle


def test_oracle_correlation_by_hand():
    # two trials: leave-one-out mean of one trial is the other trial
    x = np.array([[[0.0], [2.0]], [[2.0], [0.0]]])  # (trials=2, stimuli=2, neurons=1)
    assert M.oracle_correlation(x) == pytest.approx(-1.0)
    same = np.stack([np.array([[1.0], [2.0], [3.0]])] * 3)
    assert M.oracle_correlation(same) == pytest.approx(1.0)


def test_oracle_correlation_reliable_vs_pure_noise():
    rng = np.random.default_rng(4)
    signal = rng.normal(size=(1, 200, 2)) * np.array([1.0, 0.0])
    x = signal + 0.3 * rng.normal(size=(8, 200, 2))
    r = M.oracle_correlation(x, per_cell=True)
    assert r[0] > 0.9
    assert abs(r[1]) < 0.1
    with pytest.raises(ValueError, match="2 repeated"):
        M.oracle_correlation(x[:1])


# ----------------------------------------------------------------- score table


def test_score_table_rows_columns_and_diverged(monkeypatch):
    rng = np.random.default_rng(5)
    target = rng.normal(size=(30, 3))
    bad = target.copy()
    bad[4, 1] = np.nan
    preds = {"perfect": target, "zero": np.zeros_like(target), "blown": bad}
    df = M.score_table(preds, target, metrics=("mae", "corr"), cells=["a", "b", "c"])
    assert list(df.index) == ["perfect", "zero", "blown"]
    assert list(df.columns) == ["diverged", "mae", "mae:a", "mae:b", "mae:c", "corr", "corr:a", "corr:b", "corr:c"]
    assert df.loc["perfect", "mae"] == 0 and df.loc["perfect", "corr"] == pytest.approx(1)
    assert df.loc["zero", "mae"] == pytest.approx(np.abs(target).mean())
    assert bool(df.loc["blown", "diverged"]) and not df["diverged"][["perfect", "zero"]].any()
    assert df.loc["blown"].drop("diverged").isna().all()

    # the parallel path gives the same table
    monkeypatch.setattr(M.table, "_PARALLEL_MIN_ENTRIES", 0)
    df_par = M.score_table(preds, target, metrics=("mae", "corr"), cells=["a", "b", "c"], n_jobs=2)
    assert df_par.equals(df)


def test_score_table_repeats_and_errors():
    s = np.array([[-1.0], [0.0], [1.0], [2.0]])
    reps = np.stack([s + 0.5, s - 0.5])
    df = M.score_table({"signal": s}, reps, metrics=("fev", "mae"), per_cell=False)
    assert df.loc["signal", "mae"] == 0  # against the mean over repeats
    assert df.loc["signal", "fev"] == pytest.approx(M.fev(reps, s))
    with pytest.raises(ValueError, match="unknown metric"):
        M.score_table({"a": s}, s, metrics=("nope",))
    with pytest.raises(ValueError, match="shape"):
        M.score_table({"a": s[:2]}, s)
