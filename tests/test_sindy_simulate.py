"""Batched simulation: accuracy, control inputs, divergence detection that never hangs."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.sindy import Sindy, simulate
from engine.sindy.library import PolynomialLibrary

from tests.helpers.sindy_systems import control_signal, damped_oscillator, lorenz

pytest.importorskip("torch")


def _quadratic_blowup_model():
    """x' = x^2 (exact solution 2/(1-2t) from x0=2: blows up at t=0.5)."""
    coef = np.zeros((1, 3))
    coef[0, 2] = 1.0  # terms: 1, x0, x0^2
    return Sindy.from_coefficients(coef, degree=2)


@pytest.mark.timeout(60)
def test_diverging_system_reports_divergence_time_quickly():
    m = _quadratic_blowup_model()
    assert m.equations() == ["(x0)' = 1 x0^2"]
    t = np.arange(0, 10, 0.01)  # 1000 steps, the blow-up is at 0.5
    t0 = time.perf_counter()
    res = m.simulate(np.array([2.0]), t, bound=1e6)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10
    assert res.diverged.tolist() == [True]
    assert res.divergence_time[0] == pytest.approx(0.5, abs=0.02)
    k = int(np.searchsorted(t, res.divergence_time[0]))
    assert np.isnan(res.x[k:]).all() and np.isfinite(res.x[: k - 1]).all()  # frozen as NaN after
    assert res.completed_time <= 0.6  # stopped once everything diverged


@pytest.mark.timeout(60)
def test_adaptive_integrator_detects_divergence_too():
    m = _quadratic_blowup_model()
    res = m.simulate(np.array([2.0]), np.arange(0, 10, 0.01), method="adaptive", bound=1e6)
    assert res.diverged[0]
    assert res.divergence_time[0] == pytest.approx(0.5, abs=1e-3)


def test_batch_mixes_diverging_and_bounded_trajectories():
    m = _quadratic_blowup_model()
    x0 = np.array([[2.0], [-1.0], [0.1], [4.0]])
    t = np.arange(0, 3, 0.001)
    res = m.simulate(x0, t)
    assert res.x.shape == (4, len(t), 1)
    assert res.diverged.tolist() == [True, False, False, True]
    np.testing.assert_allclose(res.divergence_time[[0, 3]], [0.5, 0.25], atol=0.01)
    # the bounded ones follow the exact solution x0/(1 - x0 t)
    for i in (1, 2):
        exact = x0[i, 0] / (1 - x0[i, 0] * t)
        np.testing.assert_allclose(res.x[i, :, 0], exact, rtol=1e-8)


def test_rk4_matches_the_true_lorenz_flow():
    xs, dt = lorenz()
    m = Sindy(degree=2, threshold=0.5).fit(xs[0], dt)
    t = np.arange(0, 1, dt)
    res = m.simulate(xs[0][0], t)
    assert res.x.shape == (len(t), 3) and not res.any_diverged
    assert np.abs(res.x - xs[0][: len(t)]).max() < 0.05
    assert np.asarray(res).shape == (len(t), 3)


def test_rk4_agrees_with_adaptive_and_pysindy():
    ps = pytest.importorskip("pysindy")
    xs, dt = lorenz()
    m = Sindy(degree=2, threshold=0.5).fit(xs[0], dt)
    ref = ps.SINDy(optimizer=ps.STLSQ(threshold=0.5), feature_library=ps.PolynomialLibrary(2)).fit(xs[0], t=dt)
    t = np.arange(0, 0.5, dt)
    a = m.simulate(xs[0][0], t, substeps=2).x
    b = m.simulate(xs[0][0], t, method="adaptive").x
    c = ref.simulate(xs[0][0], t)
    np.testing.assert_allclose(a, c, atol=1e-4)
    np.testing.assert_allclose(b, c, atol=1e-3)


def test_per_trajectory_coefficients():
    lib = PolynomialLibrary(1).fit(1)  # terms 1, x
    coef = np.array([[[0.0, -1.0]], [[0.0, -2.0]]])  # x' = -x, x' = -2x
    t = np.linspace(0, 1, 101)
    res = simulate(coef, lib, np.array([[1.0], [1.0]]), t)
    np.testing.assert_allclose(res.x[0, :, 0], np.exp(-t), rtol=1e-7)
    np.testing.assert_allclose(res.x[1, :, 0], np.exp(-2 * t), rtol=1e-7)


def test_control_input_array_and_callable():
    x, t, u, p = damped_oscillator()
    dt = t[1] - t[0]
    m = Sindy(degree=2, threshold=0.05).fit(x, dt, u=u)
    n = 2000
    with pytest.raises(ValueError, match="u is required"):
        m.simulate(x[0], t[:n])
    lin = m.simulate(x[0], t[:n], u=u[:n])
    assert np.abs(lin.x - x[:n]).max() < 0.01
    hold = m.simulate(x[0], t[:n], u=u[:n], u_interp="hold")
    assert np.abs(hold.x - x[:n]).max() < 0.05
    fn = m.simulate(x[0], t[:n], u=lambda tt: np.array([control_signal(tt)]))
    assert np.abs(fn.x - x[:n]).max() < 0.01
    ada = m.simulate(x[0], t[:n], u=u[:n], method="adaptive")
    assert np.abs(ada.x - x[:n]).max() < 0.01
    # a batch with its own inputs
    ub = np.stack([u[:n], 2 * u[:n]])
    res = m.simulate(np.stack([x[0], x[0]]), t[:n], u=ub)
    assert res.x.shape == (2, n, 2) and not np.allclose(res.x[0], res.x[1])


@pytest.mark.timeout(60)
def test_wall_clock_limit_stops_early():
    m = _quadratic_blowup_model()
    x0 = np.full((200, 1), -0.5)
    t = np.linspace(0, 100, 200_001)
    res = m.simulate(x0, t, max_wall_time=0.2)
    assert res.timed_out and res.completed_time < 100
    assert res.wall_time < 5
    assert not res.any_diverged


def test_bad_inputs_raise():
    m = _quadratic_blowup_model()
    with pytest.raises(ValueError):
        m.simulate(np.array([np.nan]), np.arange(3.0))
    with pytest.raises(ValueError):
        m.simulate(np.array([1.0]), np.array([0.0, 0.2, 0.1]))
    with pytest.raises(ValueError):
        m.simulate(np.array([1.0]), 1.0)
    with pytest.raises(ValueError):
        m.simulate(np.array([1.0, 2.0]), np.arange(3.0))
    with pytest.raises(ValueError):
        m.simulate(np.array([1.0]), np.arange(3.0), u=np.ones((3, 1)))


def test_torch_backend_equals_numpy_backend():
    xs, dt = lorenz()
    m = Sindy(degree=2, threshold=0.5).fit(xs[0], dt)
    x0 = xs[0][::500][:6]
    t = np.arange(0, 0.5, dt)
    a = m.simulate(x0, t, backend="numpy")
    b = m.simulate(x0, t, backend="torch")
    assert a.info["backend"] == "numpy" and b.info["backend"] == "torch"
    np.testing.assert_allclose(a.x, b.x, rtol=1e-10, atol=1e-10)
    q = _quadratic_blowup_model()
    ra = q.simulate(np.array([[2.0], [0.5]]), np.arange(0, 3, 0.01), backend="numpy")
    rb = q.simulate(np.array([[2.0], [0.5]]), np.arange(0, 3, 0.01), backend="torch")
    np.testing.assert_array_equal(ra.diverged, rb.diverged)
    np.testing.assert_allclose(ra.divergence_time, rb.divergence_time)
