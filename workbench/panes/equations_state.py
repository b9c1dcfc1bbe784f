"""What the Equations pane shows, and every decision it makes, as plain data (no Textual).

Which equation set is shown, which row of its threshold sweep (or its stored model, which
may be no row of it: each equation at its own threshold), the hand edits per row, the edit
cursor, the refits and scores of edits.  The pane (:mod:`.equations`) maps keys to these
methods, draws what :mod:`.equations_view` reads from here, runs the engine calls asked for
(a refit, a score) in workers, and hands the results back here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.panes.equation_parts import term_order

STORED = -1  # an ``index`` value: the set's stored model, which is no row of its sweep

Pair = tuple[int, int]  # (equation, term)
EditKey = tuple[int, int, tuple[Pair, ...]]  # (set id, sweep row, switched pairs)


@dataclass(frozen=True)
class Notice:
    """A line for the user (Textual's notify severities)."""

    text: str
    severity: str = "information"


@dataclass(frozen=True)
class Refit:
    """Hand edits whose kept terms are still to be refitted from the sweep's Gram."""

    set_id: int
    row: int
    flips: tuple[Pair, ...]
    previous: tuple[Pair, ...]  # the row's edits before: restored if the refit fails

    @property
    def key(self) -> EditKey:
        return (self.set_id, self.row, self.flips)


class EquationsState:
    """The pane's state; every key's decision is a method returning plain data (a Notice to
    show, a Refit to run, whether anything moved)."""

    def __init__(self) -> None:
        self.sets: list[dict] = []
        self.shown: int | None = None
        self.sweeps: dict[int, Any] = {}  # set id -> StoredSweep (None: no sweep artifact)
        self.index: dict[int, int] = {}  # set id -> chosen row of its sweep, or STORED
        self.edits: dict[int, dict[int, list[Pair]]] = {}  # set id -> row -> switched pairs
        self.cursor: Pair | None = None  # (equation, term); None until an edit key
        self.comparing = False
        self.edit_errors: dict[EditKey, tuple[dict, dict]] = {}  # -> (before, after)
        self._refits: dict[EditKey, Any] = {}  # -> refitted coefficients
        self._asked: set[tuple] = set()  # refits and scores handed to a worker
        self.bodies: dict[tuple, Any] = {}  # drawn equations (equations_view.body)

    # -- the session's UI state ------------------------------------------------------------
    def restore(self, ui: dict) -> None:
        self.shown = ui.get("equations.set")
        self.index = {int(k): v for k, v in (ui.get("equations.index") or {}).items()}
        self.edits = {int(k): {int(r): [tuple(f) for f in flips] for r, flips in rows.items()}
                      for k, rows in (ui.get("equations.edits") or {}).items()}

    def ui_index(self) -> dict:
        return {"equations.index": {str(k): v for k, v in self.index.items()}}

    def ui_edits(self) -> dict:
        return {"equations.edits": {str(k): {str(r): [list(f) for f in flips] for r, flips in rows.items()}
                                    for k, rows in self.edits.items() if rows}}

    # -- the sets ----------------------------------------------------------------------------
    def set_sets(self, sets: list[dict], sweeps: dict) -> list[int]:
        """Take the loaded sets; the ids in list order (newest first).  The shown set stays,
        else the newest is shown."""
        self.sets = sets
        self.sweeps.update(sweeps)
        ids = [s["id"] for s in reversed(sets)]
        if ids and self.shown not in ids:
            self.shown = ids[0]
        return ids

    def current(self) -> dict | None:
        return next((s for s in self.sets if s["id"] == self.shown), None)

    def pick_set(self, set_id: int) -> bool:
        """Show another set (its own equations: the cursor goes); False if it is the shown one."""
        if set_id == self.shown:
            return False
        self.shown, self.cursor = set_id, None
        return True

    # -- the threshold -----------------------------------------------------------------------
    def row(self, s: dict) -> int | None:
        """The sweep row shown for set ``s``, or None for the stored model itself.

        On arrival that is the stored model's row of the sweep; a model that is no row of it
        (each equation chosen at its own threshold, as the retina's) is shown as stored: the
        terms scored in the tables, not a sweep row that merely shares the threshold."""
        sweep = self.sweeps.get(s["id"])
        if sweep is None:
            return None
        if s["id"] not in self.index:
            row = nearest(sweep.thresholds, s["data"].get("threshold", 0.0))
            self.index[s["id"]] = row if same_support(sweep.coefs[row], s["data"].get("coef")) else STORED
        row = self.index[s["id"]]
        return None if row == STORED else row

    def threshold_of(self, s: dict) -> float | None:
        row = self.row(s)
        return s["data"].get("threshold") if row is None else float(self.sweeps[s["id"]].thresholds[row])

    def step(self, delta: int) -> Notice | None:
        """``+``/``-``: the next row of the sweep (from a stored model: its threshold's row, then the step)."""
        s = self.current()
        if s is None or self.sweeps.get(s["id"]) is None:
            return Notice("this equation set has no threshold sweep", "warning")
        sweep = self.sweeps[s["id"]]
        row = self.row(s)
        if row is None:
            row = nearest(sweep.thresholds, s["data"].get("threshold", 0.0))
        self.index[s["id"]] = max(0, min(len(sweep) - 1, row + delta))
        return None

    def knee(self) -> bool:
        """``k``: the sweep's knee; False if the set has none."""
        s = self.current()
        knee = (s or {}).get("data", {}).get("sweep", {}).get("knee", -1)
        if s is None or knee < 0 or self.sweeps.get(s["id"]) is None:
            return False
        self.index[s["id"]] = knee
        return True

    def type_threshold(self, text: str) -> tuple[bool, Notice | None]:
        """``t``: the swept threshold nearest the typed one.  ``(moved, notice)``."""
        try:
            value = float(text)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError
        except ValueError:
            return False, Notice(f"not a threshold: {text!r}", "error")
        s = self.current()
        if s is None or self.sweeps.get(s["id"]) is None:
            return False, None
        self.index[s["id"]] = nearest(self.sweeps[s["id"]].thresholds, value)
        got = self.threshold_of(s)
        if got and abs(math.log(max(value, 1e-300) / got)) > 0.05:
            return True, Notice(f"nearest swept threshold: {got:.3g}")
        return True, None

    # -- the coefficients and hand edits -----------------------------------------------------
    def flips(self, s: dict, row: int) -> tuple[Pair, ...]:
        return tuple(sorted(tuple(f) for f in self.edits.get(s["id"], {}).get(row, ())))

    def coef_of(self, s: dict, refit: bool = False):
        """The shown coefficients: the sweep row with its hand edits refitted.  While that
        refit is pending, the row as swept; ``refit=True`` (a worker's call, off the UI
        thread) computes it here instead."""
        row = self.row(s)
        if row is None:
            return s["data"].get("coef")
        flips = self.flips(s, row)
        if flips and (s["id"], row, flips) not in self._refits and refit:
            self._refits[(s["id"], row, flips)] = self.sweeps[s["id"]].edited(row, flips)
        return self._refits.get((s["id"], row, flips), self.sweeps[s["id"]].coefs[row])

    def refitting(self, s: dict) -> bool:
        row = self.row(s)
        flips = () if row is None else self.flips(s, row)
        return bool(flips) and (s["id"], row, flips) not in self._refits

    def refit_to_start(self, s: dict) -> Refit | None:
        """The shown edit's refit, if it is missing and no worker has been asked for it yet
        (edits restored from the session arrive without their refits)."""
        row = self.row(s)
        if row is None or not self.refitting(s):
            return None
        refit = Refit(s["id"], row, self.flips(s, row), ())
        return None if ("refit", refit.key) in self._asked else self._ask("refit", refit)

    def _ask(self, kind: str, refit: Refit) -> Refit:
        self._asked.add((kind, refit.key))
        return refit

    def refitted(self, refit: Refit, coef) -> None:
        self._refits[refit.key] = coef
        self._asked.discard(("refit", refit.key))

    def refit_failed(self, refit: Refit, why: str) -> Notice:
        """A refit that cannot be made (e.g. a term added to an old sweep without its Gram):
        the row's edits go back to what they were, unless they have changed since."""
        self._asked.discard(("refit", refit.key))
        rows = self.edits.get(refit.set_id, {})
        if tuple(sorted(map(tuple, rows.get(refit.row, ())))) == refit.flips:
            self._set_flips(refit.set_id, refit.row, refit.previous)
        return Notice(why, "error")

    def _set_flips(self, set_id: int, row: int, flips) -> None:
        self.edits.setdefault(set_id, {})[row] = sorted(flips)
        if not flips:
            del self.edits[set_id][row]

    def editable(self) -> tuple[dict, int] | Notice:
        """The shown set and sweep row hand edits apply to, or why there is none."""
        s = self.current()
        row = None if s is None else self.row(s)
        if row is not None:
            return s, row
        if s is not None and self.sweeps.get(s["id"]) is not None:
            return Notice("hand edits apply to a sweep row: + or - picks one", "warning")
        return Notice("hand edits need the set's threshold sweep (re-run its sindy step)", "warning")

    def terms(self, s: dict, row: int, state: int) -> list[int]:
        """The terms the cursor visits in one equation: the kept ones as drawn, then the removed."""
        import numpy as np

        coef = np.asarray(self.coef_of(s))
        base = self.sweeps[s["id"]].coefs[row]
        removed = sorted(j for i, j in self.flips(s, row) if i == state and base[i, j] != 0)
        return [int(j) for j in term_order(coef[state])] + removed

    def pick_equation(self, delta: int) -> Notice | None:
        """``[``/``]``: the cursor on the previous/next equation's largest term."""
        ed = self.editable()
        if isinstance(ed, Notice):
            return ed
        s, row = ed
        n = len(self.sweeps[s["id"]].coefs[row])
        state = 0 if self.cursor is None else (self.cursor[0] + delta) % n
        terms = self.terms(s, row, state)
        self.cursor = (state, terms[0] if terms else -1)
        return None

    def pick_term(self, delta: int) -> Notice | None:
        """left/right: the previous/next term of the cursor's equation, round the ends."""
        ed = self.editable()
        if isinstance(ed, Notice):
            return ed
        s, row = ed
        state = 0 if self.cursor is None else self.cursor[0]
        terms = self.terms(s, row, state)
        if not terms:
            self.cursor = (state, -1)
        elif self.cursor is None or self.cursor[1] not in terms:
            self.cursor = (state, terms[0] if delta > 0 else terms[-1])
        else:
            self.cursor = (state, terms[(terms.index(self.cursor[1]) + delta) % len(terms)])
        return None

    def toggle(self) -> Refit | Notice | None:
        """space: switch the cursor's term off (or back on).  A Refit to run when the kept
        terms' coefficients are not known yet."""
        ed = self.editable()
        if isinstance(ed, Notice):
            return ed
        if self.cursor is None or self.cursor[1] < 0:
            return Notice("pick a term first: [ ] choose the equation, left/right the term")
        return self._flip(*ed, self.cursor)

    def start_add_term(self) -> str | Notice:
        """``a``: the prompt for the term's name, or why no term can be added."""
        ed = self.editable()
        if isinstance(ed, Notice):
            return ed
        if self.cursor is None:
            self.cursor = (0, -1)
        return f"term to add to equation {self.cursor[0]}, e.g. x0 x1 (enter to add, escape to cancel)"

    def add_term(self, name: str) -> Refit | Notice | None:
        """The typed term added to the cursor's equation (a library term not in it yet)."""
        import numpy as np

        ed = self.editable()
        if isinstance(ed, Notice) or not name:
            return ed if isinstance(ed, Notice) else None
        s, row = ed
        feats = s["data"].get("feature_names") or []
        if name not in feats:
            near = [f for f in feats if name.replace(" ", "") in f.replace(" ", "")][:6]
            return Notice(f"no term {name!r} in the library" + (f"; e.g. {', '.join(near)}" if near else ""),
                          "error")
        state, j = (self.cursor or (0, -1))[0], feats.index(name)
        if np.asarray(self.coef_of(s))[state, j] != 0:
            return Notice(f"{name} is already in equation {state}")
        self.cursor = (state, j)
        return self._flip(s, row, self.cursor)

    def _flip(self, s: dict, row: int, pair: Pair) -> Refit | None:
        previous = self.flips(s, row)
        flips = tuple(sorted(set(previous) ^ {tuple(pair)}))  # switching twice undoes
        self._set_flips(s["id"], row, flips)
        if not flips or (s["id"], row, flips) in self._refits:
            return None
        return self._ask("refit", Refit(s["id"], row, flips, previous))

    def reset_edits(self) -> bool:
        """``u``: the sweep's row again; False if it had no edits."""
        s = self.current()
        row = None if s is None else self.row(s)
        return row is not None and self.edits.get(s["id"], {}).pop(row, None) is not None

    def score_to_start(self, s: dict) -> EditKey | None:
        """The shown edit, once refitted, if it has no errors yet and no worker scores it."""
        row = self.row(s)
        flips = () if row is None else self.flips(s, row)
        key = (s["id"], row, flips)
        if not flips or self.refitting(s) or key in self.edit_errors or ("score", key) in self._asked:
            return None
        self._asked.add(("score", key))
        return key

    def scored(self, key: EditKey, before: dict, after: dict) -> bool:
        """Keep an edit's errors; True if it is the edit shown (its title and plot change)."""
        self.edit_errors[key] = (before, after)
        self._asked.discard(("score", key))
        s = self.current()
        row = None if s is None else self.row(s)
        return row is not None and (s["id"], row, self.flips(s, row)) == key


def load_sweep_of(data: dict):
    """The sweep artifact named in the payload (an ``engine.sindy`` StoredSweep), or None."""
    path = data.get("sweep_path")
    if not path:
        return None
    from engine.sindy import load_sweep

    try:
        return load_sweep(path)
    except (OSError, KeyError, ValueError):
        return None  # artifact gone: the stored model still shows


def same_support(a, b) -> bool:
    import numpy as np

    try:
        return bool(np.array_equal(np.asarray(a, float) != 0, np.nan_to_num(np.asarray(b, float)) != 0))
    except (TypeError, ValueError):
        return False


def nearest(thresholds, value: float) -> int:
    """The row of the swept threshold nearest ``value`` on a log scale."""
    import numpy as np

    th = np.asarray(thresholds, dtype=float)
    return int(np.argmin(np.abs(np.log(np.maximum(th, 1e-300)) - math.log(max(value, 1e-300)))))
