"""What the connectome/stimulus GNN is trained to predict: derivative targets.

``target="diff"`` (the default) learns from the activity alone, as a recording
would allow: the forward difference over ``window`` frames,

    y_k = (x[k + w] - x[k]) / (w dt),

paired with the frame ``x[k]``.  Under the simulator's Euler-Maruyama steps
``x[k+1] = x[k] + dt f(x[k]) + sigma sqrt(dt) xi_k`` the one-frame forward
difference is an *unbiased* target: its noise ``sigma xi_k / sqrt(dt)`` is drawn
after ``x[k]`` and is independent of it, so the mean-squared loss still has
``f`` as its minimiser; it only costs data (a noisier target).  A backward or
centred difference would not be unbiased: ``x[k] - x[k-1]`` carries the noise
that also moved ``x[k]``.  ``w > 1`` averages the noise over ``w`` frames at the
price of a bias ``O(w dt f')`` (the drift is averaged over the window).

``target="oracle"`` is the seed's setting: the simulator's noise-free right-hand
side ``dxdt``, which no recording provides.  Every table labels which one a
model was trained on (:func:`label`).
"""

from __future__ import annotations

import numpy as np

from engine.analyses.base import ParamError

TARGETS = ("diff", "oracle")


def check(target: str, window: int) -> None:
    if target not in TARGETS:
        raise ParamError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    if int(window) < 1:
        raise ParamError(f"target_window must be >= 1, got {window}")


def label(target: str, window: int = 1) -> str:
    """How a table names the target a model learned from."""
    if target == "oracle":
        return "oracle (simulator dx/dt)"
    return f"realistic (forward difference, {int(window)} frame{'s' if int(window) > 1 else ''})"


def derivative_targets(x: np.ndarray, dt: float, target: str = "diff", window: int = 1,
                       dxdt: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices kept and their targets, for runs ``x`` (n_runs, n_frames, n).

    Returns ``(keep, y)``: ``keep`` (n_runs, n_frames) bool marks the frames that
    have a target (the last ``window`` frames of each run have none for
    ``"diff"``), ``y`` (n_runs, n_frames, n) float32 the targets (0 where not kept).
    ``dxdt`` is read only for ``target="oracle"``.
    """
    check(target, window)
    x = np.asarray(x, dtype=np.float32)
    keep = np.ones(x.shape[:2], dtype=bool)
    if target == "oracle":
        if dxdt is None:
            raise ParamError("target=oracle needs the simulator's dxdt")
        return keep, np.asarray(dxdt, dtype=np.float32)
    w = int(window)
    if w >= x.shape[1]:
        raise ParamError(f"target_window {w} leaves no frame in runs of {x.shape[1]} frames")
    y = np.zeros_like(x)
    y[:, :-w] = (x[:, w:] - x[:, :-w]) / np.float32(w * dt)
    keep[:, -w:] = False
    return keep, y
