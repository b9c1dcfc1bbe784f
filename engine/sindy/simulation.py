"""Batched simulation of fitted polynomial models, with divergence detection.

``simulate`` integrates ``x' = Ξ θ([x, u])`` for a batch of initial states at once:

* ``method="rk4"`` (default): fixed-step classical Runge-Kutta, float64, ``substeps`` steps per
  output interval, the whole batch in one array; each trajectory may have its own coefficient
  matrix (threshold sweeps simulate many models at once).  It runs in torch on a given device
  (``device="cuda"``, or ``backend="torch"``) and in numpy on the CPU by default: for these small
  per-step operations torch's dispatch overhead (~5-10 µs per op) and its OpenMP threads cost
  more than the arithmetic, and measured 3-50x slower than numpy here (the 50x on a shared,
  oversubscribed CPU, where torch's spinning threads collapse);
* ``method="euler"``: exact forward steps ``x + h f(x, u)`` with ``u`` held over each step, for
  discrete-time models (``Sindy(discrete_time=True)``), which are maps, not flows.
* ``method="adaptive"`` (or any ``scipy.integrate.solve_ivp`` method name such as ``"LSODA"``):
  ``solve_ivp`` per trajectory, with a terminal event at the divergence bound.

Control inputs ``u`` are given at the output times (``(T, m)`` shared by the batch or
``(B, T, m)``) and read between samples by linear interpolation (``u_interp="linear"``) or
zero-order hold (``"hold"``); a callable ``u(t) -> (m,) or (B, m)`` also works.

A trajectory *diverges* when a state is non-finite or ``|x| > bound``; the time is recorded,
the trajectory is frozen (NaN from then on) and dropped from the batch.  Integration stops when
all trajectories have diverged or ``max_wall_time`` seconds have passed (``timed_out``), so a
simulation never hangs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._array_ops import NumpyOps, TorchOps

__all__ = ["SimulationResult", "simulate"]


@dataclass
class SimulationResult:
    """Trajectories and what happened to them.

    Attributes
    ----------
    t : ndarray (T,)
        Output times.
    x : ndarray (B, T, n), or (T, n) when a single 1-D initial state was given
        States; NaN after a trajectory diverged (or after a wall-clock stop).
    diverged : ndarray (B,) of bool
    divergence_time : ndarray (B,)
        Time at which the divergence was detected (NaN if it did not diverge).
    timed_out : bool
        The wall-clock limit stopped the integration early.
    completed_time : float
        Last time reached by the integration.
    wall_time : float
        Seconds spent.
    method : str
    """

    t: np.ndarray
    x: np.ndarray
    diverged: np.ndarray
    divergence_time: np.ndarray
    timed_out: bool = False
    completed_time: float = float("nan")
    wall_time: float = 0.0
    method: str = "rk4"
    info: dict[str, Any] = field(default_factory=dict)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.x, dtype=dtype)

    @property
    def any_diverged(self) -> bool:
        return bool(np.any(self.diverged))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.x.shape


def _prepare_u(u, T: int, B: int, m: int):
    """Returns ('none'|'array'|'callable', value); arrays as (B or 1, T, m)."""
    if m == 0:
        if u is not None:
            raise ValueError("the model has no control inputs, but u was given")
        return "none", None
    if u is None:
        raise ValueError(f"the model was fit with {m} control input(s); u is required")
    if callable(u):
        return "callable", u
    ua = np.asarray(u, dtype=np.float64)
    if ua.ndim == 1:
        ua = ua[:, None]
    if ua.ndim == 2:
        ua = ua[None]
    if ua.ndim != 3 or ua.shape[1] != T or ua.shape[2] != m or ua.shape[0] not in (1, B):
        raise ValueError(f"u must be (T={T}, m={m}) or (B={B}, T, m); got {np.shape(u)}")
    if not np.all(np.isfinite(ua)):
        raise ValueError("u contains NaN or inf")
    return "array", ua


def simulate(
    coef,
    library,
    x0,
    t,
    u=None,
    *,
    method: str = "rk4",
    bound: float | None = None,
    max_wall_time: float | None = None,
    device=None,
    u_interp: str = "linear",
    substeps: int = 1,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    backend: str = "auto",
) -> SimulationResult:
    """Integrate ``x' = coef @ library([x, u])`` from each initial state.

    Parameters
    ----------
    coef : array (n, F) or (G, n, F)
        One model for all, or G models for B = G x k trajectories: model g drives the k
        consecutive trajectories ``g*k .. g*k+k-1`` (G = B: one model per trajectory).  The
        grouped form is evaluated as G small matrix products (a sweep's models x start states).
    library : PolynomialLibrary
        Fitted over ``n + m`` inputs (states then controls).
    x0 : array (n,) or (B, n)
    t : array (T,)
        Output times (strictly increasing; the RK4 step is each interval / ``substeps``).
    u : None, array (T, m) / (B, T, m), or callable
    bound : float, optional
        Divergence bound on ``|x|`` (default ``1e6``).
    max_wall_time : float, optional
        Stop after this many seconds (``timed_out``).
    device : str or torch.device, optional
        Torch device for RK4; a non-CPU device selects the torch backend.
    backend : {"auto", "numpy", "torch"}
        ``auto``: torch on a non-CPU device, numpy otherwise.
    """
    t0_wall = time.perf_counter()
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1 or len(t) < 1:
        raise ValueError("t must be a 1-D array of output times")
    if not np.all(np.isfinite(t)):  # NaN compares false: it would pass the check below
        raise ValueError("t contains NaN or inf")
    if len(t) > 1 and np.any(np.diff(t) <= 0):
        raise ValueError("t must be strictly increasing")
    coef = np.asarray(coef, dtype=np.float64)
    x0 = np.asarray(x0, dtype=np.float64)
    single = x0.ndim == 1
    X0 = x0[None] if single else x0
    if X0.ndim != 2:
        raise ValueError("x0 must be (n,) or (B, n)")
    B, n = X0.shape
    per_traj = coef.ndim == 3
    if per_traj and (coef.shape[0] == 0 or B % coef.shape[0] != 0):
        raise ValueError(f"coef has {coef.shape[0]} models for {B} initial states (need B = models x k)")
    if coef.shape[-2] != n or coef.shape[-1] != library.n_output_features_:
        raise ValueError(f"coef shape {coef.shape} does not match {n} states and {library.n_output_features_} library terms")
    m = library.n_features_in_ - n
    if m < 0:
        raise ValueError("x0 has more variables than the library")
    if not np.all(np.isfinite(X0)):
        raise ValueError("x0 contains NaN or inf")
    if not np.all(np.isfinite(coef)):
        raise ValueError("coef contains NaN or inf")
    from engine.resources import require_memory

    # the trajectories (float64) and the library evaluated at each stage of a step, per state
    n_terms = library.n_output_features_
    require_memory(B * len(t) * n * 8 + B * (n_terms + 4 * n) * 8, "simulate",
                   {"initial states": B, "time points": len(t)})
    bound = 1e6 if bound is None else float(bound)
    ukind, uval = _prepare_u(u, len(t), B, m)
    if u_interp not in ("linear", "hold"):
        raise ValueError("u_interp must be 'linear' or 'hold'")
    if method.lower() == "euler":
        u_interp = "hold"  # a map reads u[k] for the whole step k -> k+1, as it was fitted
    if substeps < 1:
        raise ValueError("substeps must be >= 1")
    if method.lower() in ("rk4", "euler"):
        if backend not in ("auto", "numpy", "torch"):
            raise ValueError("backend must be 'auto', 'numpy' or 'torch'")
        from ._blas import single_threaded_blas

        with single_threaded_blas():  # small per-step products: threads only add overhead
            res = _rk4(coef, per_traj, library, X0, t, ukind, uval, m, bound, max_wall_time, device, u_interp, substeps,
                       t0_wall, backend, euler=method.lower() == "euler")
    else:
        ivp = "LSODA" if method.lower() == "adaptive" else method
        if per_traj and coef.shape[0] != B:
            coef = np.repeat(coef, B // coef.shape[0], axis=0)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = _adaptive(coef, per_traj, library, X0, t, ukind, uval, m, bound, max_wall_time, u_interp, ivp, rtol, atol, t0_wall)
    if single:
        res.x = res.x[0]
    res.wall_time = time.perf_counter() - t0_wall
    return res


def _rk4(coef, per_traj, library, X0, t, ukind, uval, m, bound, max_wall, device, u_interp, substeps, t0_wall, backend,
         euler: bool = False):
    use_torch = backend == "torch" or (backend == "auto" and device is not None and str(device) != "cpu")
    ops = TorchOps(library, device) if use_torch else NumpyOps(library)
    B, n = X0.shape
    T = len(t)
    div_time = np.full(B, np.nan)
    diverged = np.zeros(B, dtype=bool)
    timed_out = False
    completed = float(t[0])
    hold = u_interp == "hold"
    ctx = ops.torch.no_grad() if isinstance(ops, TorchOps) else np.errstate(over="ignore", invalid="ignore", divide="ignore")
    with ctx:
        Ca = ops.asarray(coef)
        CaT = None if per_traj else ops.asarray(coef.T)
        x = ops.asarray(X0)
        out = np.full((B, T, n), np.nan)
        out[:, 0] = X0
        alive = np.arange(B)
        U = dU = None
        if ukind == "array":
            U = ops.asarray(uval)  # (1 or B, T, m)
            dU = U[:, 1:] - U[:, :-1] if T > 1 else None

        def rhs(xa, ua):
            phi = ops.features(xa if ua is None else ops.cat(xa, ua))
            return ops.bmm(Ca, phi) if per_traj else phi @ CaT

        def u_at(i, s):
            if ukind == "none":
                return None
            if ukind == "callable":
                tt = t[i] + s * (t[i + 1] - t[i])
                v = np.asarray(uval(tt), dtype=np.float64)
                v = np.broadcast_to(v, (B, m)) if v.ndim == 1 else v
                return ops.asarray(v[alive])
            assert U is not None and dU is not None  # ukind == "array"; dU exists when T > 1, as steps do
            v = U[:, i] if (s == 0.0 or hold) else (U[:, i + 1] if s == 1.0 else U[:, i] + s * dU[:, i])
            if v.shape[0] == 1:
                return v.expand(x.shape[0], -1) if use_torch else np.broadcast_to(v, (x.shape[0], v.shape[1]))
            return v  # U is kept re-indexed to the alive rows

        for i in range(T - 1):
            h = float(t[i + 1] - t[i]) / substeps
            stop = False
            for j in range(substeps):
                s0, sm, s1 = j / substeps, (j + 0.5) / substeps, (j + 1) / substeps
                k1 = rhs(x, u_at(i, s0))
                if euler:  # a discrete-time model: x[k+1] = x[k] + h f(x[k], u[k]), exactly as fitted
                    x = ops.axpy(x, k1, h)
                else:
                    um = u_at(i, sm)
                    k2 = rhs(ops.axpy(x, k1, 0.5 * h), um)
                    k3 = rhs(ops.axpy(x, k2, 0.5 * h), um)
                    k4 = rhs(ops.axpy(x, k3, h), u_at(i, s1))
                    x = x + (h / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)
                if not ops.absmax(x) <= bound:  # NaN and inf fail this test too
                    bad = ops.bad_rows(x, bound)
                    gone = alive[bad]
                    diverged[gone] = True
                    div_time[gone] = t[i] + s1 * (t[i + 1] - t[i])
                    alive = alive[~bad]
                    if len(alive) == 0:
                        stop = True
                        break
                    keep = ops.index(np.flatnonzero(~bad))
                    x = ops.take(x, keep)
                    if per_traj:
                        if Ca.shape[0] != len(bad):  # grouped models: one per trajectory from now on
                            Ca = ops.repeat(Ca, len(bad) // Ca.shape[0])
                        Ca = ops.take(Ca, keep)
                    if U is not None and U.shape[0] > 1:
                        U = ops.take(U, keep)
                        dU = ops.take(dU, keep)
            completed = float(t[i + 1])
            if stop:
                break
            out[alive, i + 1] = ops.numpy(x)
            if max_wall is not None and time.perf_counter() - t0_wall > max_wall:
                timed_out = i + 1 < T - 1
                break
    return SimulationResult(
        t=t, x=out, diverged=diverged, divergence_time=div_time, timed_out=timed_out,
        completed_time=completed, method="euler" if euler else "rk4", info={"backend": "torch" if use_torch else "numpy"},
    )


def _adaptive(coef, per_traj, library, X0, t, ukind, uval, m, bound, max_wall, u_interp, ivp_method, rtol, atol, t0_wall):
    """One scipy ``OdeSolver`` per trajectory, stepped by hand so that every step is checked."""
    import scipy.integrate as si

    methods = {"RK23", "RK45", "DOP853", "Radau", "BDF", "LSODA"}
    if ivp_method not in methods:
        raise ValueError(f"unknown method {ivp_method!r}; use 'rk4', 'adaptive' or one of {sorted(methods)}")
    solver_cls = getattr(si, ivp_method)
    B, n = X0.shape
    T = len(t)
    out = np.full((B, T, n), np.nan)
    out[:, 0] = X0
    div_time = np.full(B, np.nan)
    diverged = np.zeros(B, dtype=bool)
    timed_out = False
    completed = float(t[0])
    for b in range(B):
        if T == 1:
            break
        Cb = coef[b] if per_traj else coef

        def u_of(tt, b=b):
            if ukind == "none":
                return None
            if ukind == "callable":
                v = np.asarray(uval(tt), dtype=np.float64)
                return v[b] if v.ndim == 2 else v
            ub = uval[b] if uval.shape[0] > 1 else uval[0]
            if u_interp == "hold":
                k = int(np.clip(np.searchsorted(t, tt, side="right") - 1, 0, T - 1))
                return ub[k]
            return np.array([np.interp(tt, t, ub[:, j]) for j in range(m)])

        def f(tt, xx, Cb=Cb, u_of=u_of):
            uu = u_of(tt)
            z = xx if uu is None else np.concatenate([xx, uu])
            return library.transform(z[None])[0] @ Cb.T

        k = 1
        try:
            solver = solver_cls(f, t[0], X0[b], t[-1], rtol=rtol, atol=atol)
            while solver.status == "running" and k < T:
                solver.step()
                y = solver.y
                if solver.status == "failed" or not np.all(np.isfinite(y)) or np.max(np.abs(y)) > bound:
                    diverged[b] = True
                    div_time[b] = float(solver.t)
                    break
                if t[k] <= solver.t:
                    sol = solver.dense_output()
                    while k < T and t[k] <= solver.t:
                        out[b, k] = sol(t[k])
                        k += 1
                if max_wall is not None and time.perf_counter() - t0_wall > max_wall:
                    timed_out = k < T
                    break
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            diverged[b] = True
            div_time[b] = float(t[k - 1])
        completed = max(completed, float(t[k - 1]))
        if timed_out:
            break
    return SimulationResult(t=t, x=out, diverged=diverged, divergence_time=div_time, timed_out=timed_out,
                            completed_time=completed, method=ivp_method)
