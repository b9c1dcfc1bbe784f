"""The shared SINDy test systems (tests/helpers/sindy_systems.py) are sane."""

from __future__ import annotations

import numpy as np

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
