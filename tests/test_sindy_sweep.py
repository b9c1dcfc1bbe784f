"""Threshold sweeps, Pareto front and knee, bagged ensembles."""

from __future__ import annotations

import numpy as np
import pytest

from engine.sindy import Sindy, ensemble, knee_point, pareto_front, threshold_sweep
from engine.sindy import stlsq

from tests.helpers.sindy_systems import LORENZ_TERMS, damped_oscillator, lorenz, tanh_network

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def lorenz_sweep():
    xs, dt = lorenz(n_traj=5, T=5.0)
    return threshold_sweep(xs, dt, model=Sindy(degree=3))


def test_sweep_table_has_64_rows_and_the_documented_columns(lorenz_sweep):
    r = lorenz_sweep
    t = r.table
    assert len(t) == 64 and r.coefs.shape == (64, 3, 20)
    for col in ("threshold", "n_terms", "train_err", "deriv_err", "rollout_err", "diverged_frac", "on_front", "score", "is_knee"):
        assert col in t.columns
    assert np.all(np.diff(t["threshold"]) > 0)
    assert np.all(np.diff(t["n_terms"]) <= 0)  # sparser with larger thresholds here
    assert t["deriv_err"].notna().all() and t["rollout_err"].notna().all()
    assert r.settings["split"] == "trajectories"
    assert t["is_knee"].sum() == 1 and t["on_front"].sum() >= 2


def test_sweep_rows_equal_single_fits(lorenz_sweep):
    r = lorenz_sweep
    xs, dt = lorenz(n_traj=5, T=5.0)
    train = xs[:4]  # the last trajectory is held out
    for i in (5, 30, 50):
        m = Sindy(degree=3, threshold=float(r.thresholds[i]), exact=False).fit(train, dt)
        np.testing.assert_array_equal(m.coef_ != 0, r.coefs[i] != 0)
        np.testing.assert_allclose(m.coef_, r.coefs[i], rtol=1e-9, atol=1e-12)


def test_knee_is_the_true_lorenz_model(lorenz_sweep):
    r = lorenz_sweep
    model = r.model()
    expected = {(i, term) for (i, term) in LORENZ_TERMS}
    found = {(i, model.feature_names_[j]) for i, j in zip(*np.nonzero(model.coef_))}
    assert found == expected
    assert r.table.loc[r.knee, "n_terms"] == 7
    assert r.equations()[2].startswith("(x2)' = -2.67 x2 + 1 x0 x1")
    front = r.front
    assert front["n_terms"].is_monotonic_increasing


def test_sweep_with_time_block_validation_and_control():
    x, t, u, _ = damped_oscillator()
    r = threshold_sweep(x, t[1] - t[0], u, model=Sindy(degree=2), thresholds=16)
    assert r.settings["split"] == "time_block" and len(r.table) == 16
    knee = r.model()
    assert knee.n_control_features_ == 1 and knee.feature_names_[3] == "u0"
    assert np.count_nonzero(knee.coef_) == 4


def test_explicit_thresholds_and_no_validation():
    xs, dt = lorenz()
    r = threshold_sweep(xs, dt, model=Sindy(degree=2), thresholds=[0.5, 0.05, 5.0], val_fraction=0)
    assert list(r.table["threshold"]) == [0.05, 0.5, 5.0]
    assert r.error_column == "train_err" and r.table["deriv_err"].isna().all()


def test_pareto_front_and_knee_point():
    c = np.array([1, 2, 3, 4, 5, 6, 3])
    e = np.array([1.0, 0.5, 0.01, 0.009, 0.02, 0.0089, 0.5])
    on = pareto_front(c, e)
    assert on.tolist() == [True, True, True, True, False, True, False]
    knee, score = knee_point(c, e, on)
    assert knee == 2  # the big drop from 2 to 3 terms
    assert np.isnan(score[4]) and score[0] == 0
    inf_front = pareto_front([1, 2], [np.inf, np.nan])
    assert not inf_front.any() and knee_point([1, 2], [np.inf, np.nan])[0] == -1


def test_sweep_is_fast_enough_for_an_interactive_pane():
    # a 5-state CfC-like system (56 terms); the full benchmark case is in benchmarks/
    xs, dt = tanh_network()
    import time

    threshold_sweep(xs, dt, model=Sindy(degree=3), thresholds=8)  # warm up imports
    t0 = time.perf_counter()
    r = threshold_sweep(xs, dt, model=Sindy(degree=3))
    assert time.perf_counter() - t0 < 5.0
    assert len(r.table) == 64


def test_ensemble_inclusion_probabilities():
    xs, dt = lorenz()
    noisy = xs[0] + 0.02 * np.random.default_rng(0).standard_normal(xs[0].shape)
    res = ensemble(noisy, dt, model=Sindy(degree=2, threshold=0.5, differentiation="smoothed_finite_difference"), n_models=40)
    assert res.coefs.shape == (40, 3, 10) and res.inclusion.shape == (3, 10)
    names = res.feature_names
    for (i, term), c in LORENZ_TERMS.items():
        j = names.index(term)
        assert res.inclusion[i, j] >= 0.95
        assert res.coef_median[i, j] == pytest.approx(c, rel=0.05)
    true_mask = np.zeros((3, 10), dtype=bool)
    for (i, term) in LORENZ_TERMS:
        true_mask[i, names.index(term)] = True
    assert res.inclusion[~true_mask].mean() < 0.3
    tab = res.table()
    assert set(tab.columns) >= {"state", "term", "inclusion", "median"}
    assert np.count_nonzero(res.consensus(0.5)) >= 7


