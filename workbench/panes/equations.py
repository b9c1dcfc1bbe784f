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

The decisions live in :class:`~.equations_state.EquationsState` (no Textual); this module
maps keys to it, draws what it returns, and runs the engine calls (loading the sets, the
refit of an edit, its score, the exports) in workers whose results come back as messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from workbench.messages import StoreUpdate
from workbench.panes.base import StorePane
from workbench.panes.equation_parts import render_equations
from workbench.panes.equation_text import EquationText
from workbench.panes.equations_pareto import ParetoPlot
from workbench.panes import equations_view as view
from workbench.panes.equations_state import EditKey, EquationsState, Notice, Refit, load_sweep_of


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

    @dataclass
    class SetsLoaded(Message):
        """The store's sets, their sweeps not loaded before, a line per skipped row."""

        sets: list[dict]
        sweeps: dict[int, Any]
        bad: list[str]

    @dataclass
    class Refitted(Message):
        """An edit's kept terms refitted (or why not)."""

        refit: Refit
        coef: Any  # None when the refit failed
        error: str = ""

    @dataclass
    class Scored(Message):
        """An edit's held-out errors, before and after."""

        key: EditKey
        before: dict
        after: dict

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.state = EquationsState()
        self._max = -1
        self._pareto_timer = None
        self._input_mode = "threshold"
        self._title_lines = -1

    # read by benchmarks/bench_sindy.py and the tests: the state's
    @property
    def sets(self) -> list[dict]:
        return self.state.sets

    @property
    def sweeps(self) -> dict[int, Any]:
        return self.state.sweeps

    @property
    def index(self) -> dict[int, int]:
        return self.state.index

    def current(self) -> dict | None:
        return self.state.current()

    def coef_of(self, s: dict):
        return self.state.coef_of(s)

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
                yield ParetoPlot(id="eq-pareto")

    def on_mount(self) -> None:
        # name + facts (threshold, terms, errors): the app's `.title` is one line high
        self.query_one("#eq-title").styles.height = "auto"
        self.state.restore(self.wb.session.ui())

    def _say(self, notice: Notice | None) -> None:
        if notice is not None:
            self.app.notify(notice.text, severity=notice.severity)

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
        sweeps = {s["id"]: load_sweep_of(s["data"]) for s in sets if s["id"] not in self.state.sweeps}
        self.post_message(self.SetsLoaded(sets, sweeps, bad))

    def on_equations_pane_sets_loaded(self, msg: SetsLoaded) -> None:
        ids = self.state.set_sets(msg.sets, msg.sweeps)
        lst = self.query_one("#eq-list", OptionList)
        lst.clear_options()
        for s in reversed(msg.sets):
            lst.add_option(Option(f"{s['name']}", id=str(s["id"])))
        if self.state.shown in ids:
            lst.highlighted = ids.index(self.state.shown)
        self.redraw()
        for line in msg.bad:
            self.app.notify(line, severity="warning")
        if msg.sweeps:
            self.prefetch([s for s in msg.sets if self.state.sweeps.get(s["id"]) is not None])

    @work(thread=True, exclusive=True, group="eq-prefetch", exit_on_error=False)
    def prefetch(self, sets: list[dict]) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        view.prefetch(self.state, sets, lambda: worker.is_cancelled)

    @on(OptionList.OptionHighlighted, "#eq-list")
    def on_pick(self, event: OptionList.OptionHighlighted) -> None:
        if self.state.pick_set(int(event.option.id)):
            self.wb.save_ui(**{"equations.set": self.state.shown})
            self.redraw()

    # -- the threshold ---------------------------------------------------------------
    def _moved(self) -> None:
        self.wb.save_ui(**self.state.ui_index())
        self.redraw()

    def action_sparser(self) -> None:
        self._step(+1)

    def action_denser(self) -> None:
        self._step(-1)

    def _step(self, delta: int) -> None:
        notice = self.state.step(delta)
        self._say(notice)
        if notice is None:
            self._moved()

    def action_knee(self) -> None:
        if self.state.knee():
            self._moved()

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
            self._edited(self.state.add_term(event.value.strip()))
            return
        moved, notice = self.state.type_threshold(event.value)
        if moved:
            self._moved()
        self._say(notice)

    def on_key(self, event) -> None:
        box = self.query_one("#eq-threshold", Input)
        if event.key == "escape" and box.has_class("visible"):
            self._close_input()
            event.stop()

    # -- hand edits ------------------------------------------------------------------
    def action_pick_equation(self, delta: int) -> None:
        self._cursor_moved(self.state.pick_equation(delta))

    def action_pick_term(self, delta: int) -> None:
        self._cursor_moved(self.state.pick_term(delta))

    def _cursor_moved(self, notice: Notice | None) -> None:
        self._say(notice)
        if notice is None:
            self.redraw()

    def action_toggle_term(self) -> None:
        self._edited(self.state.toggle())

    def action_add_term(self) -> None:
        prompt = self.state.start_add_term()
        if isinstance(prompt, Notice):
            self._say(prompt)
        else:
            self._ask("term", prompt)

    def _edited(self, outcome: Refit | Notice | None) -> None:
        """After an edit key: say why nothing changed, or keep the edits and redraw (the
        refit of the kept terms, if new, runs in a worker meanwhile)."""
        if isinstance(outcome, Notice):
            self._say(outcome)
            return
        if outcome is not None:
            self.refit_worker(outcome)
        self.wb.save_ui(**self.state.ui_edits())
        self.redraw()

    def action_reset_edits(self) -> None:
        if self.state.reset_edits():
            self.wb.save_ui(**self.state.ui_edits())
            self.redraw()

    @work(thread=True, group="eq-refit", exit_on_error=False)
    def refit_worker(self, refit: Refit) -> None:
        """Least squares of the kept terms from the sweep's training Gram (a few ms; every
        asked refit runs, each result keyed by its edits)."""
        try:
            coef = self.state.sweeps[refit.set_id].edited(refit.row, refit.flips)
        except ValueError as exc:  # e.g. adding a term to an old sweep without its Gram
            self.post_message(self.Refitted(refit, None, str(exc)))
            return
        self.post_message(self.Refitted(refit, coef))

    def on_equations_pane_refitted(self, msg: Refitted) -> None:
        if msg.coef is None:
            self._say(self.state.refit_failed(msg.refit, msg.error))
            self.wb.save_ui(**self.state.ui_edits())
        else:
            self.state.refitted(msg.refit, msg.coef)
        s = self.state.current()
        if s is not None and s["id"] == msg.refit.set_id:
            self.redraw()

    @work(thread=True, exclusive=True, group="eq-score", exit_on_error=False)
    def score_edit(self, s: dict, row: int, flips: tuple) -> None:
        """Held-out derivative and rollout errors of the sweep row and of its edit."""
        from engine.sindy.export import model_from_dict

        sweep = self.state.sweeps[s["id"]]
        try:
            lib = model_from_dict(s["data"]).library_
            before = sweep.errors(sweep.coefs[row], lib)
            after = sweep.errors(sweep.edited(row, flips), lib)
        except Exception as exc:  # scoring is a nicety: say why, keep the edit
            before = after = {"deriv_err": None, "rollout_err": None}
            self.app.call_from_thread(self.app.notify, f"could not score the edit: {exc}", severity="warning")
        self.post_message(self.Scored((s["id"], row, flips), before, after))

    def on_equations_pane_scored(self, msg: Scored) -> None:
        s = self.state.current()
        if self.state.scored(msg.key, msg.before, msg.after) and s is not None:
            self._draw_title(s)
            self.query_one("#eq-pareto", ParetoPlot).show(view.plot(self.state, s))

    # -- drawing ---------------------------------------------------------------------
    def redraw(self) -> None:
        s = self.state.current()
        if s is None:
            return
        refit = self.state.refit_to_start(s)  # edits restored from the session: refitted now
        if refit is not None:
            self.refit_worker(refit)
        self._draw_title(s)
        text = self.query_one("#eq-text", EquationText)
        body = view.body(self.state, s)
        text.show(body.parts, None, body.layouts)
        cursor = self.state.cursor
        if cursor is not None:  # keep the cursor's line in view
            lines = text.layout_for(text.content_region.width)[1]
            line = next((ln for (k, u), ln in lines.items() if k == cursor[0]), None)
            if line is not None:
                self.query_one("#eq-body").scroll_to(y=max(0, line - 1), animate=False)
        # the plot trails the equations: a held-down key redraws the text at once
        if self._pareto_timer is not None:
            self._pareto_timer.stop()
        spec = view.plot(self.state, s)
        self._pareto_timer = self.set_timer(0.06, lambda: self.query_one("#eq-pareto", ParetoPlot).show(spec))

    def _draw_title(self, s: dict) -> None:
        score = self.state.score_to_start(s)
        if score is not None:
            self.score_edit(s, score[1], score[2])
        t = view.title(self.state, s)
        title = self.query_one("#eq-title", Static)
        text = Text.assemble((t.name, "bold"), "\n", (" · ".join(t.facts), "dim"))
        n_lines = len(text.wrap(self.app.console, max(title.content_region.width, 1)))
        title.update(text, layout=n_lines != self._title_lines)  # a screen layout only if its height changes
        self._title_lines = n_lines

    def action_compare(self) -> None:
        self.state.comparing = not self.state.comparing
        self._fit_pareto()
        self.redraw()

    def on_resize(self) -> None:
        # two handlers of this name stood here and the second hid the first: the plot is
        # refitted to the new height and the equations are laid out again for the new width
        self._fit_pareto()
        self.call_after_refresh(self.redraw)

    def _fit_pareto(self) -> None:
        self.query_one("#eq-pareto", ParetoPlot).fit(self.size.height, self.state.comparing)

    # -- export ----------------------------------------------------------------------
    def action_export(self) -> None:
        s = self.state.current()
        if s is None:
            return
        if s["data"].get("format") != "engine.sindy":
            self.app.notify("this equation set has no model to export", severity="warning")
            return
        self.export_worker(s)

    @work(thread=True, exclusive=True, group="eq-export", exit_on_error=False, name="export")
    def export_worker(self, s: dict) -> None:
        from workbench.panes.equations_export import model_of, write_exports

        where = write_exports(model_of(self.state, s), self.wb.session.artifacts / "exports", s["name"])
        self.app.call_from_thread(self.app.notify, f"wrote {where}.{{txt,tex,json,sympy.txt}}")

    def action_copy(self) -> None:
        from workbench.clipboard import strip_term_counts, tmux_blocks_osc52
        from workbench.panes.equations_export import save_copy

        s = self.state.current()
        if s is None:
            return
        text = strip_term_counts(render_equations(s["data"], self.state.coef_of(s)).plain)
        self.app.copy_to_clipboard(text)  # OSC 52
        blocked = tmux_blocks_osc52()
        if blocked is None:
            self.app.notify("equations copied to the clipboard (OSC 52)")
            return
        # the copy will not arrive: say why, and leave the text where it can be fetched
        out = save_copy(text, self.wb.session.artifacts / "exports" / "copied-equations.txt")
        self.app.notify(blocked + (f"; saved to {out}" if out else ""), severity="warning", timeout=12)
