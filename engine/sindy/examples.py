"""Reference systems with known equations, shared by the tests, the examples and the benchmarks.

In the spirit of pysindy's ``utils/odes.py``: each function integrates (or steps) one system and
returns an :class:`Example`, the sample times ``t``, the trajectories ``x`` and the true
coefficient of every ``(equation, library term)`` in the default names (``x0``, ``x1 x2``,
``u0``), so a fit can be checked term by term (:meth:`Example.coef` lays them out on a library).

* :func:`lorenz` — the Lorenz system (chaotic, quadratic);
* :func:`linear_3d` — a damped linear rotation in 3-D;
* :func:`damped_oscillator` — a driven damped oscillator with a known input (SINDYc);
* :func:`tanh_network` — ``x' = -x + tanh(W x + b)``: bounded and smooth but not polynomial,
  so no library has its true terms (a stand-in for an RNN's hidden states);
* :func:`linear_map` — a discrete-time linear map with an input.

scipy is imported by the functions that integrate, not by this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["Example", "lorenz", "lorenz_terms", "linear_3d", "damped_oscillator", "control_signal", "tanh_network",
           "linear_map"]

TIGHT = dict(rtol=1e-10, atol=1e-10)  # the integrator's error stays far below any fit's


@dataclass(frozen=True)
class Example:
    """Sampled trajectories of a system with known equations.

    Attributes
    ----------
    t : ndarray (T,)
        Sample times, the same for every trajectory.
    x : list of ndarray (T, n)
        The trajectories.
    terms : dict (equation, term) -> float
        The true coefficients by library term name; empty when the system is not polynomial.
    u : ndarray (T, m) or None
        Control inputs, the same for every trajectory.
    discrete_time : bool
        A map: ``terms`` are those of the increment ``x[k+1] - x[k]`` per step.
    params : dict
        The system's parameters.
    """

    t: np.ndarray
    x: list[np.ndarray]
    terms: dict[tuple[int, str], float]
    u: np.ndarray | None = None
    discrete_time: bool = False
    params: dict[str, float] = field(default_factory=dict)

    @property
    def dt(self) -> float:
        return float(self.t[1] - self.t[0])

    def coef(self, feature_names: Sequence[str]) -> np.ndarray:
        """The true coefficients ``(n_states, n_terms)`` on a library with these term names."""
        names = list(feature_names)
        out = np.zeros((self.x[0].shape[1], len(names)))
        for (i, term), c in self.terms.items():
            out[i, names.index(term)] = c
        return out


def _integrate(f, x0s, t: np.ndarray, **tol) -> list[np.ndarray]:
    from scipy.integrate import solve_ivp

    return [solve_ivp(f, (0, t[-1]), x0, t_eval=t, **(tol or TIGHT)).y.T.copy() for x0 in x0s]


def lorenz(n_traj: int = 1, T: float = 10.0, dt: float = 0.002, seed: int = 0, *, sigma: float = 10.0,
           rho: float = 28.0, beta: float = 8.0 / 3.0) -> Example:
    """``x0' = σ (x1 - x0)``, ``x1' = x0 (ρ - x2) - x1``, ``x2' = x0 x1 - β x2``.

    The first trajectory starts at ``(-8, 8, 27)``, the others uniformly in
    ``[-15, 15] x [-15, 15] x [10, 40]``.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(0, T, dt)
    x0s = [[-8, 8, 27] if i == 0 else list(rng.uniform([-15, -15, 10], [15, 15, 40])) for i in range(n_traj)]

    def f(_, z):
        return [sigma * (z[1] - z[0]), z[0] * (rho - z[2]) - z[1], z[0] * z[1] - beta * z[2]]

    return Example(t, _integrate(f, x0s, t), lorenz_terms(sigma, rho, beta), params=dict(sigma=sigma, rho=rho, beta=beta))


