"""What the Equations pane draws, as plain data read from its state: the title's facts, the
equations as parts (cached in the state), the Pareto plot's spec.  No Textual."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from workbench.panes.equation_parts import equation_parts
from workbench.panes.equations_state import EquationsState


@dataclass(frozen=True)
class Title:
    name: str
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Body:
    parts: list  # see equation_parts
    layouts: dict  # width -> layout, filled by the widget, kept with the parts


@dataclass(frozen=True)
class PlotSpec:
    """The Pareto plot: the set's sweep summary, the shown row, the scored edit if any."""

    set_id: int
    row: int
    sweep: dict
    edit: tuple[int, float] | None


def title(state: EquationsState, s: dict) -> Title:
    """The set's name and its facts: threshold, terms, errors, the knee."""
    import numpy as np

    data = s["data"]
    row = state.row(s)
    sweep = data.get("sweep") or {}
    facts = []
    thr = state.threshold_of(s)
    if thr is not None:
        facts.append(f"threshold {thr:.3g}")
    flips = () if row is None else state.flips(s, row)
    if flips and state.refitting(s):
        facts.append(f"hand-edited from {sweep['n_terms'][row]} terms: refitting…")
    elif flips:
        facts.append(f"{int(np.count_nonzero(state.coef_of(s)))} terms (hand-edited from {sweep['n_terms'][row]}; "
                     "u undoes)")
        key = (s["id"], row, flips)
        if key not in state.edit_errors:
            facts.append("scoring…")
        else:
            before, after = state.edit_errors[key]
            for k, label in (("deriv_err", "ẋ err"), ("rollout_err", "rollout err")):
                if before[k] is not None and after[k] is not None:
                    facts.append(f"{label} {before[k]:.3g} → {after[k]:.3g}")
    elif row is not None:
        facts.append(f"{sweep['n_terms'][row]} terms")
        for key, label in (("deriv_err", "ẋ err"), ("rollout_err", "rollout err")):
            v = sweep.get(key, [None] * (row + 1))[row]
            if v is not None:
                facts.append(f"{label} {v:.3g}")
    if row is None and state.sweeps.get(s["id"]) is not None:
        n = int(np.count_nonzero(np.nan_to_num(np.asarray(data.get("coef"), float))))
        facts.append(f"{n} terms · the stored model (each equation at its own threshold; +/- the sweep)")
    if row is not None and row == sweep.get("knee"):
        facts.append("◆ knee")
    elif row is None and isinstance(data.get("val_error"), (int, float)):
        facts.append(f"val err {data['val_error']:.3g}")
    return Title(s["name"], tuple(facts))


def body(state: EquationsState, s: dict) -> Body:
    """The equations as drawn, cached per (set, row, edits, cursor, comparison): stepping
    back and forth through the sweep lays nothing out twice."""
    row = state.row(s)
    flips = () if row is None or state.refitting(s) else state.flips(s, row)
    o = compared_with(state, s) if state.comparing else None
    okey = None if o is None else (o["id"], state.row(o), state.flips(o, state.row(o) or 0))
    key = (s["id"], row, flips, state.cursor, okey)
    body = state.bodies.get(key)
    if body is None:
        base = None if row is None else state.sweeps[s["id"]].coefs[row]
        removed = [f for f in flips if base is not None and base[f] != 0]
        added = [f for f in flips if base is not None and base[f] == 0]
        parts = equation_parts(s["data"], state.coef_of(s), cursor=state.cursor, removed=removed, added=added)
        if o is not None:
            parts.append([[("", None)]])
            parts.append([[(f"── {o['name']} (threshold {state.threshold_of(o) or 0:.3g}) ──", "bold magenta")]])
            parts += equation_parts(o["data"], state.coef_of(o))
        if len(state.bodies) > 1024:
            state.bodies.clear()
        body = state.bodies[key] = Body(parts, {})
    return body


def prefetch(state: EquationsState, sets: list[dict], cancelled: Callable[[], bool]) -> None:
    """Lay out every swept row ahead (pure Python: a worker's job); the first visit of a
    threshold then costs the screen update only."""
    for s in sets:
        sweep = state.sweeps[s["id"]]
        for row in range(len(sweep)):
            if cancelled():
                return
            key = (s["id"], row, (), None, None)
            if key not in state.bodies:
                state.bodies[key] = Body(equation_parts(s["data"], sweep.coefs[row]), {})


def compared_with(state: EquationsState, s: dict) -> dict | None:
    """The set to compare with: same analysis prefix (e.g. CfC vs CfC-pruned), else the previous."""
    prefix = s["name"].split(" ")[0]
    candidates = [o for o in reversed(state.sets) if o["id"] != s["id"]]
    same = [o for o in candidates if o["name"].split(" ")[0] == prefix and o["name"] != s["name"]]
    return (same or candidates or [None])[0]


def plot(state: EquationsState, s: dict) -> PlotSpec | None:
    """What the Pareto plot shows, or None (no sweep summary, or the stored model)."""
    row = state.row(s)
    sweep = s["data"].get("sweep")
    if not sweep or row is None:
        return None
    return PlotSpec(s["id"], row, sweep, edit_point(state, s, row))


def edit_point(state: EquationsState, s: dict, row: int) -> tuple[int, float] | None:
    """(terms, error) of the hand-edited model once scored, in the plot's error column."""
    import numpy as np

    flips = state.flips(s, row)
    scored = state.edit_errors.get((s["id"], row, flips)) if flips else None
    if scored is None:
        return None
    col = s["data"]["sweep"].get("error_column", "rollout_err")
    err = scored[1].get(col if col in scored[1] else "deriv_err")
    if err is None or not err > 0 or not math.isfinite(err):
        return None
    return int(np.count_nonzero(state.coef_of(s))), float(err)
