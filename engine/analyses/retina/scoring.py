"""Scoring of the retina's evaluate step: every row on the same test frames.

Rows have a role: ``model`` (CfC, CfC-pruned, the SINDy rollouts), ``baseline`` (all
zeros, the per-cell training mean, the LN model) or ``ceiling`` (the generator's noise-free
rate, where the file has it).  A SINDy rollout that diverges is never dropped: from the
frame it blew up to the end of its window it predicts the training mean (the baseline's
answer), and the row says how many windows and what share of frames that was.

The FEV's noise variance and the correlation ceiling come from the test split's single
trials where the file has them (``test/repeats``: the across-trial variance, as in Cadena et
al. 2019), else from the generator's noise-free rate (synthetic files written before
repeats), else there is none; the ``noise_from`` column says which.

Which metric ranks: bits per spike (the Poisson log-likelihood gain over the test mean
rate, per spike) -- the models are trained with a Poisson loss, and MAE on rates that are
79 % zeros rewards predicting zero (the zeros row shows by how much).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

RANK_METRIC = "bits_per_spike"
METRICS = ("mae", "corr", "bits_per_spike", "fev")
HIGHER_IS_BETTER = {"mae": False, "corr": True, "bits_per_spike": True, "fev": True}


@dataclass
class Rollout:
    """Readout of a SINDy rollout over the scored frames.

    Attributes
    ----------
    pred : ndarray (T, cells)
        Rates, NaN on frames after a divergence (filled later with the fallback).
    windows, diverged : int
        Rollout windows run and how many of them diverged.
    """

    pred: np.ndarray
    windows: int
    diverged: int


def sindy_rollout(model, states: np.ndarray, u: np.ndarray, readout, horizon: int | None,
                  dt: float, max_wall_time: float = 120.0) -> Rollout:
    """Roll ``model`` from the CfC's state at the start of each window.

    ``horizon`` None: one free-running rollout over all frames from the first state;
    otherwise windows of ``horizon`` frames, each restarted at the CfC's state.
    ``u`` (T, k) are the control inputs aligned with ``states`` (T, units);
    ``readout`` maps states (n, units) to rates (n, cells).
    """
    T = len(states)
    H = T if horizon is None else int(horizon)
    starts = np.arange(0, T, H)
    x0 = states[starts]
    seg = np.stack([np.pad(u[s:s + H], ((0, max(0, s + H - len(u))), (0, 0)), mode="edge") for s in starts])
    sim = model.simulate(x0, np.arange(H) * dt, u=seg, max_wall_time=max_wall_time)
    xs = np.asarray(sim.x)  # (B, H, units), NaN after a divergence
    hs = xs.reshape(-1, xs.shape[-1])[:T]
    finite = np.asarray(np.isfinite(hs).all(1))
    pred = np.full((T, readout(states[:1]).shape[1]), np.nan)
    if finite.any():
        pred[finite] = readout(hs[finite])
    pred[~np.isfinite(pred).all(1)] = np.nan
    # a rollout that left the finite range without being flagged still counts as diverged
    bad = np.asarray(~np.isfinite(pred).all(1))
    per_window = [bad[s:s + H].any() for s in starts]
    return Rollout(pred, len(starts), int(np.sum(np.asarray(sim.diverged) | np.asarray(per_window))))


def _noise_var(target: np.ndarray, truth: np.ndarray | None) -> np.ndarray | None:
    """Per-cell noise variance: the recorded rate's spread around the noise-free one."""
    if truth is None:
        return None
    return ((target - truth) ** 2).mean(0)


def repeat_noise_var(repeats: np.ndarray) -> np.ndarray:
    """Per-cell noise variance of single trials ``(reps, T, cells)``: the across-trial
    variance (ddof 1) averaged over frames."""
    return np.asarray(repeats, float).var(axis=0, ddof=1).mean(axis=0)


