"""Discrete-time SINDy: a map x[k+1] = x[k] + dt f(x[k], u[k]), fitted on increments and
rolled out by exact forward steps (the right model of an RNN stepped once per frame)."""

import numpy as np
import pytest

from engine.sindy import Sindy, examples, load_sweep, threshold_sweep
from engine.sindy.export import model_from_dict, model_to_dict


def _linear_map(T=2000, seed=0):
    ex = examples.linear_map(T, seed)
    return ex.x[0], ex.u, examples.LINEAR_MAP_A, examples.LINEAR_MAP_B


def test_recovers_a_linear_map_with_input_and_rolls_it_out_exactly():
    x, u, A, B = _linear_map()
    m = Sindy(degree=1, threshold=0.05, discrete_time=True).fit(x, t=1.0, u=u)
    # terms [1, x0, x1, u0]: the increment x[k+1] - x[k] = (A - I) x + B u
    np.testing.assert_allclose(m.coef_, np.c_[np.zeros(2), A - np.eye(2), B], atol=1e-8)
    # written as a map, the increment per step after h[k] (dt = 1 here)
    assert m.equations() == ["x0[k+1] = x0[k] - 0.5 x0 + 0.2 x1 + 1 u0", "x1[k+1] = x1[k] - 0.3 x0 - 0.4 x1 + 0.5 u0"]
    sim = m.simulate(x[100], np.arange(50.0), u=u[100:150])
    assert sim.method == "euler"
    np.testing.assert_allclose(np.asarray(sim.x), x[100:150], atol=1e-9)
    # the same flow fitted as an ODE and integrated with RK4 does not reproduce the map
    ode = Sindy(degree=1, threshold=0.05).fit(x, t=1.0, u=u)
    assert np.abs(np.asarray(ode.simulate(x[100], np.arange(50.0), u=u[100:150]).x) - x[100:150]).max() > 0.1


def test_time_step_scales_the_increment_and_survives_export(tmp_path):
    x, u, A, B = _linear_map()
    m = Sindy(degree=1, threshold=0.05, discrete_time=True).fit(x, t=0.01, u=u)
    np.testing.assert_allclose(m.coef_[:, 1:3], (A - np.eye(2)) / 0.01, rtol=1e-8)
    back = model_from_dict(model_to_dict(m))
    assert back.discrete_time
    np.testing.assert_allclose(np.asarray(back.simulate(x[5], np.arange(20) * 0.01, u=u[5:25]).x), x[5:25], atol=1e-9)


def test_sweep_scores_rollouts_as_maps_and_keeps_that_when_stored(tmp_path):
    x, u, *_ = _linear_map()
    sw = threshold_sweep(x, t=1.0, u=u, model=Sindy(degree=2, discrete_time=True), thresholds=16)
    knee = sw.model()
    assert knee.discrete_time and int(np.count_nonzero(knee.coef_)) == 6  # the 6 true terms
    assert sw.table["rollout_err"].iloc[sw.knee] < 1e-6
    np.savez(tmp_path / "s.npz", **sw.arrays())
    stored = load_sweep(tmp_path / "s.npz")
    assert stored.rollout_method == "euler"
    err = stored.errors(sw.coefs[sw.knee], knee.library_)
    assert err["rollout_err"] == pytest.approx(sw.table["rollout_err"].iloc[sw.knee], abs=1e-9)


def test_too_short_trajectory_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 samples"):
        Sindy(degree=1, discrete_time=True).fit(np.zeros((1, 2)), t=1.0)
