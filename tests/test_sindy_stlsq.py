"""Our batched STLSQ against pysindy's STLSQ on the same library matrix."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from engine.sindy.derivatives import finite_difference
from engine.sindy.library import PolynomialLibrary
from engine.sindy import GramStats, stlsq, stlsq_gram

from tests.helpers.sindy_systems import damped_oscillator, ill_conditioned, linear3d, lorenz, tanh_network

ps = pytest.importorskip("pysindy")


def _pysindy_stlsq(X, Y, threshold, alpha=0.05, max_iter=20, unbias=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = ps.STLSQ(threshold=threshold, alpha=alpha, max_iter=max_iter, unbias=unbias)
        opt.fit(X, Y)
    return opt.coef_


def assert_same(ours, ref, rtol=1e-6):
    """Identical support, every kept coefficient within ``rtol`` relative."""
    ours = np.asarray(ours)
    np.testing.assert_array_equal(ours != 0, ref != 0, err_msg="support differs from pysindy")
    nz = ref != 0
    if nz.any():
        rel = np.abs(ours[nz] - ref[nz]) / np.abs(ref[nz])
        assert rel.max() <= rtol, f"max relative difference {rel.max():.3g} > {rtol}"


def _lib_data(xs, dt, degree):
    lib = PolynomialLibrary(degree).fit(xs[0].shape[1])
    X = np.concatenate(lib.transform(xs))
    Y = np.concatenate([finite_difference(x, dt) for x in xs])
    return X, Y


@pytest.fixture(scope="module")
def lorenz_lib():
    xs, dt = lorenz()
    return _lib_data(xs, dt, 3)


@pytest.mark.parametrize("threshold", [0.01, 0.1, 0.5, 1.0, 5.0, 100.0])
def test_lorenz_matches_pysindy(lorenz_lib, threshold):
    X, Y = lorenz_lib
    ref = _pysindy_stlsq(X, Y, threshold)
    assert_same(stlsq(X, Y, threshold)[0], ref)


def test_lorenz_matches_pysindy_without_unbias(lorenz_lib):
    X, Y = lorenz_lib
    ref = _pysindy_stlsq(X, Y, 0.1, unbias=False)
    assert_same(stlsq(X, Y, 0.1, unbias=False)[0], ref)


def test_lorenz_threshold_zero_keeps_everything(lorenz_lib):
    # every coefficient is kept, tiny ones included: compare normwise per equation
    X, Y = lorenz_lib
    ref = _pysindy_stlsq(X, Y, 0.0)
    ours = stlsq(X, Y, 0.0)[0]
    np.testing.assert_array_equal(ours != 0, ref != 0)
    for k in range(3):
        assert np.abs(ours[k] - ref[k]).max() <= 1e-6 * np.abs(ref[k]).max()


@pytest.mark.parametrize("threshold", [0.05, 0.3])
def test_linear_system_matches_pysindy(threshold):
    xs, dt, _ = linear3d()
    X, Y = _lib_data(xs, dt, 2)
    assert_same(stlsq(X, Y, threshold)[0], _pysindy_stlsq(X, Y, threshold))


@pytest.mark.parametrize("threshold", [0.05, 0.2])
def test_damped_oscillator_with_control_matches_pysindy(threshold):
    x, t, u, _ = damped_oscillator()
    dt = t[1] - t[0]
    lib = PolynomialLibrary(2).fit(3)
    X = lib.transform(np.concatenate([x, u], axis=1))
    Y = finite_difference(x, dt)
    assert_same(stlsq(X, Y, threshold)[0], _pysindy_stlsq(X, Y, threshold))


@pytest.mark.parametrize("threshold", [0.05, 0.2, 1.0])
def test_ill_conditioned_library_matches_pysindy(threshold):
    X, Y = ill_conditioned()
    ref = _pysindy_stlsq(X, Y, threshold)
    coef, info = stlsq(X, Y, threshold, return_info=True)
    assert_same(coef[0], ref)
    if threshold == 0.05:
        assert info.n_unbias_fallbacks > 0  # the exact lstsq path was needed and used


def test_tanh_network_many_terms_matches_pysindy():
    # a non-polynomial system: big supports, an ill-conditioned cubic library; at the small
    # thresholds pysindy's unbias (lstsq with cond=1e-6) truncates singular values, which the
    # exact fallback (one QR of [X y], truncated SVDs of R_S) reproduces
    xs, dt = tanh_network()
    X, Y = _lib_data(xs, dt, 3)
    fallbacks = 0
    for thr in (0.001, 0.005, 0.02, 0.1):
        coef, info = stlsq(X, Y, thr, return_info=True)
        fallbacks += info.n_unbias_fallbacks
        assert_same(coef[0], _pysindy_stlsq(X, Y, thr))
    assert fallbacks > 0


def test_batch_of_thresholds_equals_one_at_a_time():
    xs, dt = tanh_network()
    X, Y = _lib_data(xs, dt, 3)
    thr = np.logspace(-3, 0, 12)
    batch = stlsq(X, Y, thr)
    assert batch.shape == (12, Y.shape[1], X.shape[1])
    for i, th in enumerate(thr):
        single = stlsq(X, Y, th)[0]
        np.testing.assert_array_equal(batch[i] != 0, single != 0)
        np.testing.assert_allclose(batch[i], single, rtol=1e-10, atol=0)


def test_batch_sparsity_is_monotone_in_threshold(lorenz_lib):
    X, Y = lorenz_lib
    coefs = stlsq(X, Y, np.logspace(-3, 2, 20))
    n_terms = (coefs != 0).sum(axis=(1, 2))
    assert n_terms[0] >= 7 and n_terms[-1] == 0


def test_torch_backend_matches_numpy(lorenz_lib):
    pytest.importorskip("torch")
    X, Y = lorenz_lib
    thr = [0.05, 0.5, 2.0]
    a = stlsq(X, Y, thr)
    b = stlsq(X, Y, thr, device="cpu")
    np.testing.assert_array_equal(a != 0, b != 0)
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_torch_backend_ill_conditioned_matches_pysindy():
    pytest.importorskip("torch")
    X, Y = ill_conditioned()
    assert_same(stlsq(X, Y, 0.2, device="cpu")[0], _pysindy_stlsq(X, Y, 0.2))


def test_gram_only_path(lorenz_lib):
    X, Y = lorenz_lib
    stats = GramStats.from_data(X, Y)
    a = stlsq_gram(stats, [0.1, 1.0])
    b = stlsq(X, Y, [0.1, 1.0])
    np.testing.assert_array_equal(a != 0, b != 0)
    np.testing.assert_allclose(a, b, rtol=1e-7)
    # training errors from the Gram equal the direct ones
    np.testing.assert_allclose(stats.sse(b[0]), ((Y - X @ b[0].T) ** 2).sum(0), rtol=1e-6)


def test_info_reports_iterations(lorenz_lib):
    X, Y = lorenz_lib
    _, info = stlsq(X, Y, [0.1, 1.0], return_info=True)
    assert info.n_iter.shape == (2, 3) and info.converged.all()
    assert (info.n_iter >= 1).all() and (info.n_iter <= 20).all()


def test_info_carries_the_gram_of_the_data_as_given(lorenz_lib):
    X, Y = lorenz_lib
    _, info = stlsq(X, Y, 0.1, return_info=True)
    assert isinstance(info.gram, GramStats) and info.feature_norms is None
    np.testing.assert_allclose(info.gram.G, X.T @ X, rtol=1e-12)
    np.testing.assert_allclose(info.gram.b, X.T @ Y, rtol=1e-12)
    # normalised columns: the solves see unit-norm columns, the Gram stays in the data's units
    _, info_n = stlsq(X, Y, 0.1, return_info=True, normalize_columns=True)
    np.testing.assert_allclose(info_n.feature_norms, np.linalg.norm(X, axis=0), rtol=1e-12)
    np.testing.assert_allclose(info_n.gram.G, X.T @ X, rtol=1e-10)
    _, info_g = stlsq_gram(info.gram, 0.1, return_info=True, normalize_columns=True)
    assert info_g.gram is info.gram


def test_max_iter_matches_pysindy_when_not_converged():
    xs, dt = tanh_network()
    X, Y = _lib_data(xs, dt, 3)
    ref = _pysindy_stlsq(X, Y, 0.05, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = stlsq(X, Y, 0.05, max_iter=2)[0]
    assert_same(ours, ref)


def test_degenerate_libraries_do_not_crash():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    X = np.concatenate([X, X[:, :2], np.zeros((200, 1))], axis=1)  # duplicated and zero columns
    Y = X[:, :2] @ np.array([[1.0, -2.0], [0.5, 3.0]]) + 0.01 * rng.standard_normal((200, 2))
    for alpha in (0.05, 0.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coef = stlsq(X, Y, [0.0, 0.1, 10.0], alpha=alpha)
        assert np.isfinite(coef).all()
        # pysindy does the same, quirks included (with alpha=0 the singular ridge keeps
        # huge coefficients on the duplicated columns past any threshold)
        for i, th in enumerate([0.0, 0.1, 10.0]):
            ref = _pysindy_stlsq(X, Y, th, alpha=alpha)
            np.testing.assert_array_equal(coef[i] != 0, ref != 0)
            np.testing.assert_allclose(coef[i], ref, rtol=1e-6, atol=1e-9)
    # few samples, many features
    coef = stlsq(rng.standard_normal((5, 30)), rng.standard_normal((5, 2)), 0.1)
    assert np.isfinite(coef).all()


def test_zero_target_and_huge_threshold():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 6))
    Y = np.zeros((100, 2))
    Y[:, 1] = X[:, 0]
    coef = stlsq(X, Y, 0.5)[0]
    assert (coef[0] == 0).all()
    assert coef[1, 0] == pytest.approx(1.0)
    assert_same(coef, _pysindy_stlsq(X, Y, 0.5))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_raises(bad):
    X = np.ones((10, 3))
    Y = np.ones((10, 1))
    X[3, 1] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        stlsq(X, Y, 0.1)


def test_invalid_parameters_raise():
    X, Y = np.ones((10, 3)), np.ones(10)
    with pytest.raises(ValueError):
        stlsq(X, Y, -1.0)
    with pytest.raises(ValueError):
        stlsq(X, Y, 0.1, alpha=-1)
    with pytest.raises(ValueError):
        stlsq(X, Y, 0.1, max_iter=0)
    with pytest.raises(ValueError):
        stlsq(X, np.ones(9), 0.1)
