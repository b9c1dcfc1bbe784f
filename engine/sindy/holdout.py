"""Held-out data of a sweep: the split, the short rollouts, and the rollout errors of models.

Held out are whole trajectories when there are at least three, else the last block of each.
The rollout starts are kept with a stored sweep so that a hand-edited model is scored exactly
like the swept ones.
"""

from __future__ import annotations

import numpy as np

from ._inputs import Times
from .simulation import simulate

__all__ = ["Split", "split_holdout", "rollout_set", "rollout_errors"]

# (states, times, inputs or None, given derivatives or None), one entry per trajectory
Split = tuple[list[np.ndarray], list[Times], list[np.ndarray] | None, list[np.ndarray] | None]


def split_holdout(
    xs: list[np.ndarray], ts: list[Times], us: list[np.ndarray] | None, xds: list[np.ndarray] | None,
    val_fraction: float, min_val: int,
) -> tuple[Split, Split | None, str]:
    """Hold out whole trajectories (>= 3 of them) or the last block of each."""
    n = len(xs)
    if val_fraction <= 0:
        return (xs, ts, us, xds), None, "none"
    if n >= 3:
        n_val = max(1, int(round(val_fraction * n)))
        n_val = min(n_val, n - 1)
        tr = slice(0, n - n_val)
        va = slice(n - n_val, n)
        pick = lambda a, s: None if a is None else a[s]  # noqa: E731
        return (xs[tr], ts[tr], pick(us, tr), pick(xds, tr)), (xs[va], ts[va], pick(us, va), pick(xds, va)), "trajectories"
    train: Split = ([], [], [] if us is not None else None, [] if xds is not None else None)
    val: Split = ([], [], [] if us is not None else None, [] if xds is not None else None)
    for i, xi in enumerate(xs):
        T = len(xi)
        cut = int(round((1 - val_fraction) * T))
        if T - cut < min_val or cut < 5:
            raise ValueError(
                f"trajectory {i} has {T} samples: too short to hold out {val_fraction:.0%} for validation "
                f"(need {min_val} held-out samples); pass more data or val_fraction=0"
            )
        ti = ts[i]
        for s, (dx, dt, du, dxd) in ((slice(0, cut), train), (slice(cut, T), val)):
            dx.append(xi[s])
            dt.append(ti if isinstance(ti, float) else ti[s])
            if us is not None and du is not None:
                du.append(us[i][s])
            if xds is not None and dxd is not None:
                dxd.append(xds[i][s])
    return train, val, "time_block"


def rollout_set(vxs, vts, vus, steps, n_rollouts) -> dict | None:
    """The held-out rollout starts: ``x0 (S, n)``, ``truth (S, steps+1, n)``, ``grid (S, steps+1)``
    (times from each start), ``u (S, steps+1, m)`` or None, and the per-state ``scale (n,)``.

    Kept with the sweep so that a hand-edited model is scored exactly like the swept ones.
    """
    cands = [(j, i) for j, xj in enumerate(vxs) for i in range(0, len(xj) - steps)]
    if not cands:
        return None
    pick = np.unique(np.linspace(0, len(cands) - 1, min(n_rollouts, len(cands))).round().astype(int))
    starts = [cands[k] for k in pick]
    scale = np.concatenate(vxs).std(0)
    scale = np.where(scale > 0, scale, 1.0)
    grids = []
    for j, i in starts:
        tj = vts[j]
        grids.append(np.arange(steps + 1) * tj if isinstance(tj, float) else tj[i : i + steps + 1] - tj[i])
    return {
        "x0": np.stack([vxs[j][i] for j, i in starts]),
        "truth": np.stack([vxs[j][i : i + steps + 1] for j, i in starts]),
        "grid": np.stack(grids).astype(np.float64),
        "u": None if vus is None else np.stack([vus[j][i : i + steps + 1] for j, i in starts]),
        "scale": scale,
    }


def stability_rollouts(val, stability_steps: int, rollout_steps: int) -> list[dict]:
    """Free runs a chosen model must survive on the held-out data ``val = (xs, ts, us)``:
    the longest (up to ``stability_steps``) from its start, and runs half as long from 8
    starts spread over it -- one start missed ODEs that a test run from another state blew
    up within 20 steps.  Runs no longer than ``rollout_steps`` are left out."""
    longest = max(len(v) for v in val[0]) - 1
    out = []
    for steps, starts in ((min(int(stability_steps), longest), 1), (min(int(stability_steps), longest // 2), 8)):
        ro = rollout_set(val[0], val[1], val[2], steps, starts) if steps > rollout_steps else None
        if ro is not None:
            out.append(ro)
    return out


def rollout_errors(coefs, lib, ro, substeps, bound, device, method: str = "rk4"):
    """RMS error (absolute, in the states' units) of the rollouts ``ro`` (:func:`rollout_set`), all models at once.

    Returns ``(error, diverged fraction)`` per model; a diverged rollout counts as ``inf``.
    """
    P, K, F = coefs.shape
    if ro is None:
        return np.full(P, np.nan), np.full(P, np.nan)
    n_starts = len(ro["x0"])
    # group starts by their relative time grid (identical for uniform steps)
    groups: dict[bytes, list[int]] = {}
    for s, g in enumerate(ro["grid"]):
        groups.setdefault(np.round(g, 12).tobytes(), []).append(s)
    # unique models (neighbouring thresholds often give the same coefficients)
    flat = coefs.reshape(P, -1)
    _, first, inv = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    U = len(first)
    err_u = np.zeros((U, n_starts))
    div_u = np.zeros((U, n_starts), dtype=bool)
    for members in groups.values():
        S = len(members)
        g = ro["grid"][members[0]]
        x0 = ro["x0"][members]  # (S, n)
        truth = ro["truth"][members]
        u_b = None if ro.get("u") is None else np.tile(ro["u"][members], (U, 1, 1))
        X0 = np.tile(x0, (U, 1))  # model u drives rows u*S .. u*S+S-1
        res = simulate(coefs[first], lib, X0, g, u_b, bound=bound, device=device, substeps=substeps, method=method)
        xs_sim = res.x.reshape(U, S, len(g), -1)
        d = xs_sim - truth[None]  # absolute: a state that barely moves cannot dominate
        e = np.sqrt(np.mean(d**2, axis=(2, 3)))
        dv = res.diverged.reshape(U, S)
        e[dv] = np.inf
        for col, s in enumerate(members):
            err_u[:, s] = e[:, col]
            div_u[:, s] = dv[:, col]
    with np.errstate(invalid="ignore"):
        err = err_u.mean(axis=1)
    return err[inv], div_u.mean(axis=1)[inv]
