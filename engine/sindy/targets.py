"""Derivative targets taken from the trained model itself, beside finite differences.

A network that steps its state once per frame *is* a map ``h[k+1] = F(h[k], u[k+1])``; its
one-step map evaluated at a state gives the exact increment there, where finite
differences of a recorded trajectory only see the states the trajectory visited.  Two
uses:

* :func:`map_targets` — increments ``(F(h, u) - h) / dt`` at the collected states (equal to
  forward differences of the trajectory, up to float precision: a check) and at states
  perturbed off the trajectory (``h + σ·std·ε``), which the trajectory never shows: they
  tell the fit how the map pulls a state that has strayed, which is what a free-running
  rollout needs.
* :func:`flow_targets` — for a continuous-time reading: ``∂F(h, u, τ)/∂τ`` at ``τ = dt``
  by autograd, the closed-form CfC's own time derivative at the state it reaches.

``step`` is a plain callable on numpy arrays, so this module needs no torch; the analysis
wraps its model (``RetinaCfC.step``) in one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["ModelTargets", "map_targets", "flow_targets", "compare_targets"]

StepFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ModelTargets:
    """Targets from the model: ``y_on`` (T, n) at the collected states, and ``x_off`` /
    ``y_off`` (M, n) at perturbed ones, each made from collected state ``base[i]`` (so the
    caller can pair it with that sample's control input)."""

    y_on: np.ndarray
    x_off: np.ndarray
    y_off: np.ndarray
    base: np.ndarray


def map_targets(step: StepFn, x: np.ndarray, u_next: np.ndarray, dt: float, *, n_perturb: int = 0,
                sigma: float = 0.1, seed: int = 0, chunk: int = 4096) -> ModelTargets:
    """Increments of the one-step map ``step(h, u) -> h_next`` over ``dt``.

    ``x`` (T, n) the collected states; ``u_next`` (T, p) the input the step from ``x[k]``
    reads (the model's own input, not the SINDy controls).  ``n_perturb`` perturbed copies
    per state (Gaussian, ``sigma`` times each state's std).
    """
    x = np.asarray(x, float)
    u_next = np.asarray(u_next, float)
    if len(x) != len(u_next):
        raise ValueError(f"x has {len(x)} samples but u_next {len(u_next)}")
    if dt <= 0:
        raise ValueError("dt must be positive")

    def inc(h, u):
        out = np.empty_like(h)
        for s in range(0, len(h), chunk):
            out[s: s + chunk] = np.asarray(step(h[s: s + chunk], u[s: s + chunk]), float)
        return (out - h) / dt

    y_on = inc(x, u_next)
    if n_perturb <= 0:
        empty = np.zeros((0, x.shape[1]))
        return ModelTargets(y_on, empty, empty.copy(), np.zeros(0, dtype=np.int64))
    rng = np.random.default_rng(seed)
    base = np.tile(np.arange(len(x)), n_perturb)
    x_off = x[base] + sigma * x.std(0) * rng.standard_normal((len(base), x.shape[1]))
    return ModelTargets(y_on, x_off, inc(x_off, u_next[base]), base)


def flow_targets(step_ts, x: np.ndarray, u: np.ndarray, dt: float) -> np.ndarray:
    """``∂/∂τ step(h, u, τ)`` at ``τ = dt`` for every row (autograd; ``step_ts`` takes and
    returns torch tensors, ``τ`` as a (B, 1) tensor).  Returns (T, n): the time derivative
    at the state each step reaches."""
    import torch

    h = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    uu = torch.as_tensor(np.asarray(u), dtype=torch.float32)
    tau = torch.full((len(h), 1), float(dt), requires_grad=True)
    out = step_ts(uu, h, tau)
    cols = []
    for j in range(out.shape[1]):  # each sample has its own τ: one backward pass per state
        (g,) = torch.autograd.grad(out[:, j].sum(), tau, retain_graph=j < out.shape[1] - 1)
        cols.append(g[:, 0])
    return torch.stack(cols, 1).detach().double().numpy()


def compare_targets(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-state RMS of ``a - b`` relative to the RMS of ``b`` (0: the same targets)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    den = np.sqrt(np.mean(b**2, axis=0))
    return np.sqrt(np.mean((a - b) ** 2, axis=0)) / np.where(den > 0, den, 1.0)
