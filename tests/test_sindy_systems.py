"""The shared SINDy test systems (tests/helpers/sindy_systems.py) are sane."""

from __future__ import annotations

import numpy as np
import pytest

from engine.sindy import Sindy, examples
from engine.sindy.derivatives import finite_difference
from engine.sindy.library import PolynomialLibrary, default_names
from tests.helpers.sindy_systems import damped_oscillator, ill_conditioned, lorenz, tanh_network


def test_systems_are_finite_and_bounded():
    xs, _ = lorenz()
    assert np.isfinite(xs[0]).all() and np.abs(xs[0]).max() < 60
    x, t, u, _ = damped_oscillator()
    assert x.shape == (len(t), 2) and u.shape == (len(t), 1)
    X, Y = ill_conditioned()
    s = np.linalg.svd(X, compute_uv=False)
    assert s[0] / s[-1] > 1e6
    xs, _ = tanh_network()
    assert all(np.abs(x).max() <= 1.5 for x in xs)


@pytest.mark.parametrize("name", ["lorenz", "linear_3d", "damped_oscillator", "linear_map"])
def test_each_example_s_true_terms_give_its_derivatives(name):
    make = {"lorenz": lambda: examples.lorenz(n_traj=2, T=2.0), "linear_3d": lambda: examples.linear_3d(n_traj=2, T=2.0),
            "damped_oscillator": lambda: examples.damped_oscillator(T=5.0), "linear_map": lambda: examples.linear_map(T=200)}
    ex = make[name]()
    n, m = ex.x[0].shape[1], 0 if ex.u is None else ex.u.shape[1]
    lib = PolynomialLibrary(2).fit(n + m)
    coef = ex.coef(lib.get_feature_names(default_names(n, m)))
    assert np.count_nonzero(coef) == len(ex.terms) > 0
    for x in ex.x:
        z = x if ex.u is None else np.concatenate([x, ex.u], axis=1)
        if ex.discrete_time:  # the increment per step, exactly
            np.testing.assert_allclose(lib.transform(z[:-1]) @ coef.T, np.diff(x, axis=0) / ex.dt, atol=1e-12)
        else:  # the flow, up to the finite differences' error
            d = finite_difference(x, ex.t, order=4)[2:-2]
            err = np.abs(lib.transform(z)[2:-2] @ coef.T - d).max()
            assert err < 1e-4 * np.abs(d).max(), err


def test_an_example_s_coefficients_are_what_sindy_recovers():
    ex = examples.lorenz(T=5.0)
    m = Sindy(degree=2, threshold=0.1).fit(ex.x, ex.t)
    np.testing.assert_allclose(m.coef_, ex.coef(m.feature_names_), atol=2e-3 * 28)
