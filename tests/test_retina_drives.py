"""The retina SINDy step's control inputs: one drive per state -- the CfC's own step from a
reference state, or the feature direction that moves it with that drive's own nonlinearity
(engine.analyses.retina.sindy)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.analyses.retina.sequences import control_inputs
from engine.analyses.retina.sindy import drive_directions, drive_shapes, step_drives


def _system(n=6000, seed=0):
    """Two states, each moved by its own direction of three features; state 0 answers its
    drive asymmetrically (d + 0.8 d^2), state 1 linearly.  The map reads u[k+1]."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n, 3))
    d0, d1 = u @ np.array([1.0, -1.0, 0.0]) / 2**0.5, u[:, 2]
    x = np.zeros((n, 2))
    for k in range(n - 1):
        x[k + 1, 0] = 0.5 * x[k, 0] + 0.3 * (d0[k + 1] + 0.8 * d0[k + 1] ** 2)
        x[k + 1, 1] = 0.7 * x[k, 1] + 0.2 * d1[k + 1]
    return x, u


def test_drive_directions_find_the_feature_direction_that_moves_each_state():
    x, u = _system()
    comps = drive_directions([x], [u], u.mean(0), discrete=True)
    cos = lambda a, b: abs(a @ b) / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
    assert cos(comps[0], np.array([1.0, -1.0, 0.0])) > 0.99
    assert cos(comps[1], np.array([0.0, 0.0, 1.0])) > 0.99


def test_drive_shapes_recover_each_drives_nonlinearity_and_control_inputs_apply_it():
    x, u = _system()
    mean = u.mean(0)
    comps = drive_directions([x], [u], mean, discrete=True)
    shape = drive_shapes([x], [u], mean, comps, discrete=True, degree=3)
    assert shape.shape == (2, 3)
    d = (u - mean) @ comps.T
    # state 0: d^2 weighs 0.8 of d in the truth, in the units of the fitted direction
    scale = np.std(d[:, 0]) / np.std(u @ np.array([1.0, -1.0, 0.0]) / 2**0.5)
    assert shape[0, 1] / shape[0, 0] == pytest.approx(0.8 / scale, rel=0.05)
    assert abs(shape[0, 2] / shape[0, 0]) < 0.02
    # state 1 is linear in its drive: no square, no cube
    assert abs(shape[1, 1] / shape[1, 0]) < 0.02 and abs(shape[1, 2] / shape[1, 0]) < 0.02
    # the controls are the polynomials, unit variance, at the next frame for a map
    c = control_inputs(u, mean, comps, True, shape)
    poly = sum(shape[:, j] * d ** (j + 1) for j in range(3))
    np.testing.assert_allclose(c[:-1], poly[1:])
    np.testing.assert_allclose(c[-1], poly[-1])
    np.testing.assert_allclose(poly[1:].std(0), 1.0, rtol=1e-6)  # over the rows it was fitted on
    # without a shape the drive itself
    np.testing.assert_allclose(control_inputs(u, mean, comps, False), d)


def test_a_drive_that_never_moves_its_state_stays_linear_not_nan():
    x, u = _system()
    x[:, 1] = 0.25  # a saturated unit
    mean = u.mean(0)
    comps = drive_directions([x], [u], mean, discrete=True)
    shape = drive_shapes([x], [u], mean, comps, discrete=True, degree=2)
    assert np.isfinite(shape).all()
    np.testing.assert_array_equal(shape[1], [1.0, 0.0])


def test_a_shaped_drive_is_held_at_its_edge_beyond_the_range_it_was_fitted_on():
    comps = np.eye(2)
    shape = np.array([[1.0, 0.0, -0.5], [1.0, 0.5, 0.0]])  # a cubic turns back beyond |d| = 0.8
    bounds = np.array([[-1.0, 1.0], [-2.0, 0.5]])
    u = np.array([[0.5, 0.2], [3.0, -5.0], [-4.0, 2.0]])
    c = control_inputs(u, np.zeros(2), comps, False, shape, bounds)
    inside = np.array([0.5 - 0.5 * 0.125, 0.2 + 0.5 * 0.04])
    np.testing.assert_allclose(c[0], inside)  # within the range: the polynomial itself
    np.testing.assert_allclose(c[1], [1.0 - 0.5, -2.0 + 0.5 * 4.0])  # 3.0 -> 1.0, -5.0 -> -2.0
    np.testing.assert_allclose(c[2], [-1.0 + 0.5, 0.5 + 0.5 * 0.25])  # -4.0 -> -1.0, 2.0 -> 0.5
    # without bounds the cubic runs on: at d = 3 it has turned to -10.5
    assert control_inputs(u, np.zeros(2), comps, False, shape)[1, 0] == pytest.approx(3.0 - 0.5 * 27)


def test_step_drives_are_the_cfcs_own_step_from_the_reference_state_at_the_next_frame():
    import torch

    from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig

    torch.manual_seed(0)
    model = RetinaCfC(RetinaCfCConfig(n_cells=2, n_frames=3, frame_size=(8, 8), channels=(2,), kernel_sizes=(3,),
                                      strides=(2,), encoder_features=4, units=3)).eval()
    u = np.random.default_rng(0).standard_normal((5, 4))
    h_ref = np.array([0.1, -0.2, 0.3])
    with torch.no_grad():
        _, nxt = model.step(torch.as_tensor(u, dtype=torch.float32), torch.as_tensor(np.tile(h_ref, (5, 1)),
                                                                                    dtype=torch.float32))
    want = nxt.double().numpy() - h_ref
    np.testing.assert_allclose(step_drives(model, u, h_ref, discrete=False), want, atol=1e-6)
    # a map pairs h[k] with the step that reads u[k+1]; the last frame repeats
    mapped = step_drives(model, u, h_ref, discrete=True)
    np.testing.assert_allclose(mapped[:-1], want[1:], atol=1e-6)
    np.testing.assert_allclose(mapped[-1], want[-1], atol=1e-6)
    assert np.abs(want).max() > 1e-3  # the drives move: not a test of zeros
