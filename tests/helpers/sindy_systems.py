"""The SINDy tests' systems: :mod:`engine.sindy.examples`, cached and unpacked the way the tests use them.

Each generator integrates once per argument set (``lru_cache``); tests must not modify what
they get back.  ``ill_conditioned`` is a library matrix, not a system: it lives here only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from engine.sindy import examples

LORENZ_TERMS = examples.lorenz_terms()  # (equation, term) -> coefficient, library term names
control_signal = examples.control_signal


@lru_cache(maxsize=None)
def lorenz(n_traj: int = 1, T: float = 10.0, dt: float = 0.002, seed: int = 0):
    """Clean Lorenz trajectories (list of (n, 3) arrays) and the step."""
    ex = examples.lorenz(n_traj, T, dt, seed)
    return ex.x, dt


@lru_cache(maxsize=None)
def linear3d(n_traj: int = 4, T: float = 10.0, dt: float = 0.01, seed: int = 1):
    """Trajectories, the step and the matrix ``A`` of ``x' = A x``."""
    ex = examples.linear_3d(n_traj, T, dt, seed)
    return ex.x, dt, ex.coef(["x0", "x1", "x2"])


@lru_cache(maxsize=None)
def damped_oscillator(T: float = 20.0, dt: float = 0.005, omega: float = 2.0, zeta: float = 0.1, gain: float = 1.5):
    """``(x (T, 2), t, u (T, 1), params)`` of the driven damped oscillator."""
    ex = examples.damped_oscillator(T, dt, omega, zeta, gain)
    return ex.x[0], ex.t, ex.u, ex.params


@lru_cache(maxsize=None)
def tanh_network(n: int = 5, n_traj: int = 6, T: int = 1500, dt: float = 0.01, seed: int = 4):
    """A small CfC-like network x' = -x + tanh(W x + b): bounded, smooth, not polynomial."""
    return examples.tanh_network(n, n_traj, T, dt, seed).x, dt


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
