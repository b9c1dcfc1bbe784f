"""Shared test systems for the SINDy tests: cached generators of known dynamics."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.integrate import solve_ivp

LORENZ_TERMS = {  # (equation, term) -> coefficient, degree-3 library names
    (0, "x0"): -10.0,
    (0, "x1"): 10.0,
    (1, "x0"): 28.0,
    (1, "x1"): -1.0,
    (1, "x0 x2"): -1.0,
    (2, "x2"): -8.0 / 3.0,
    (2, "x0 x1"): 1.0,
}


def _lorenz(t, z):
    return [10 * (z[1] - z[0]), z[0] * (28 - z[2]) - z[1], z[0] * z[1] - 8 / 3 * z[2]]


@lru_cache(maxsize=None)
def lorenz(n_traj: int = 1, T: float = 10.0, dt: float = 0.002, seed: int = 0):
    """Clean Lorenz trajectories (list of (n, 3) arrays) and the step."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, T, dt)
    xs = []
    for i in range(n_traj):
        x0 = [-8, 8, 27] if i == 0 else list(rng.uniform([-15, -15, 10], [15, 15, 40]))
        sol = solve_ivp(_lorenz, (0, t[-1]), x0, t_eval=t, rtol=1e-10, atol=1e-10)
        xs.append(sol.y.T.copy())
    return xs, dt


@lru_cache(maxsize=None)
def linear3d(n_traj: int = 4, T: float = 10.0, dt: float = 0.01, seed: int = 1):
    A = np.array([[-0.1, 2.0, 0.0], [-2.0, -0.1, 0.5], [0.0, 0.0, -0.3]])
    rng = np.random.default_rng(seed)
    t = np.arange(0, T, dt)
    xs = []
    for _ in range(n_traj):
        sol = solve_ivp(lambda _, x: A @ x, (0, t[-1]), rng.uniform(-2, 2, 3), t_eval=t, rtol=1e-10, atol=1e-12)
        xs.append(sol.y.T.copy())
    return xs, dt, A


def control_signal(t):
    return np.sin(1.3 * t) + 0.5 * np.cos(3.1 * t)


@lru_cache(maxsize=None)
def damped_oscillator(T: float = 20.0, dt: float = 0.005, omega: float = 2.0, zeta: float = 0.1, gain: float = 1.5):
    """pos' = vel, vel' = -omega^2 pos - 2 zeta omega vel + gain u, with a known u(t)."""
    t = np.arange(0, T, dt)

    def f(tt, x):
        return [x[1], -(omega**2) * x[0] - 2 * zeta * omega * x[1] + gain * control_signal(tt)]

    sol = solve_ivp(f, (0, t[-1]), [1.0, 0.0], t_eval=t, rtol=1e-11, atol=1e-12)
    return sol.y.T.copy(), t, control_signal(t)[:, None], dict(omega=omega, zeta=zeta, gain=gain)


@lru_cache(maxsize=None)
def ill_conditioned(N: int = 3000, F: int = 40, K: int = 4, cond: float = 1e7, seed: int = 3):
    """Random library with singular values spread over ``cond``, sparse truth, small noise."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((N, F)))
    V, _ = np.linalg.qr(rng.standard_normal((F, F)))
    s = np.logspace(0, -np.log10(cond), F)
    X = (U * s) @ V.T * 50.0
    W = np.where(rng.random((K, F)) < 0.3, rng.choice([-1, 1], (K, F)) * rng.uniform(0.5, 3, (K, F)), 0.0)
    Y = X @ W.T + 1e-3 * rng.standard_normal((N, K))
    return X, Y


@lru_cache(maxsize=None)
def tanh_network(n: int = 5, n_traj: int = 6, T: int = 1500, dt: float = 0.01, seed: int = 4):
    """A small CfC-like network x' = -x + tanh(W x + b): bounded, smooth, not polynomial."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 1.8 / np.sqrt(n), (n, n))
    b = rng.normal(0, 0.3, n)
    t = np.arange(T) * dt
    xs = []
    for _ in range(n_traj):
        sol = solve_ivp(lambda _, x: -x + np.tanh(W @ x + b), (0, t[-1]), rng.uniform(-1, 1, n), t_eval=t, rtol=1e-9, atol=1e-11)
        xs.append(sol.y.T.copy())
    return xs, dt
