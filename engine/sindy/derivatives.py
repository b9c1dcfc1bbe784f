"""Time derivatives of trajectories.

``finite_difference`` reproduces pysindy's default ``FiniteDifference`` (centred differences of
accuracy ``order`` in the interior, one-sided stencils of the same accuracy at both ends, the same
coefficient formulas and summation order), so a fit here and a fit in pysindy see the same
``x_dot``.  ``smoothed_finite_difference`` is pysindy's ``SmoothedFiniteDifference`` (a
Savitzky-Golay smoother, window 11 / polyorder 3, then the finite difference); it also returns the
smoothed states, which pysindy then uses to build the library.  ``savgol_derivative`` is the
direct Savitzky-Golay derivative (uniform steps only).

Every function works on one trajectory ``(T, n)``; :func:`differentiate` maps over a list.
"""

from __future__ import annotations

from math import factorial
from typing import Sequence

import numpy as np

from ._inputs import REAL_SCALARS

__all__ = [
    "finite_difference",
    "smoothed_finite_difference",
    "savgol_derivative",
    "differentiate",
    "time_steps",
]


def _n_stencil(order: int, d: int = 1) -> int:
    return int(2 * ((d + 1) // 2) - 1 + order)


def _constant_coefficients(dt: float, order: int, d: int = 1) -> np.ndarray:
    n = _n_stencil(order, d)
    pows = np.arange(n)[:, np.newaxis]
    matrices = (dt * (np.arange(n) - (n - 1) // 2))[np.newaxis, :] ** pows
    b = np.zeros(n)
    b[d] = factorial(d)
    return np.linalg.solve(matrices, b)


def _interior_coefficients(t: np.ndarray, order: int, d: int = 1):
    n = _n_stencil(order, d)
    nt = len(t)
    inds = np.array([np.arange(i, nt - n + i + 1) for i in range(n)])  # (offset, time)
    stencil = t[inds].T  # (time, offset)
    centre = t[(n - 1) // 2 : -(n - 1) // 2]
    dt = stencil - centre[:, np.newaxis]
    pows = np.arange(n)[np.newaxis, :, np.newaxis]
    matrices = dt[:, np.newaxis, :] ** pows  # (time, power, offset)
    b = np.zeros(n)
    b[d] = factorial(d)
    return inds, np.linalg.solve(matrices, b)


def _boundary_coefficients(t: float | np.ndarray, order: int, d: int = 1):
    n = _n_stencil(order, d)
    nf = d + order
    left = np.arange(nf)[:, np.newaxis] * np.ones((n - 1) // 2, dtype=int)
    right_len = (n - 1) // 2 if order % 2 == 0 else 1 + (n - 1) // 2
    right = (-1 - np.arange(nf))[:, np.newaxis] * np.ones(right_len, dtype=int)
    tinds = np.concatenate(
        [np.arange((n - 1) // 2, dtype=int), np.flip(-1 - np.arange(right_len, dtype=int))]
    )
    inds = np.concatenate([left, right], axis=1)  # (offset, boundary point)
    pows = np.arange(nf)[np.newaxis, :, np.newaxis]
    if isinstance(t, float):
        matrices = np.transpose((t * (inds - tinds)[:, np.newaxis, :]) ** pows)
    else:
        matrices = np.transpose(((t[inds] - t[tinds])[:, np.newaxis, :]) ** pows)
    b = np.zeros(nf)
    b[d] = factorial(d)
    return inds, tinds, np.linalg.solve(matrices, b)


def _accumulate(inds: np.ndarray, coeffs: np.ndarray, x: np.ndarray) -> np.ndarray:
    # pysindy: einsum("ij...,ij->j...", x[stencil_inds], coeffs.T)
    return np.einsum("ij...,ij->j...", x[inds], np.transpose(coeffs))


def time_steps(t, n_samples: int) -> np.ndarray | float:
    """Validate ``t``: a positive step (float) or a strictly increasing array of length T."""
    if isinstance(t, REAL_SCALARS):
        dt = float(t)
        if not np.isfinite(dt) or dt <= 0:
            raise ValueError(f"the time step must be a positive finite number, got {t!r}")
        return dt
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or len(t) != n_samples:
        raise ValueError(f"t has shape {t.shape} but the trajectory has {n_samples} samples")
    if not np.all(np.isfinite(t)):
        raise ValueError("t contains NaN or inf")
    if np.any(np.diff(t) <= 0):
        raise ValueError("the values in t must be strictly increasing")
    return t


def finite_difference(x, t, order: int = 2, drop_endpoints: bool = False) -> np.ndarray:
    """First derivative along axis 0 of ``x`` ``(T, ...)``; pysindy's ``FiniteDifference``.

    ``t`` is the step (float, uniform formula) or the sample times (array; the general formula,
    as pysindy uses it for any array even when uniform).  With ``drop_endpoints`` the ends are
    NaN, otherwise one-sided stencils of the same accuracy are used there.
    """
    if not isinstance(order, (int, np.integer)) or order <= 0:
        raise ValueError("order must be a positive int")
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    t = time_steps(t, T)
    n = _n_stencil(order)
    if T < max(n, 1 + order):
        raise ValueError(f"a trajectory needs at least {max(n, 1 + order)} samples for order-{order} differences, got {T}")
    x_dot = np.full_like(x, np.nan)
    lo, hi = (n - 1) // 2, T + (-(n - 1)) // 2  # pysindy's slice((n-1)//2, -(n-1)//2)
    if isinstance(t, float):
        coeffs = _constant_coefficients(t, order)
        interior = np.zeros((T - (n - 1),) + x.shape[1:])
        for i in range(n):
            if abs(coeffs[i]) > 0:
                stop = -(n - i - 1)
                interior = interior + x[i : (stop if stop < 0 else None)] * coeffs[i]
    else:
        inds, coeffs = _interior_coefficients(t, order)
        interior = _accumulate(inds, coeffs, x)
    x_dot[lo:hi] = interior
    if not drop_endpoints:
        inds, tinds, coeffs = _boundary_coefficients(t, order)
        x_dot[tinds] = _accumulate(inds, coeffs, x)
    return x_dot


def smoothed_finite_difference(
    x, t, order: int = 2, window_length: int = 11, polyorder: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """pysindy's ``SmoothedFiniteDifference``: Savitzky-Golay smoothing, then differences.

    Returns ``(x_smoothed, x_dot)``; pysindy builds the library on ``x_smoothed``.
    """
    from scipy.signal import savgol_filter

    x = np.asarray(x, dtype=np.float64)
    window_length = min(window_length, x.shape[0] - (1 - x.shape[0] % 2))
    if window_length <= polyorder:
        raise ValueError(f"trajectory too short ({x.shape[0]} samples) for Savitzky-Golay smoothing")
    xs = savgol_filter(x, window_length=window_length, polyorder=polyorder, axis=0)
    return xs, finite_difference(xs, t, order=order)


def savgol_derivative(x, t, window_length: int = 11, polyorder: int = 3) -> np.ndarray:
    """Derivative of the local Savitzky-Golay polynomial fit (uniform steps only)."""
    from scipy.signal import savgol_filter

    x = np.asarray(x, dtype=np.float64)
    tt = time_steps(t, x.shape[0])
    if isinstance(tt, float):
        dt = tt
    else:
        steps = np.diff(tt)
        if not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
            raise ValueError("savgol_derivative needs uniform time steps; use finite_difference")
        dt = float(steps[0])
    window_length = min(window_length, x.shape[0] - (1 - x.shape[0] % 2))
    if window_length <= polyorder:
        raise ValueError(f"trajectory too short ({x.shape[0]} samples) for Savitzky-Golay")
    return savgol_filter(x, window_length, polyorder, deriv=1, delta=dt, axis=0, mode="interp")


_METHODS = ("finite_difference", "smoothed_finite_difference", "savgol")


def differentiate(
    xs: Sequence[np.ndarray], ts, method: str = "finite_difference", **kwargs
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Derivatives of each trajectory; returns ``(xs_used_for_the_library, x_dots)``.

    ``ts`` is one step/time array for all trajectories or a list with one per trajectory.
    ``method`` is ``finite_difference`` (pysindy's default), ``smoothed_finite_difference``
    (pysindy's smoothed variant; the library then uses the smoothed states) or ``savgol``.
    """
    aliases = {"fd": "finite_difference", "sfd": "smoothed_finite_difference", "smoothed": "smoothed_finite_difference"}
    method = aliases.get(method, method)
    if method not in _METHODS:
        raise ValueError(f"unknown differentiation method {method!r}; choose from {_METHODS}")
    if isinstance(ts, (list, tuple)):
        if len(ts) != len(xs):
            raise ValueError(f"got {len(ts)} time arrays for {len(xs)} trajectories")
        tlist = list(ts)
    else:
        tlist = [ts] * len(xs)
    x_out, d_out = [], []
    for x, t in zip(xs, tlist):
        if method == "finite_difference":
            x_out.append(np.asarray(x, dtype=np.float64))
            d_out.append(finite_difference(x, t, **kwargs))
        elif method == "smoothed_finite_difference":
            xs_, d = smoothed_finite_difference(x, t, **kwargs)
            x_out.append(xs_)
            d_out.append(d)
        else:
            x_out.append(np.asarray(x, dtype=np.float64))
            d_out.append(savgol_derivative(x, t, **kwargs))
    return x_out, d_out
