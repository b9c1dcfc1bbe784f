"""PDE_N4 simulator: known single-neuron dynamics, input field, HDF5 ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.errors import DataError
from engine.data.pde_n4 import TYPES, PDEN4Config, grid_positions, phi, psi, read_h5, simulate, write_h5


def test_zero_coupling_is_single_neuron_dynamics():
    cfg = PDEN4Config(n_neurons=40, grid=4, n_frames=400, n_runs=2, gain=0.0, dt=0.05, burn_in=0)
    d = simulate(cfg, device="cpu")
    tau, s = TYPES[d.types, 0], TYPES[d.types, 1]
    # Euler steps of dx/dt = -x/tau + s tanh(x), neuron by neuron
    np.testing.assert_allclose(d.dxdt, phi(d.x, tau, s), atol=1e-5)
    np.testing.assert_allclose(d.x[:, 1:], d.x[:, :-1] + cfg.dt * phi(d.x[:, :-1], tau, s), atol=1e-5)


def test_zero_coupling_reaches_analytic_fixed_points():
    cfg = PDEN4Config(n_neurons=40, grid=0, n_frames=10, n_runs=1, gain=0.0, dt=0.05, burn_in=3000)
    d = simulate(cfg, device="cpu")
    x_end = d.x[0, -1]
    for k, (tau, s, _, _) in enumerate(TYPES):
        sel = d.types == k
        if s * tau <= 1:  # monostable: x -> 0
            np.testing.assert_allclose(x_end[sel], 0.0, atol=1e-3)
        else:  # bistable: x/tau = s tanh(x), |x| > 0
            np.testing.assert_allclose(np.abs(x_end[sel]) / tau, s * np.tanh(np.abs(x_end[sel])), atol=1e-4)
            assert np.all(np.abs(x_end[sel]) > 0.5)


def test_coupling_and_modulation_match_the_equation():
    cfg = PDEN4Config(n_neurons=30, grid=3, n_frames=50, n_runs=1, gain=2.0, burn_in=0)
    d = simulate(cfg, device="cpu")
    x = d.x[0, 10].astype(float)
    p = TYPES[d.types]
    drive = cfg.gain * d.W @ psi(x, p[:, 2], p[:, 3])
    drive[:9] *= d.field[10]
    np.testing.assert_allclose(d.dxdt[0, 10], phi(x, p[:, 0], p[:, 1]) + drive, atol=1e-4)
    assert np.all(np.diag(d.W) == 0)
    assert np.bincount(d.types).tolist() == [8, 8, 7, 7]
    for k in range(len(TYPES)):  # the gauge convention: psi'(0) = 1 for every type
        assert psi(1e-4, TYPES[k, 2], TYPES[k, 3]) / 1e-4 == pytest.approx(1.0, abs=1e-3)


def test_input_field_moves_and_has_unit_mean():
    cfg = PDEN4Config(n_neurons=64, grid=8, n_frames=2000, n_runs=1)
    d = simulate(cfg, device="cpu")
    assert d.field.shape == (2000, 64) and d.pos.shape == (64, 2)
    assert abs(d.field.mean() - 1.0) < 0.05 and d.field.min() > 0
    assert np.abs(np.diff(d.field, axis=0)).mean() > 1e-4  # it moves
    assert grid_positions(2).tolist() == [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]


def test_sparse_connectivity_and_h5_round_trip(tmp_path):
    cfg = PDEN4Config(n_neurons=50, grid=5, n_frames=20, n_runs=2, connectivity=0.2, noise=0.05,
                      input="additive")
    d = simulate(cfg, device="cpu")
    assert 0.12 < np.count_nonzero(d.W) / 50**2 < 0.28
    back = read_h5(write_h5(d, tmp_path / "sim.h5"))
    assert back.config == cfg
    for name in ("x", "dxdt", "field", "W", "types", "pos"):
        np.testing.assert_array_equal(getattr(back, name), getattr(d, name))
    assert back.x.shape == (2, 20, 50)


def test_bad_input():
    with pytest.raises(ValueError, match="input neurons"):
        PDEN4Config(n_neurons=10, grid=4)
    with pytest.raises(ValueError, match="connectivity"):
        PDEN4Config(connectivity=0)
    with pytest.raises(DataError, match="no such file"):
        read_h5("/nonexistent/sim.h5")