def test_ensemble_sample_bootstrap_with_joblib():
    xs, dt = lorenz()
    res = ensemble(xs[0], dt, model=Sindy(degree=2, threshold=0.5), n_models=6, method="samples", n_jobs=2)
    assert res.coefs.shape == (6, 3, 10)
    assert (res.inclusion[res.coef_median != 0] == 1).all()
    sub = ensemble(xs[0], dt, model=Sindy(degree=2, threshold=0.5), n_models=5, replace=False)
    assert np.count_nonzero(sub.consensus()) == 7


def test_sweep_uses_the_batched_stlsq():
    xs, dt = tanh_network()
    r = threshold_sweep(xs, dt, model=Sindy(degree=2), thresholds=[0.01, 0.1], val_fraction=0)
    from engine.sindy.library import PolynomialLibrary
    from engine.sindy.derivatives import finite_difference

    lib = PolynomialLibrary(2).fit(5)
    X = np.concatenate(lib.transform(xs))
    Y = np.concatenate([finite_difference(x, dt) for x in xs])
    np.testing.assert_allclose(r.coefs, stlsq(X, Y, [0.01, 0.1], exact=False), rtol=1e-9)  # same solves; BLAS thread count changes the last bits


def test_stored_sweep_scores_rows_like_the_sweep_and_refits_edits(lorenz_sweep, tmp_path):
    from engine.sindy import load_sweep

    r = lorenz_sweep
    np.savez(tmp_path / "s.npz", **r.arrays())
    st = load_sweep(tmp_path / "s.npz")
    np.testing.assert_array_equal(st.coefs, r.coefs)
    lib = r.model().library_
    for i in (10, r.knee, 60):
        e = st.errors(st.coefs[i], lib)
        # the held-out derivative error from the Gram equals the data's; the rollouts are the same
        assert e["deriv_err"] == pytest.approx(r.table.loc[i, "deriv_err"], rel=1e-6)
        assert e["rollout_err"] == pytest.approx(r.table.loc[i, "rollout_err"], rel=1e-9)
    # drop x1 from (x0)' of the true model: the refit is least squares on the training data
    names = r.feature_names
    j = names.index("x1")
    assert st.coefs[r.knee][0, j] != 0
    edited = st.edited(r.knee, [(0, j)])
    mask = st.coefs[r.knee] != 0
    mask[0, j] = False
    np.testing.assert_array_equal(edited != 0, mask)
    xs, dt = lorenz(n_traj=5, T=5.0)
    m = Sindy(degree=3).fit(xs[:4], dt)  # the training trajectories; for its library and derivatives
    theta = np.concatenate(m.library_.transform(xs[:4]))
    from engine.sindy.derivatives import finite_difference

    y = np.concatenate([finite_difference(x, dt) for x in xs[:4]])
    for k in range(3):
        ref = np.linalg.lstsq(theta[:, mask[k]], y[:, k], rcond=None)[0]
        np.testing.assert_allclose(edited[k, mask[k]], ref, rtol=1e-7, atol=1e-9)
    # without the x1 term, x0 cannot follow x1: both errors grow a lot
    before, after = st.errors(st.coefs[r.knee], lib), st.errors(edited, lib)
    assert after["deriv_err"] > 100 * before["deriv_err"]
    assert after["rollout_err"] > 10 * before["rollout_err"]
    # flipping it back restores the sweep's model
    np.testing.assert_allclose(st.edited(r.knee, [(0, j), (0, j)]), st.coefs[r.knee], rtol=1e-8, atol=1e-10)
    # old files (coefficients only): zeroing works, adding or scoring does not
    np.savez(tmp_path / "old.npz", coefs=r.coefs, thresholds=r.thresholds)
    old = load_sweep(tmp_path / "old.npz")
    assert old.errors(old.coefs[0], lib) == {"deriv_err": None, "rollout_err": None}
    zeroed = old.edited(r.knee, [(0, j)])
    assert zeroed[0, j] == 0 and zeroed[1].tolist() == r.coefs[r.knee][1].tolist()
    off = int(np.flatnonzero(r.coefs[r.knee][0] == 0)[0])
    with pytest.raises(ValueError, match="needs a refit"):
        old.edited(r.knee, [(0, off)])


def test_stored_sweep_with_control_inputs_scores_like_the_sweep(tmp_path):
    from engine.sindy import load_sweep

    x, t, u, _ = damped_oscillator()
    r = threshold_sweep(x, t[1] - t[0], u, model=Sindy(degree=2), thresholds=8)
    np.savez(tmp_path / "s.npz", **r.arrays())
    st = load_sweep(tmp_path / "s.npz")
    assert st.rollouts["u"] is not None
    lib = r.model().library_
    for i in (0, 4):
        e = st.errors(st.coefs[i], lib)
        assert e["deriv_err"] == pytest.approx(r.table.loc[i, "deriv_err"], rel=1e-6)
        assert e["rollout_err"] == pytest.approx(r.table.loc[i, "rollout_err"], rel=1e-9)
