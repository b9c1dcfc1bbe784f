"""Figures of the ``connectome`` and ``stimulus`` analyses (see :mod:`engine.views`),
read from the truth step's files (``connectivity.npz``, ``functions.npz``,
``field.npz``, ``rollout.npz``).

* ``connectivity``: learned against true W (common gauge) as a scatter, R² and slope.
* ``embedding``: the learned embeddings a_i, one colour per true cell type.
* ``functions``: phi* (update) and psi* (edge) of a chosen type against the truth.
* ``field``: the true and the learned input (Omega or the stimulus, after the global
  a·I + b fit) on the input grid at a chosen frame.
* ``rollout``: a chosen neuron's noise-free trace against the learned model's rollout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.views import Figure, Panel, Series, clamp, need, pick

MAX_POINTS = 4000  # a terminal scatter shows no more; an even subsample keeps the shape


def _r2_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    x, y = np.ravel(x), np.ravel(y)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 2 or np.var(x) == 0:
        return float("nan"), float("nan")
    slope, icpt = np.polyfit(x, y, 1)
    r2 = 1 - np.sum((y - (slope * x + icpt)) ** 2) / np.sum((y - y.mean()) ** 2)
    return float(r2), float(slope)


def connectivity(workdir: Path, index: int, option: str | None) -> Figure:
    with np.load(need(workdir / "connectivity.npz", "truth")) as f:
        wt, wl = f["W_true"].ravel(), f["W_learned"].ravel()
    nz = wt != 0  # a sparse W: the absent edges would bury the scatter at 0
    if nz.sum() > 10:
        wt, wl = wt[nz], wl[nz]
    step = max(1, len(wt) // MAX_POINTS)
    r2, slope = _r2_slope(wt, wl)
    return Figure("W learned vs true (common gauge)",
                  [Panel("W", [Series("edges", wt[::step], wl[::step], role="points")], xlabel="true W")],
                  caption=f"{len(wt)} edges: R² {r2:.3f} · slope {slope:.3f}")


def embedding(workdir: Path, index: int, option: str | None) -> Figure:
    with np.load(need(workdir / "functions.npz", "truth")) as f:
        emb, types = f["embedding"], f["types"]
    series = [Series(f"type {k}", emb[types == k, 0], emb[types == k, 1 % emb.shape[1]], role="points")
              for k in np.unique(types)]
    return Figure("Learned embeddings a_i, coloured by true type", [Panel("a", series, xlabel="a0")],
                  caption=f"{len(emb)} neurons, {len(series)} types")


def functions(workdir: Path, index: int, option: str | None) -> Figure:
    with np.load(need(workdir / "functions.npz", "truth")) as f:
        d = {k: f[k] for k in f.files}
    n_types = len(d["phi_true"])
    k = clamp(index, n_types)
    which = pick(["phi (update)", "psi (edge)"], option)
    key = "phi" if which.startswith("phi") else "psi"
    true, learned = d[f"{key}_true"][k], d[f"{key}_learned"][k]
    r2, slope = _r2_slope(true, learned)
    return Figure(f"{which} of type {k}: learned vs true",
                  [Panel(which, [Series("true", d["x"], true, role="background"),
                                 Series("learned", d["x"], learned)], xlabel="x")],
                  n_index=n_types, index=k, options=["phi (update)", "psi (edge)"], option=which,
                  caption=f"type {k}: R² {r2:.3f} · slope {slope:.3f}")


def _grid(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    side = int(round(np.sqrt(len(pos))))
    img = np.full((side, side), np.nan)
    ij = np.clip(np.round(pos * (side - 1)).astype(int), 0, side - 1)
    img[ij[:, 1], ij[:, 0]] = values
    return img


def field(workdir: Path, index: int, option: str | None) -> Figure:
    with np.load(need(workdir / "field.npz", "truth")) as f:
        true = f["true"].reshape(-1, f["true"].shape[-1])
        learned = f["learned_corrected"] if "learned_corrected" in f.files else f["learned"]
        learned = learned.reshape(-1, learned.shape[-1])
        pos = f["pos"]
    n = min(len(true), len(learned))
    k = clamp(index, n)
    lo, hi = float(np.nanmin(true[:n])), float(np.nanmax(true[:n]))
    r2, slope = _r2_slope(true[k], learned[k])
    return Figure(f"Input field, frame {k} of {n}: true vs learned (a·I + b)",
                  [Panel("true", image=_grid(true[k], pos), aspect=True, vmin=lo, vmax=hi),
                   Panel("learned", image=_grid(learned[k], pos), aspect=True, vmin=lo, vmax=hi)],
                  n_index=n, index=k, caption=f"frame {k}: R² {r2:.3f} · slope {slope:.3f}")


def rollout(workdir: Path, index: int, option: str | None) -> Figure:
    with np.load(need(workdir / "rollout.npz", "truth")) as f:
        t, xt, xp = f["t"], f["x_true"], f["x_pred"]
    n = xt.shape[1]
    i = clamp(index, n)
    T = min(len(xt), len(xp))
    r2, _ = _r2_slope(xt[:T], xp[:T])
    return Figure(f"Neuron {i}: noise-free activity vs the learned model's rollout",
                  [Panel(f"neuron {i}", [Series("true", t[:T], xt[:T, i], role="background"),
                                         Series("GNN rollout", t[:T], xp[:T, i])], xlabel="t")],
                  n_index=n, index=i, caption=f"all neurons, {T} frames: R² {r2:.3f}")
