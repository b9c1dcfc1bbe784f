"""Equations pane: the sparse equations distilled by SINDy, one per state, terms
sorted by |coefficient| with a colour scale, and a threshold you can move.

Moving the threshold does not refit: each equation set carries its threshold
sweep (every threshold's coefficients, solved at once by the batched STLSQ),
so ``+``/``-`` step through it and redraw at once, with the term count and the
validation errors, on a Pareto plot of terms against error with the knee marked.

Terms can be switched by hand: ``[``/``]`` pick an equation, left/right a term,
space switches it off (or back on), ``a`` adds a term by name.  The kept terms
are refitted by least squares from the sweep's training Gram (no data pass, a
millisecond), and the held-out derivative and rollout errors before → after are
shown in the title.  Edits belong to the threshold they were made at and are
kept in the session's UI state.
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Span, Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from workbench.messages import StoreUpdate
from workbench.panes.base import StorePane
from workbench.widgets.plotext_view import render_plotext

SCALE = ("grey50", "cyan", "green", "yellow", "bold red")


def equation_parts(payload: dict, coef=None, precision: int = 3, cursor=None, removed=(), added=()) -> list:
    """The equations as units that are never split across lines: per equation, the left-hand
    side, one unit per term (largest |coefficient| first, coloured by its decade relative to
    the largest coefficient), the hand-removed terms struck through, and the term count.  A unit
    is a list of ``(text, style)`` pieces; ``cursor`` ``(state, term)`` is reversed, ``added``
    terms are underlined."""
    import numpy as np

    coef = payload.get("coef") if coef is None else coef
    coef = np.asarray(coef if coef is not None else [], dtype=float)
    features = payload.get("feature_names") or []
    states = payload.get("state_names") or [f"x{i}" for i in range(len(coef))]
    biggest = float(np.abs(coef).max()) if coef.size else 0.0
    biggest = biggest or 1.0
    top = len(SCALE) - 1
    removed, added = set(map(tuple, removed)), set(map(tuple, added))
    from engine.sindy.equation_set import written  # a map's h0[k+1] = h0[k] + ..., constants

    form = written(payload)
    if form is not None and form.display_scale != 1.0:  # a map: what one step adds
        coef, biggest = coef * form.display_scale, biggest * form.display_scale
    out = []
    for k, (name, row) in enumerate(zip(states, coef)):
        order = term_order(row)
        if form is not None and name in form.constants:
            out.append([[(form.equations()[k], "bold")], [("   [not fitted]", "dim")]])
            continue
        lhs = form.lhs(name) if form is not None else f"({name})' = "
        cont = lhs.endswith(" + ")  # a map: "h0[k+1] = h0[k]", then every term with its sign
        units: list[list[tuple[str, str | None]]] = [[(lhs[:-3] if cont else lhs, "bold")]]
        if not len(order) and not cont:
            units.append([("0", "dim")])
        for i, j in enumerate(order):
            c = float(row[j])
            sign = (" - " if c < 0 else " + ") if i or cont else ("-" if c < 0 else "")
            decade = math.floor(math.log10(abs(c) / biggest))
            unit = [(sign, None)] if sign else []
            unit.append((f"{abs(c):.{precision}g}", SCALE[max(0, min(top, top + decade))]))
            if features[j] != "1":
                unit.append((f" {features[j]}", None))
            extra = ("underline" if (k, j) in added else "") + (" reverse" if cursor == (k, j) else "")
            if extra:
                unit = [(t, f"{st or ''} {extra}".strip()) for t, st in unit]
            units.append(unit)
        for j in sorted(j for i, j in removed if i == k):
            # marked by a sign as well as the strike, which plain text (NO_COLOR, a copy) loses
            units.append([(f"  ✗{features[j]}", "strike dim reverse" if cursor == (k, j) else "strike dim")])
        units.append([(f"   [{len(order)} term{'s' * (len(order) != 1)}]", "dim")])
        out.append(units)
    return out


def parts_to_text(parts: list) -> Text:
    """One Rich Text, an equation per line (built as one string plus spans: appending ~2,000
    terms one by one to a Text is what made a dense (220-term) model slow to draw)."""
    chunks: list[str] = []
    spans: list[Span] = []
    pos = 0
    for units in parts:
        for unit in units:
            for text, style in unit:
                chunks.append(text)
                if style:
                    spans.append(Span(pos, pos + len(text), style))
                pos += len(text)
        chunks.append("\n")
        pos += 1
    return Text("".join(chunks), spans=spans)


def render_equations(payload: dict, coef=None, precision: int = 3, cursor=None, removed=(), added=()) -> Text:
    """The equations as a Rich Text (see :func:`equation_parts`)."""
    return parts_to_text(equation_parts(payload, coef, precision, cursor, removed, added))


_STYLES: dict[str | None, Any] = {}


def layout_parts(parts: list, width: int) -> tuple[list, dict]:
    """Wrap the units into lines of ``width`` cells, continuations indented under the
    right-hand side: ``(lines, where)`` with ``lines[i] = (equation, first unit, end unit)`` and
    ``where[(equation, unit)]`` the line of a unit.

    Our own greedy wrap over whole terms, on widths alone: Rich's general-purpose wrap of a
    220-term model took ~100 ms on a loaded CPU; the Strips of a line are made only when it
    is drawn (:func:`line_strip`).  A unit wider than a line gets a line of its own, cut.
    """
    width = max(width, 20)
    lines: list[tuple[int, int, int]] = []
    where: dict[tuple[int, int], int] = {}
    for k, units in enumerate(parts):
        widths = [sum(len(t) for t, _ in unit) for unit in units]
        indent = min(widths[0], width // 3) if widths else 0
        first, x = 0, 0
        for u, w in enumerate(widths):
            if u > first:
                if x + w > width:  # this unit starts the next line
                    lines.append((k, first, u))
                    first = u
                    x = indent + w - (len(units[u][0][0]) - len(units[u][0][0].lstrip()))
                else:
                    x += w
            else:
                x += w
            where[(k, u)] = len(lines)
        lines.append((k, first, len(widths)))
    return lines, where


def line_strip(parts: list, line: tuple[int, int, int], width: int):
    """The Strip of one laid-out line (see :func:`layout_parts`)."""
    from rich.segment import Segment
    from rich.style import Style
    from textual.strip import Strip

    k, first, end = line
    units = parts[k]
    segs = []
    if first > 0:
        segs.append(Segment(" " * min(sum(len(t) for t, _ in units[0]), max(width, 20) // 3)))
    for u in range(first, end):
        for i, (text, st) in enumerate(units[u]):
            if first > 0 and u == first and i == 0:
                text = text.lstrip()  # no blank between the indent and the sign
            if st not in _STYLES:
                _STYLES[st] = Style.parse(st) if st else Style.null()
            segs.append(Segment(text, _STYLES[st]))
    return Strip(segs)


class EquationText(Static):
    """The equations, drawn line by line from a layout cached per width.

    A ``Static`` (its ``render()`` is the whole Text, for copying and tests) whose lines come
    from :func:`layout_parts`: inside the scrolling body only the visible lines are drawn, and
    a new threshold costs a layout of a few ms instead of Textual wrapping ~30,000 characters.
    """

    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self._parts: list = []
        self._text: Text | None = Text("")
        self._layouts: dict[int, tuple[list, dict, dict]] = {}

    def show(self, parts: list, text: Text | None = None, layouts: dict | None = None) -> None:
        """Draw ``parts``; ``layouts`` (width -> layout) is a cache the caller may keep."""
        n_before = len(self.layout_for(self.content_region.width)[0]) if self._parts else -1
        self._parts = parts
        self._text = text  # made on demand (copy, tests): drawing needs only the parts
        self._layouts = {} if layouts is None else layouts
        # a new layout of the screen only when the height changes (most steps keep it)
        self.refresh(layout=len(self.layout_for(self.content_region.width)[0]) != n_before)

    def layout_for(self, width: int) -> tuple[list, dict, dict]:
        """``(lines, where, strips made so far)`` at ``width``."""
        if width not in self._layouts:
            if len(self._layouts) > 4:  # widths of a resize drag
                self._layouts.clear()
            self._layouts[width] = (*layout_parts(self._parts, width), {})
        return self._layouts[width]

    def render(self) -> Text:
        if self._text is None:
            self._text = parts_to_text(self._parts)
        return self._text

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.layout_for(width)[0])

    def render_line(self, y: int):
        from textual.strip import Strip

        width = self.content_region.width
        lines, _, strips = self.layout_for(width)
        if y >= len(lines):
            return Strip.blank(width, self.rich_style)
        if y not in strips:
            strips[y] = line_strip(self._parts, lines[y], width).crop_extend(0, width, None).apply_style(self.rich_style)
        return strips[y]


def term_order(row):
    """The nonzero terms of one equation, largest |coefficient| first (as drawn)."""
    import numpy as np

    nz = np.flatnonzero(row)
    return nz[np.argsort(-np.abs(row[nz]), kind="stable")]


class EquationsPane(StorePane):
    BINDINGS = [
        Binding("plus,equals_sign", "sparser", "Threshold up"),
        Binding("minus", "denser", "Threshold down"),
        Binding("k", "knee", "Knee"),
        Binding("t", "type_threshold", "Type threshold"),
        Binding("c", "compare", "Compare sets"),
        Binding("e", "export", "Export txt/tex/json/sympy"),
        Binding("y", "copy", "Copy (OSC 52)"),
        # hand edits: in the help screen (?), not the footer (it is full)
        Binding("left_square_bracket", "pick_equation(-1)", "Previous equation (edit cursor)", show=False),
        Binding("right_square_bracket", "pick_equation(1)", "Next equation (edit cursor)", show=False),
        Binding("left", "pick_term(-1)", "Previous term (edit cursor)", show=False),
        Binding("right", "pick_term(1)", "Next term (edit cursor)", show=False),
        Binding("space", "toggle_term", "Switch the term off/on, refit the rest", show=False),
        Binding("a", "add_term", "Add a term by name to the equation", show=False),
        Binding("u", "reset_edits", "Undo the hand edits at this threshold", show=False),
    ]
    DEFAULT_CSS = """
    EquationsPane #eq-list { height: 1fr; }
    EquationsPane #eq-title { height: auto; }
    EquationsPane #eq-body { height: 1fr; }
    EquationsPane #eq-pareto { height: 12; }
    EquationsPane #eq-threshold { display: none; }
    EquationsPane #eq-threshold.visible { display: block; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.sets: list[dict] = []
        self.shown: int | None = None
        self.sweeps: dict[int, Any] = {}  # set id -> (thresholds, coefs) from the sweep artifact
        self.index: dict[int, int] = {}   # set id -> chosen row of its sweep
        self.comparing = False
        self._max = -1
        self._pareto_timer = None
        # hand edits: set id -> sweep row -> switched (state, term) pairs
        self.edits: dict[int, dict[int, list[tuple[int, int]]]] = {}
        self.cursor: tuple[int, int] | None = None  # (state, term); None until an edit key
        self._edited: dict[tuple, Any] = {}  # (set, row, flips) -> refitted coef
        self.edit_errors: dict[tuple, tuple[dict, dict]] = {}  # same key -> (before, after)
        self._input_mode = "threshold"
        self._pareto_key = None
        self._body_cache: dict[tuple, Text] = {}
        self._scoring: set[tuple] = set()
        self._title_lines = -1
        self._plots: dict[tuple, Any] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-split"):
            with Vertical(classes="side"):
                yield Static("Equation sets", classes="title")
                yield OptionList(id="eq-list")
            with Vertical(classes="main"):
                yield Static("no equations yet — run an analysis's sindy step", id="eq-title",
                             classes="title")
                yield Input(placeholder="threshold, e.g. 0.05 (enter to apply, escape to cancel)",
                            id="eq-threshold")
                with VerticalScroll(id="eq-body"):
                    yield EquationText(id="eq-text")
                yield Static("", id="eq-pareto")

    def on_mount(self) -> None:
        # name + facts (threshold, terms, errors): the app's `.title` is one line high
        self.query_one("#eq-title").styles.height = "auto"
        ui = self.wb.session.ui()
        self.shown = ui.get("equations.set")
        self.index = {int(k): v for k, v in (ui.get("equations.index") or {}).items()}
        self.edits = {int(k): {int(r): [tuple(f) for f in flips] for r, flips in rows.items()}
                      for k, rows in (ui.get("equations.edits") or {}).items()}

    # -- loading -------------------------------------------------------------------
    def store_update(self, msg: StoreUpdate) -> None:
        if msg.equations_max_id != self._max:
            self._max = msg.equations_max_id
            self.load_sets()

    @work(thread=True, exclusive=True, group="eq-load", exit_on_error=False)
    def load_sets(self) -> None:
        from engine.sindy.equation_set import read_rows

        # every row validated (and older shapes migrated) before the pane reads it: a payload
        # of another shape or a hand-edited row is skipped with one line, never a crash
        good, bad = read_rows(self.wb.store.equations())
        sets = [{**row, "data": eqs.to_payload()} for row, eqs in good]
        sweeps = {s["id"]: _load_sweep(s["data"]) for s in sets if s["id"] not in self.sweeps}
        self.app.call_from_thread(self._set_sets, sets, sweeps)
        for line in bad:
            self.app.call_from_thread(self.app.notify, line, severity="warning")

    def _set_sets(self, sets: list[dict], sweeps: dict) -> None:
        self.sets = sets
        self.sweeps.update(sweeps)
        lst = self.query_one("#eq-list", OptionList)
        lst.clear_options()
        for s in reversed(sets):
            lst.add_option(Option(f"{s['name']}", id=str(s["id"])))
        ids = [s["id"] for s in reversed(sets)]
        if ids and self.shown not in ids:
            self.shown = ids[0]
        if self.shown in ids:
            lst.highlighted = ids.index(self.shown)
        self.redraw()
        if sweeps:
            self.prefetch([s for s in sets if self.sweeps.get(s["id"]) is not None])

    @work(thread=True, exclusive=True, group="eq-prefetch", exit_on_error=False)
    def prefetch(self, sets: list[dict]) -> None:
        """Lay out every swept row ahead (pure Python, off the UI thread): the first visit of a
        threshold then costs the screen update only."""
        from textual.worker import get_current_worker

        worker = get_current_worker()
        for s in sets:
            sweep = self.sweeps[s["id"]]
            for row in range(len(sweep)):
                key = (s["id"], row, (), None, None)
                if worker.is_cancelled:
                    return
                if key not in self._body_cache:
                    self._body_cache[key] = (equation_parts(s["data"], sweep.coefs[row]), None, {})

    def current(self) -> dict | None:
        return next((s for s in self.sets if s["id"] == self.shown), None)

    # -- the threshold ---------------------------------------------------------------
    def _row(self, s: dict) -> int | None:
        """The sweep row shown for set ``s``, or None for the stored model itself.

        On arrival that is the stored model's row of the sweep; a model that is no row of it
        (each equation chosen at its own threshold, as the retina's) is shown as stored
        (``STORED``): the terms scored in the tables, not a sweep row that merely shares the
        threshold.  +/-, k and t move from there into the sweep."""
        sweep = self.sweeps.get(s["id"])
        if sweep is None:
            return None
        if s["id"] not in self.index:
            row = _nearest(sweep.thresholds, s["data"].get("threshold", 0.0))
            self.index[s["id"]] = row if _same_support(sweep.coefs[row], s["data"].get("coef")) else STORED
        row = self.index[s["id"]]
        return None if row == STORED else row

    def coef_of(self, s: dict):
        """The shown coefficients: the sweep row, with the hand edits made at that row."""
        row = self._row(s)
        if row is None:
            return s["data"].get("coef")
        flips = self._flips(s, row)
        if not flips:
            return self.sweeps[s["id"]].coefs[row]
        key = (s["id"], row, flips)
        if key not in self._edited:
            self._edited[key] = self.sweeps[s["id"]].edited(row, flips)
        return self._edited[key]

    def _flips(self, s: dict, row: int) -> tuple:
        return tuple(sorted(self.edits.get(s["id"], {}).get(row, ())))

    def threshold_of(self, s: dict) -> float | None:
        row = self._row(s)
        return s["data"].get("threshold") if row is None else float(self.sweeps[s["id"]].thresholds[row])

    def _step(self, delta: int) -> None:
        s = self.current()
        if s is None or self.sweeps.get(s["id"]) is None:
            self.app.notify("this equation set has no threshold sweep", severity="warning")
            return
        sweep = self.sweeps[s["id"]]
        row = self._row(s)
        if row is None:  # from the stored model: its threshold's row of the sweep, then the step
            row = _nearest(sweep.thresholds, s["data"].get("threshold", 0.0))
        self.index[s["id"]] = max(0, min(len(sweep) - 1, row + delta))
        self._remember()
        self.redraw()

    def action_sparser(self) -> None:
        self._step(+1)

    def action_denser(self) -> None:
        self._step(-1)

    def action_knee(self) -> None:
        s = self.current()
        knee = (s or {}).get("data", {}).get("sweep", {}).get("knee", -1)
        if s is not None and knee >= 0 and self.sweeps.get(s["id"]) is not None:
            self.index[s["id"]] = knee
            self._remember()
            self.redraw()

    def action_type_threshold(self) -> None:
        self._ask("threshold", "threshold, e.g. 0.05 (enter to apply, escape to cancel)")

    def _ask(self, mode: str, placeholder: str) -> None:
        self._input_mode = mode
        box = self.query_one("#eq-threshold", Input)
        box.placeholder = placeholder
        box.add_class("visible")
        box.value = ""
        box.focus()

    def _close_input(self) -> None:
        """Hide the threshold/term box and give the keys back to the list (↑/↓ work at once)."""
        self.query_one("#eq-threshold", Input).remove_class("visible")
        self.query_one("#eq-list", OptionList).focus()

    @on(Input.Submitted, "#eq-threshold")
    def on_threshold(self, event: Input.Submitted) -> None:
        self._close_input()
        if self._input_mode == "term":
            self._add_term(event.value.strip())
            return
        s = self.current()
        try:
            value = float(event.value)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError
        except ValueError:
            self.app.notify(f"not a threshold: {event.value!r}", severity="error")
            return
        if s is not None and self.sweeps.get(s["id"]) is not None:
            self.index[s["id"]] = _nearest(self.sweeps[s["id"]].thresholds, value)
            self._remember()
            self.redraw()
            got = self.threshold_of(s)
            if got and abs(math.log(max(value, 1e-300) / got)) > 0.05:
                self.app.notify(f"nearest swept threshold: {got:.3g}")

    def on_key(self, event) -> None:
        box = self.query_one("#eq-threshold", Input)
        if event.key == "escape" and box.has_class("visible"):
            self._close_input()
            event.stop()

    def _remember(self) -> None:
        self.wb.save_ui(**{"equations.index": {str(k): v for k, v in self.index.items()}})

    # -- hand edits ------------------------------------------------------------------
    def _editable(self) -> tuple[dict, int] | None:
        s = self.current()
        row = None if s is None else self._row(s)
        if row is None:
            if s is not None and self.sweeps.get(s["id"]) is not None:
                self.app.notify("hand edits apply to a sweep row: + or - picks one", severity="warning")
            else:
                self.app.notify("hand edits need the set's threshold sweep (re-run its sindy step)", severity="warning")
            return None
        return s, row

    def _terms(self, s: dict, row: int, state: int) -> list[int]:
        """The terms the cursor visits in one equation: the kept ones as drawn, then the removed."""
        import numpy as np

        coef = np.asarray(self.coef_of(s))
        removed = sorted(j for i, j in self._flips(s, row) if i == state and self.sweeps[s["id"]].coefs[row][i, j] != 0)
        return [int(j) for j in term_order(coef[state])] + removed

    def action_pick_equation(self, delta: int) -> None:
        ed = self._editable()
        if ed is None:
            return
        s, row = ed
        n = len(self.sweeps[s["id"]].coefs[row])
        state = 0 if self.cursor is None else (self.cursor[0] + delta) % n
        terms = self._terms(s, row, state)
        self.cursor = (state, terms[0] if terms else -1)
        self.redraw()

    def action_pick_term(self, delta: int) -> None:
        ed = self._editable()
        if ed is None:
            return
        s, row = ed
        state = 0 if self.cursor is None else self.cursor[0]
        terms = self._terms(s, row, state)
        if not terms:
            self.cursor = (state, -1)
        elif self.cursor is None or self.cursor[1] not in terms:
            self.cursor = (state, terms[0] if delta > 0 else terms[-1])
        else:
            self.cursor = (state, terms[(terms.index(self.cursor[1]) + delta) % len(terms)])
        self.redraw()

    def action_toggle_term(self) -> None:
        ed = self._editable()
        if ed is None:
            return
        if self.cursor is None or self.cursor[1] < 0:
            self.app.notify("pick a term first: [ ] choose the equation, left/right the term")
            return
        self._flip(*ed, self.cursor)

    def action_add_term(self) -> None:
        if self._editable() is None:
            return
        if self.cursor is None:
            self.cursor = (0, -1)
        self._ask("term", f"term to add to equation {self.cursor[0]}, e.g. x0 x1 (enter to add, escape to cancel)")

    def _add_term(self, name: str) -> None:
        ed = self._editable()
        if ed is None or not name:
            return
        s, row = ed
        feats = s["data"].get("feature_names") or []
        if name not in feats:
            near = [f for f in feats if name.replace(" ", "") in f.replace(" ", "")][:6]
            self.app.notify(f"no term {name!r} in the library" + (f"; e.g. {', '.join(near)}" if near else ""),
                            severity="error")
            return
        state, j = self.cursor[0], feats.index(name)
        import numpy as np

        if np.asarray(self.coef_of(s))[state, j] != 0:
            self.app.notify(f"{name} is already in equation {state}")
            return
        self.cursor = (state, j)
        self._flip(s, row, self.cursor)

    def _flip(self, s: dict, row: int, pair: tuple[int, int]) -> None:
        flips = set(self._flips(s, row))
        flips ^= {tuple(pair)}  # switching twice undoes
        try:
            self.sweeps[s["id"]].edited(row, sorted(flips))
        except ValueError as exc:  # e.g. adding a term to an old sweep without its Gram
            self.app.notify(str(exc), severity="error")
            return
        self.edits.setdefault(s["id"], {})[row] = sorted(flips)
        if not flips:
            del self.edits[s["id"]][row]
        self._remember_edits()
        self.redraw()

    def action_reset_edits(self) -> None:
        s = self.current()
        row = None if s is None else self._row(s)
        if row is not None and self.edits.get(s["id"], {}).pop(row, None) is not None:
            self._remember_edits()
            self.redraw()

    def _remember_edits(self) -> None:
        self.wb.save_ui(**{"equations.edits": {str(k): {str(r): [list(f) for f in flips] for r, flips in rows.items()}
                                               for k, rows in self.edits.items() if rows}})

    @work(thread=True, exclusive=True, group="eq-score", exit_on_error=False)
    def score_edit(self, s: dict, row: int, flips: tuple) -> None:
        """Held-out derivative and rollout errors of the sweep row and of its edit."""
        from engine.sindy.export import model_from_dict

        sweep = self.sweeps[s["id"]]
        try:
            lib = model_from_dict(s["data"]).library_
            before = sweep.errors(sweep.coefs[row], lib)
            after = sweep.errors(sweep.edited(row, flips), lib)
        except Exception as exc:  # scoring is a nicety: say why, keep the edit
            before = after = {"deriv_err": None, "rollout_err": None}
            self.app.call_from_thread(self.app.notify, f"could not score the edit: {exc}", severity="warning")
        self.app.call_from_thread(self._scored, (s["id"], row, flips), before, after)

    def _scored(self, key: tuple, before: dict, after: dict) -> None:
        self.edit_errors[key] = (before, after)
        self._scoring.discard(key)
        s = self.current()
        if s is not None and (s["id"], self._row(s), self._flips(s, self._row(s) or 0)) == key:
            self._draw_title(s)
            self._draw_pareto(s, key[1])

    # -- drawing ---------------------------------------------------------------------
    def redraw(self) -> None:
        s = self.current()
        if s is None:
            return
        row = self._row(s)
        self._draw_title(s)
        view = self.query_one("#eq-text", EquationText)
        view.show(*self._body(s, row))
        if self.cursor is not None:  # keep the cursor's line in view
            lines = view.layout_for(view.content_region.width)[1]
            line = next((ln for (k, u), ln in lines.items() if k == self.cursor[0]), None)
            if line is not None:
                self.query_one("#eq-body").scroll_to(y=max(0, line - 1), animate=False)
        # the plot trails the equations: a held-down key redraws the text at once
        if self._pareto_timer is not None:
            self._pareto_timer.stop()
        self._pareto_timer = self.set_timer(0.06, lambda: self._draw_pareto(s, row))

    def _draw_title(self, s: dict) -> None:
        data = s["data"]
        row = self._row(s)
        sweep = data.get("sweep") or {}
        facts = []
        thr = self.threshold_of(s)
        if thr is not None:
            facts.append(f"threshold {thr:.3g}")
        flips = () if row is None else self._flips(s, row)
        if row is not None and flips:
            import numpy as np

            facts.append(f"{int(np.count_nonzero(self.coef_of(s)))} terms (hand-edited from {sweep['n_terms'][row]}; "
                         "u undoes)")
            key = (s["id"], row, flips)
            if key not in self.edit_errors:
                facts.append("scoring…")
                if key not in self._scoring:
                    self._scoring.add(key)
                    self.score_edit(s, row, flips)
            else:
                before, after = self.edit_errors[key]
                for k, label in (("deriv_err", "ẋ err"), ("rollout_err", "rollout err")):
                    if before[k] is not None and after[k] is not None:
                        facts.append(f"{label} {before[k]:.3g} → {after[k]:.3g}")
        elif row is not None:
            facts.append(f"{sweep['n_terms'][row]} terms")
            for key, label in (("deriv_err", "ẋ err"), ("rollout_err", "rollout err")):
                v = sweep.get(key, [None] * (row + 1))[row]
                if v is not None:
                    facts.append(f"{label} {v:.3g}")
        if row is None and self.sweeps.get(s["id"]) is not None:
            import numpy as np

            n = int(np.count_nonzero(np.nan_to_num(np.asarray(data.get("coef"), float))))
            facts.append(f"{n} terms · the stored model (each equation at its own threshold; +/- the sweep)")
        if row is not None and row == sweep.get("knee"):
            facts.append("◆ knee")
        elif row is None and isinstance(data.get("val_error"), (int, float)):
            facts.append(f"val err {data['val_error']:.3g}")
        title = self.query_one("#eq-title", Static)
        text = Text.assemble((s["name"], "bold"), "\n", (" · ".join(facts), "dim"))
        n_lines = len(text.wrap(self.app.console, max(title.content_region.width, 1)))
        title.update(text, layout=n_lines != self._title_lines)  # a screen layout only if its height changes
        self._title_lines = n_lines

    def _body(self, s: dict, row: int | None) -> tuple[list, None, dict]:
        """The equations as drawn (parts, no Text yet, layouts per width), cached per (set, row, edits,
        cursor): stepping back and forth through the sweep lays nothing out twice."""
        flips = () if row is None else self._flips(s, row)
        other = self._other(s) if self.comparing else None
        okey = None if other is None else (other["id"], self._row(other), self._flips(other, self._row(other) or 0))
        key = (s["id"], row, flips, self.cursor, okey)
        body = self._body_cache.get(key)
        if body is None:
            base = None if row is None else self.sweeps[s["id"]].coefs[row]
            removed = [f for f in flips if base is not None and base[f] != 0]
            added = [f for f in flips if base is not None and base[f] == 0]
            parts = equation_parts(s["data"], self.coef_of(s), cursor=self.cursor, removed=removed, added=added)
            if other is not None:
                parts.append([[("", None)]])
                parts.append([[(f"── {other['name']} (threshold {self.threshold_of(other) or 0:.3g}) ──", "bold magenta")]])
                parts += equation_parts(other["data"], self.coef_of(other))
            if len(self._body_cache) > 1024:
                self._body_cache.clear()
            body = self._body_cache[key] = (parts, None, {})
        return body

    def _other(self, s: dict) -> dict | None:
        """The set to compare with: same analysis prefix (e.g. CfC vs CfC-pruned), else the previous."""
        prefix = s["name"].split(" ")[0]
        candidates = [o for o in reversed(self.sets) if o["id"] != s["id"]]
        same = [o for o in candidates if o["name"].split(" ")[0] == prefix and o["name"] != s["name"]]
        return (same or candidates or [None])[0]

    def _draw_pareto(self, s: dict, row: int | None) -> None:
        plot = self.query_one("#eq-pareto", Static)
        sweep = s["data"].get("sweep")
        if not sweep or row is None:
            plot.update("")
            self._pareto_key = None
            return
        edit = self._edit_point(s, row)
        key = (s["id"], row, plot.size.width, plot.size.height, edit)
        if key == self._pareto_key:  # only the text changed (cursor, comparison)
            return
        self._pareto_key = key
        if key in self._plots:  # rows seen before: no new plot (plotext takes ~10 ms)
            plot.update(self._plots[key], layout=False)
            return
        col = sweep.get("error_column", "rollout_err")
        errs = sweep.get(col) or sweep.get("deriv_err")
        pts = [(n, e) for n, e in zip(sweep["n_terms"], errs) if e is not None and e > 0]
        if not pts:
            plot.update("")
            return
        knee = sweep.get("knee", -1)

        def draw(plt) -> None:
            # no legend box (it covered the ● marker): the markers are named in the x label
            plt.scatter([p[0] for p in pts], [p[1] for p in pts], marker="dot")
            if 0 <= knee < len(errs) and errs[knee]:
                plt.scatter([sweep["n_terms"][knee]], [errs[knee]], marker="◆", color="yellow")
            if errs[row]:
                plt.scatter([sweep["n_terms"][row]], [errs[row]], marker="●", color="red")
            if edit is not None:
                plt.scatter([edit[0]], [edit[1]], marker="✚", color="magenta")
            plt.yscale("log")
            plt.xlabel(f"terms · {col}  ● shown ◆ knee" + (" ✚ edited" if edit is not None else ""))

        w = plot.size.width or 60
        if len(self._plots) > 512:
            self._plots.clear()
        self._plots[key] = render_plotext(draw, w, max(plot.size.height, 5))
        plot.update(self._plots[key], layout=False)  # its height is set by _fit_pareto

    def _edit_point(self, s: dict, row: int) -> tuple[int, float] | None:
        """(terms, error) of the hand-edited model once scored, in the plot's error column."""
        flips = self._flips(s, row)
        scored = self.edit_errors.get((s["id"], row, flips)) if flips else None
        if scored is None:
            return None
        col = s["data"]["sweep"].get("error_column", "rollout_err")
        err = scored[1].get(col if col in scored[1] else "deriv_err")
        if err is None or not err > 0 or not math.isfinite(err):
            return None
        import numpy as np

        return int(np.count_nonzero(self.coef_of(s))), float(err)

    @on(OptionList.OptionHighlighted, "#eq-list")
    def on_pick(self, event: OptionList.OptionHighlighted) -> None:
        new = int(event.option.id)
        if new != self.shown:
            self.shown = new
            self.cursor = None  # another set: other equations
            self.wb.save_ui(**{"equations.set": new})
            self.redraw()

    def action_compare(self) -> None:
        self.comparing = not self.comparing
        self._fit_pareto()
        self.redraw()

    def on_resize(self) -> None:
        # two handlers of this name stood here and the second hid the first: the plot is
        # refitted to the new height and the equations are laid out again for the new width
        self._fit_pareto()
        self.call_after_refresh(self.redraw)

    def _fit_pareto(self) -> None:
        """The Pareto plot takes at most a third of the pane (12 rows on a tall screen, none
        below 5): at 80x24 nine equations need the room.  Comparing hides it for the same reason."""
        plot = self.query_one("#eq-pareto", Static)
        rows = min(12, self.size.height // 3)
        show = rows >= 5 and not self.comparing
        plot.display = show
        if show and plot.styles.height != rows:
            plot.styles.height = rows
            self._pareto_key = None

    # -- export ----------------------------------------------------------------------
    def model(self, s: dict):
        """The shown equations as an engine.sindy model (at the chosen threshold)."""
        import numpy as np

        from engine.sindy.export import model_from_dict

        m = model_from_dict(s["data"])
        m.coef_ = np.asarray(self.coef_of(s), dtype=float)
        m.threshold = float(self.threshold_of(s) or m.threshold)
        return m

    def action_export(self) -> None:
        s = self.current()
        if s is None:
            return
        if s["data"].get("format") != "engine.sindy":
            self.app.notify("this equation set has no model to export", severity="warning")
            return
        self.export_worker(s)

    @work(thread=True, exclusive=True, group="eq-export", exit_on_error=False, name="export")
    def export_worker(self, s: dict) -> None:
        from engine.atomic import write_text
        from engine.sindy.export import to_json, to_latex, to_sympy, to_text

        m = self.model(s)
        out = self.wb.session.artifacts / "exports"
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in s["name"])
        stem += f"-t{m.threshold:.3g}"
        to_text(m, out / f"{stem}.txt")
        to_latex(m, out / f"{stem}.tex")
        to_json(m, out / f"{stem}.json")
        write_text(out / f"{stem}.sympy.txt", "\n".join(str(e) for e in to_sympy(m)) + "\n")
        self.app.call_from_thread(self.app.notify, f"wrote {out}/{stem}.{{txt,tex,json,sympy.txt}}")

    def action_copy(self) -> None:
        from workbench.clipboard import strip_term_counts, tmux_blocks_osc52

        s = self.current()
        if s is None:
            return
        text = strip_term_counts(render_equations(s["data"], self.coef_of(s)).plain)
        self.app.copy_to_clipboard(text)  # OSC 52
        blocked = tmux_blocks_osc52()
        if blocked is None:
            self.app.notify("equations copied to the clipboard (OSC 52)")
            return
        # the copy will not arrive: say why, and leave the text where it can be fetched
        out = self.wb.session.artifacts / "exports" / "copied-equations.txt"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
            where = f"; saved to {out}"
        except OSError:
            where = ""
        self.app.notify(blocked + where, severity="warning", timeout=12)


def _load_sweep(data: dict):
    """The sweep artifact named in the payload (an ``engine.sindy.sweep.StoredSweep``), or None."""
    path = data.get("sweep_path")
    if not path:
        return None
    from engine.sindy.stored import load_sweep

    try:
        return load_sweep(path)
    except (OSError, KeyError, ValueError):
        return None  # artifact gone: the stored model still shows


STORED = -1  # self.index value: the set's stored model, which is no row of its sweep


def _same_support(a, b) -> bool:
    import numpy as np

    try:
        return bool(np.array_equal(np.asarray(a, float) != 0, np.nan_to_num(np.asarray(b, float)) != 0))
    except (TypeError, ValueError):
        return False


def _nearest(thresholds, value: float) -> int:
    import numpy as np

    th = np.asarray(thresholds, dtype=float)
    return int(np.argmin(np.abs(np.log(np.maximum(th, 1e-300)) - math.log(max(value, 1e-300)))))
