"""Input normalisation shared by the estimator, the sweep and the ensemble.

Trajectories come as one ``(T, n)`` array, a list of them, or a stacked ``(n_traj, T, n)``
array; times as a step, an array of sample times, or one of either per trajectory.
"""

from __future__ import annotations

import numpy as np

__all__ = ["REAL_SCALARS", "Times", "is_seq", "as_list", "as_optional_list", "as_times", "check_u", "r2"]

# a time step (or threshold) given as one number; isinstance() with these narrows the type for
# mypy, which np.isscalar (also true for str, bytes and complex) does not
REAL_SCALARS = (int, float, np.integer, np.floating)
# one trajectory's times: its step, or its sample times
Times = float | np.ndarray


def is_seq(x) -> bool:
    return isinstance(x, (list, tuple))


def as_optional_list(a, name: str, n_traj: int | None = None) -> list[np.ndarray] | None:
    """:func:`as_list` of an optional argument (inputs ``u``, derivatives ``x_dot``): None stays None."""
    return None if a is None else as_list(a, name, n_traj)


def as_list(a, name: str, n_traj: int | None = None) -> list[np.ndarray]:
    """One trajectory ``(T, n)``, a list of them, or a stacked ``(n_traj, T, n)`` array."""
    if a is None:
        raise ValueError(f"{name} is required")
    out: list[np.ndarray]
    if is_seq(a):
        out = [np.asarray(ai, dtype=np.float64) for ai in a]
    else:
        arr = np.asarray(a, dtype=np.float64)
        if arr.ndim == 3:
            out = list(arr)
        else:
            out = [arr]
    out = [ai[:, None] if ai.ndim == 1 else ai for ai in out]
    for i, ai in enumerate(out):
        if ai.ndim != 2:
            raise ValueError(f"{name}[{i}] must be 2-D (n_samples, n_variables); got shape {ai.shape}")
        bad = ~np.isfinite(ai)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ValueError(
                f"{name} contains NaN or inf (trajectory {i}, sample {r}, variable {c}); "
                "SINDy cannot fit non-finite data - drop or interpolate those samples first"
            )
    if n_traj is not None and len(out) != n_traj:
        raise ValueError(f"{name} has {len(out)} trajectories but x has {n_traj}")
    return out


def as_times(t, xs: list[np.ndarray]) -> list[Times]:
    """Each trajectory's times: a float step or a float64 array of sample times."""
    if t is None:
        raise ValueError("t (a time step or the sample times) is required")
    per_traj = (
        is_seq(t)
        and len(t) == len(xs)
        and all(np.ndim(ti) == 0 or (np.ndim(ti) == 1 and len(ti) == len(xi)) for ti, xi in zip(t, xs))
    )
    ts: list[Times]
    if per_traj:
        ts = [float(ti) if np.ndim(ti) == 0 else np.asarray(ti, dtype=np.float64) for ti in t]
    else:  # one step or one array of times for all: a scalar step becomes a 0-d array here
        ta = np.asarray(t, dtype=np.float64)
        if ta.ndim == 0:
            ts = [float(ta)] * len(xs)
        else:
            ts = [ta] * len(xs)
    for ti, xi in zip(ts, xs):
        if isinstance(ti, float):
            if not np.isfinite(ti) or ti <= 0:
                raise ValueError(f"the time step must be positive and finite, got {ti}")
        else:
            if ti.ndim != 1 or len(ti) != len(xi):
                raise ValueError(f"t has {ti.shape} entries for a trajectory of {len(xi)} samples")
            if not np.all(np.isfinite(ti)):
                raise ValueError("t contains NaN or inf")
            if np.any(np.diff(ti) <= 0):
                raise ValueError("t must be strictly increasing")
    return ts


def check_u(us, xs) -> None:
    for i, (ui, xi) in enumerate(zip(us, xs)):
        if len(ui) != len(xi):
            raise ValueError(f"u[{i}] has {len(ui)} samples but x[{i}] has {len(xi)}")
    if len({ui.shape[1] for ui in us}) != 1:
        raise ValueError("all control trajectories must have the same number of inputs")


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    """sklearn's ``r2_score`` with ``multioutput='uniform_average'`` (and its constant-target rule)."""
    num = ((y - pred) ** 2).sum(0)
    den = ((y - y.mean(0)) ** 2).sum(0)
    scores = np.ones(y.shape[1])
    ok = den != 0
    scores[ok] = 1 - num[ok] / den[ok]
    scores[~ok & (num != 0)] = 0.0
    return float(scores.mean())
