"""Equations pane: the sparse equations distilled by SINDy, one per state, terms
sorted by |coefficient| with a colour scale."""

from __future__ import annotations

import math

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from workbench.messages import StoreUpdate
from workbench.panes.base import StorePane

SCALE = ("grey50", "cyan", "green", "yellow", "bold red")


def render_equations(payload: dict, precision: int = 3) -> Text:
    """Colour each term by the decade of |coefficient| relative to the largest."""
    coef = payload.get("coef") or []
    features = payload.get("feature_names") or []
    states = payload.get("state_names") or [f"x{i}" for i in range(len(coef))]
    out = Text()
    biggest = max((abs(c) for row in coef for c in row), default=0.0) or 1.0
    for name, row in zip(states, coef):
        terms = sorted(((c, f) for c, f in zip(row, features) if c != 0), key=lambda t: -abs(t[0]))
        out.append(f"({name})' = ", style="bold")
        if not terms:
            out.append("0", style="dim")
        for i, (c, f) in enumerate(terms):
            sign = "-" if c < 0 else ("+" if i else "")
            if sign:
                out.append(f" {sign} " if i else "-")
            decade = math.log10(abs(c) / biggest) if c else -9
            style = SCALE[max(0, min(len(SCALE) - 1, len(SCALE) - 1 + int(math.floor(decade))))]
            out.append(f"{abs(c):.{precision}g}", style=style)
            if f != "1":
                out.append(f" {f}")
        out.append(f"   [{len(terms)} terms]\n", style="dim")
    return out


class EquationsPane(StorePane):
    BINDINGS = [Binding("y", "copy", "Copy equations")]
    DEFAULT_CSS = """
    EquationsPane #eq-list { height: 1fr; }
    EquationsPane #eq-body { height: 1fr; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.sets: list[dict] = []
        self.shown: int | None = None
        self._max = -1

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-split"):
            with Vertical(classes="side"):
                yield Static("Equation sets", classes="title")
                yield OptionList(id="eq-list")
            with Vertical(classes="main"):
                yield Static("no equations yet — run an analysis's sindy step", id="eq-title",
                             classes="title")
                with VerticalScroll(id="eq-body"):
                    yield Static("", id="eq-text")

    def on_mount(self) -> None:
        self.shown = self.wb.session.ui().get("equations.set")

    def store_update(self, msg: StoreUpdate) -> None:
        if msg.equations_max_id != self._max:
            self._max = msg.equations_max_id
            self.load_sets()

    @work(thread=True, exclusive=True, group="eq-load", exit_on_error=False)
    def load_sets(self) -> None:
        sets = self.wb.store.equations()
        self.app.call_from_thread(self._set_sets, sets)

    def _set_sets(self, sets: list[dict]) -> None:
        self.sets = sets
        lst = self.query_one("#eq-list", OptionList)
        lst.clear_options()
        for s in reversed(sets):
            lst.add_option(Option(f"{s['name']}", id=str(s["id"])))
        ids = [s["id"] for s in reversed(sets)]
        if ids and self.shown not in ids:
            self.shown = ids[0]
        if self.shown in ids:
            lst.highlighted = ids.index(self.shown)
        self._draw()

    def current(self) -> dict | None:
        return next((s for s in self.sets if s["id"] == self.shown), None)

    def _draw(self) -> None:
        s = self.current()
        if s is None:
            return
        data = s["data"]
        facts = [f"{k} {data[k]:.4g}" for k in ("threshold", "val_error", "rollout_error")
                 if isinstance(data.get(k), (int, float))]
        self.query_one("#eq-title", Static).update(Text.assemble(
            (s["name"], "bold"), ("  " + " · ".join(facts), "dim")))
        self.query_one("#eq-text", Static).update(render_equations(data))

    @on(OptionList.OptionHighlighted, "#eq-list")
    def on_pick(self, event: OptionList.OptionHighlighted) -> None:
        new = int(event.option.id)
        if new != self.shown:
            self.shown = new
            self.wb.save_ui(**{"equations.set": new})
            self._draw()

    def action_copy(self) -> None:
        s = self.current()
        if s is not None:
            self.app.copy_to_clipboard(render_equations(s["data"]).plain)  # OSC 52 over SSH
            self.app.notify("equations copied (OSC 52)")
