"""Derivative targets from the model itself (its one-step map, its closed-form time
derivative by autograd) against finite differences, on small models with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from engine.sindy import Sindy
from engine.sindy.targets import compare_targets, flow_targets, map_targets

A = np.array([[0.9, 0.2], [-0.1, 0.7]])
B = np.array([[0.5], [0.3]])


def _step(h, u):
    return h @ A.T + u @ B.T


def _trajectory(T=400, seed=0, on_a_line=False):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(T, 1))
    x = np.zeros((T, 2))
    for k in range(T - 1):
        x[k + 1] = _step(x[k:k + 1], u[k + 1:k + 2])[0]
    if on_a_line:  # a trajectory that never leaves x1 = x0 (say the inputs all align)
        x = np.repeat(x[:, :1], 2, axis=1)
    return x, u


def test_map_targets_at_the_collected_states_are_the_forward_differences():
    x, u = _trajectory()
    t = map_targets(_step, x[:-1], u[1:], dt=0.5)
    np.testing.assert_allclose(t.y_on, (x[1:] - x[:-1]) / 0.5, atol=1e-12)
    assert compare_targets(t.y_on, (x[1:] - x[:-1]) / 0.5).max() < 1e-12


def test_perturbed_states_identify_what_the_trajectory_cannot():
    x, u = _trajectory(on_a_line=True)  # x0 = x1 throughout: A is not identifiable from it
    t = map_targets(_step, x, u, dt=1.0, n_perturb=2, sigma=0.2)
    assert t.x_off.shape == (2 * len(x), 2) and np.abs(t.x_off[:, 0] - t.x_off[:, 1]).max() > 0.01
    xs = np.concatenate([x, t.x_off])
    ys = np.concatenate([t.y_on, t.y_off])
    us = np.concatenate([u, u[t.base]])
    m = Sindy(degree=1, threshold=1e-3, alpha=0.0, discrete_time=True).fit(xs, x_dot=ys, u=us)
    np.testing.assert_allclose(m.coef_[:, 1:3], A - np.eye(2), atol=1e-9)
    np.testing.assert_allclose(m.coef_[:, 3:], B, atol=1e-9)
    # on the trajectory alone the two states are collinear: the fit cannot split them
    only = Sindy(degree=1, threshold=1e-3, alpha=0.0, discrete_time=True).fit(x, x_dot=t.y_on, u=u)
    assert np.abs(only.coef_[:, 1:3] - (A - np.eye(2))).max() > 0.05


def test_flow_targets_by_autograd_match_the_vector_field_and_finite_differences():
    torch = pytest.importorskip("torch")
    a, dt = 2.0, 0.01

    def step_ts(u, h, tau):  # the exact solution of h' = -a (h - u) after tau: a closed form
        e = torch.exp(-a * tau)
        return h * e + (1 - e) * u

    rng = np.random.default_rng(1)
    T = 600
    u = np.repeat(np.sin(np.arange(T) * dt * 3)[:, None], 2, axis=1)
    h = np.zeros((T, 2))
    h[0] = rng.normal(size=2)
    for k in range(T - 1):  # input held over each step, as the closed form assumes
        h[k + 1] = step_ts(torch.tensor(u[k + 1]), torch.tensor(h[k]), torch.tensor(dt)).numpy()
    exact = flow_targets(step_ts, h[:-1], u[1:], dt)  # d/dtau at the state reached: h[k+1]
    np.testing.assert_allclose(exact, -a * (h[1:] - u[1:]), rtol=1e-4, atol=1e-5)
    fd = (h[2:] - h[:-2]) / (2 * dt)  # centred differences at h[1:-1]
    diff = compare_targets(fd, exact[:-1])
    assert diff.max() < 0.1  # close, and the gap is the differences' own error
    assert diff.min() > 1e-4


def test_the_cfc_step_map_reproduces_its_own_run_and_pairs_the_next_frame():
    torch = pytest.importorskip("torch")
    from engine.analyses.retina.sindy import cfc_step
    from engine.analyses.retina.steps import run_model
    from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig

    torch.manual_seed(0)
    cfg = RetinaCfCConfig(n_cells=3, n_frames=4, frame_size=(16, 16), units=5, mode="default")
    model = RetinaCfC.from_config(cfg).eval()
    stim = torch.randn(300, 16, 16)
    u, x, _ = run_model(model, stim, 4)
    # the state after frame k+1 is the step from x[k] reading frame k+1's features
    t = map_targets(cfc_step(model), x[:-1], u[1:], dt=0.01)
    fd = (x[1:] - x[:-1]) / 0.01
    assert compare_targets(t.y_on, fd).max() < 1e-4  # float32 steps
    wrong = map_targets(cfc_step(model), x[:-1], u[:-1], dt=0.01)
    assert compare_targets(wrong.y_on, fd).max() > 0.05