def lorenz_terms(sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> dict[tuple[int, str], float]:
    """The Lorenz system's seven terms, ``(equation, term) -> coefficient``."""
    return {(0, "x0"): -sigma, (0, "x1"): sigma, (1, "x0"): rho, (1, "x1"): -1.0, (1, "x0 x2"): -1.0,
            (2, "x2"): -beta, (2, "x0 x1"): 1.0}


LINEAR_3D = np.array([[-0.1, 2.0, 0.0], [-2.0, -0.1, 0.5], [0.0, 0.0, -0.3]])


def _matrix_terms(A: np.ndarray, prefix: str = "x") -> dict[tuple[int, str], float]:
    """``x_i' = Σ_j A_ij prefix_j`` as terms."""
    return {(int(i), f"{prefix}{j}"): float(A[i, j]) for i, j in zip(*np.nonzero(A))}


def linear_3d(n_traj: int = 4, T: float = 10.0, dt: float = 0.01, seed: int = 1) -> Example:
    """``x' = A x`` with :data:`LINEAR_3D` (a damped rotation in ``x0, x1`` driven by a decaying ``x2``);
    starts uniform in ``[-2, 2]³``."""
    rng = np.random.default_rng(seed)
    t = np.arange(0, T, dt)
    A = LINEAR_3D
    x0s = [rng.uniform(-2, 2, 3) for _ in range(n_traj)]
    return Example(t, _integrate(lambda _, x: A @ x, x0s, t, rtol=1e-10, atol=1e-12), _matrix_terms(A))


def control_signal(t):
    """The oscillator's input ``u(t) = sin(1.3 t) + 0.5 cos(3.1 t)``."""
    return np.sin(1.3 * t) + 0.5 * np.cos(3.1 * t)


def damped_oscillator(T: float = 20.0, dt: float = 0.005, omega: float = 2.0, zeta: float = 0.1,
                      gain: float = 1.5) -> Example:
    """``x0' = x1``, ``x1' = -ω² x0 - 2 ζ ω x1 + gain u`` from ``(1, 0)`` with ``u`` = :func:`control_signal`."""
    t = np.arange(0, T, dt)

    def f(tt, x):
        return [x[1], -(omega**2) * x[0] - 2 * zeta * omega * x[1] + gain * control_signal(tt)]

    terms = {(0, "x1"): 1.0, (1, "x0"): -(omega**2), (1, "x1"): -2 * zeta * omega, (1, "u0"): gain}
    x = _integrate(f, [[1.0, 0.0]], t, rtol=1e-11, atol=1e-12)
    return Example(t, x, terms, u=control_signal(t)[:, None], params=dict(omega=omega, zeta=zeta, gain=gain))


def tanh_network(n: int = 5, n_traj: int = 6, T: int = 1500, dt: float = 0.01, seed: int = 4, *,
                 w_scale: float = 1.8, b_scale: float = 0.3, x0_range: float = 1.0) -> Example:
    """``x' = -x + tanh(W x + b)``, ``W ~ N(0, w_scale²/n)``, ``b ~ N(0, b_scale²)``, ``T`` samples
    from starts uniform in ``[-x0_range, x0_range]ⁿ``: bounded, smooth, not polynomial (``terms`` is
    empty), so STLSQ iterates the way it does on a CfC's hidden states."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0, w_scale / np.sqrt(n), (n, n))
    b = rng.normal(0, b_scale, n)
    t = np.arange(T) * dt
    x0s = [rng.uniform(-x0_range, x0_range, n) for _ in range(n_traj)]
    x = _integrate(lambda _, z: -z + np.tanh(W @ z + b), x0s, t, rtol=1e-9, atol=1e-11)
    return Example(t, x, {}, params=dict(w_scale=w_scale, b_scale=b_scale))


LINEAR_MAP_A = np.array([[0.5, 0.2], [-0.3, 0.6]])
LINEAR_MAP_B = np.array([[1.0], [0.5]])


def linear_map(T: int = 2000, seed: int = 0, A: np.ndarray = LINEAR_MAP_A, B: np.ndarray = LINEAR_MAP_B) -> Example:
    """``x[k+1] = A x[k] + B u[k]`` from zero, ``u ~ N(0, 1)``, one step per time unit.

    ``terms`` are those of the increment, ``A - I`` and ``B`` (what a discrete-time fit finds).
    """
    rng = np.random.default_rng(seed)
    A, B = np.asarray(A, float), np.asarray(B, float)
    u = rng.normal(size=(T, B.shape[1]))
    x = np.zeros((T, A.shape[0]))
    for k in range(T - 1):
        x[k + 1] = A @ x[k] + B @ u[k]
    terms = {**_matrix_terms(A - np.eye(len(A))), **_matrix_terms(B, "u")}
    return Example(np.arange(float(T)), [x], terms, u=u, discrete_time=True)