def repeat_ceiling(target: np.ndarray, repeats: np.ndarray) -> np.ndarray:
    """Per-cell correlation ceiling of ``target``, the mean of the ``n`` trials in ``repeats``:
    the best a noise-free prediction can reach, ``sqrt(signal var / var(target))`` with the
    signal variance ``var(target) - noise var / n`` (NaN for a cell without variance)."""
    n = len(repeats)
    total = np.asarray(target, float).var(axis=0)
    signal = total - repeat_noise_var(repeats) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.sqrt(np.clip(signal / total, 0.0, 1.0)), np.nan)


def _ceiling(target, truth, repeats) -> tuple[str, np.ndarray]:
    """Where the noise comes from, and the per-cell correlation ceiling."""
    from engine import metrics as M

    if repeats is not None:
        return "repeats", repeat_ceiling(target, repeats)
    if truth is not None:
        return "noise-free rate", np.asarray(M.pearson(target, truth, per_cell=True), float)
    return "none", np.full(target.shape[1], np.nan)


def score(rows: dict[str, dict], target: np.ndarray, truth: np.ndarray | None, fallback: np.ndarray,
          cells: list[str], repeats: np.ndarray | None = None):
    """One table row per entry of ``rows`` (name -> dict(pred, role, scoring[, windows, diverged])).

    Every row is scored on all frames of ``target``; NaN frames of a prediction (a diverged
    rollout) are filled with ``fallback`` (the per-cell training mean) and counted.
    ``repeats`` (reps, T, cells): single trials of the test stimulus (``target`` their mean);
    the FEV is then over single trials with their across-trial noise.
    Columns: role, scoring, windows, diverged_windows, diverged_frac, each metric overall
    and per cell (``metric:cell``), ``worse_than_zeros`` (MAE above the all-zeros row's),
    ``best`` (the best ``model`` row by :data:`RANK_METRIC`), ``rank_by``, ``noise_from``,
    ``n_repeats``, ``corr_ceiling`` (and per cell) and ``corr_frac`` (corr / ceiling).
    """
    import pandas as pd

    from engine import metrics as M

    noise_from, ceiling = _ceiling(target, truth, repeats)
    if repeats is not None:
        reps = np.asarray(repeats, float)
        fev = lambda t, p, per_cell: M.fev(reps, p, per_cell=per_cell)  # noqa: E731
    else:
        noise = _noise_var(target, truth)
        fev = lambda t, p, per_cell: M.fev(t, p, noise_var=noise, per_cell=per_cell)  # noqa: E731
    fns: dict[str, Callable[..., Any]] = {"mae": M.mae, "corr": M.pearson, "bits_per_spike": M.bits_per_spike,
                                          "fev": fev}
    records = []
    for name, row in rows.items():
        pred = np.asarray(row["pred"], dtype=float)
        bad = ~np.isfinite(pred).all(1)
        pred = np.where(bad[:, None], fallback[None, :], pred)
        rec: dict[str, object] = {"model": name, "role": row["role"], "scoring": row.get("scoring", ""),
                                  "windows": int(row.get("windows", 0)),
                                  "diverged_windows": int(row.get("diverged", 0)),
                                  "diverged_frac": float(bad.mean()), "diverged": False}
        for m in METRICS:
            with np.errstate(all="ignore"):
                rec[m] = float(fns[m](target, pred, per_cell=False))
                for c, v in zip(cells, fns[m](target, pred, per_cell=True)):
                    rec[f"{m}:{c}"] = float(v)
        records.append(rec)
    table = pd.DataFrame.from_records(records).set_index("model")
    zeros_mae = table.loc[table.index == "zeros", "mae"]
    table["worse_than_zeros"] = (table["mae"] > float(zeros_mae.iloc[0])) if len(zeros_mae) else False
    table["best"] = False
    models = table[table["role"] == "model"][RANK_METRIC].dropna()
    if len(models):
        table.loc[models.idxmax(), "best"] = True
    table["rank_by"] = RANK_METRIC
    table["noise_from"] = noise_from
    table["n_repeats"] = 0 if repeats is None else len(repeats)
    finite = ceiling[np.isfinite(ceiling)]
    table["corr_ceiling"] = float(finite.mean()) if finite.size else np.nan
    for c, v in zip(cells, ceiling):
        table[f"corr_ceiling:{c}"] = float(v)
    table["corr_frac"] = table["corr"] / table["corr_ceiling"]
    return table
