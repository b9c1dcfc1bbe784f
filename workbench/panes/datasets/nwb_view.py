"""NWB view: a summary of an NWB file and, opened from it, a spike raster, a table head
or a time-series plot, all read through :mod:`engine.data.nwb` (pynwb) in thread workers.

The browser owns its state: the file and ``view``, a reactive :class:`NwbState`
(what is open and where: units page, time window, channel, table rows and
columns).  Keys make a new state; ``watch_view`` reads what the new state needs
(a table scrolled needs nothing read).  Every read is bounded by the engine (a
raster caps its spikes, a table its rows, a series its points) and every problem
is one line in the pane's status, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import OptionList, Static

from engine.text import safe_line
from workbench.widgets.figure import render_figure

from .nwb_render import NwbItem, summary_head, summary_items, table_view
from .notes import PaneNote

__all__ = ["NwbBrowser", "NwbState", "UNITS_PER_PAGE", "TABLE_ROWS"]

UNITS_PER_PAGE = 20  # units in one raster page: rows a terminal plot can tell apart
TABLE_ROWS = 100  # most rows of a table head read
HINTS = {
    "raster": "←/→ time · ↑/↓ units · +/- zoom · esc back",
    "table": "↑/↓ rows · ←/→ columns · esc back",
    "series": "←/→ channel · esc back",
}


@dataclass(frozen=True)
class NwbState:
    """What the NWB view shows. ``kind`` "summary", "raster", "table" or "series"."""

    kind: str = "summary"
    name: str = ""
    first_unit: int = 0
    t0: float | None = None  # raster window start; None: the first spike shown
    window: float = 10.0  # raster window length (s)
    channel: int = 0
    row: int = 0  # table: first row shown
    col: int = 0  # table: first column shown after the id

    def reads(self) -> tuple:
        """The fields that need the file read again when they change (not the table's scroll)."""
        return (self.kind, self.name, self.first_unit, self.t0, self.window, self.channel)


def _short(error: str, path: Path | None) -> str:
    """A DataError line with the file's full path cut to its name (the pane shows the file)."""
    if path is not None and error.startswith(str(path)):
        return path.name + error[len(str(path)):]
    return error


class NwbBrowser(Vertical, can_focus=True):
    """Summary and item views of one NWB file; enter opens an item, esc goes back."""

    DEFAULT_CSS = """
    NwbBrowser { height: 1fr; }
    NwbBrowser:focus { background: $boost; }
    NwbBrowser #nwb-head { height: auto; max-height: 6; }
    NwbBrowser #nwb-items { height: 1fr; border: none; padding: 0; text-wrap: nowrap; text-overflow: ellipsis; }
    NwbBrowser #nwb-view { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "back", "back", show=True),
        Binding("backspace", "back", "back", show=False),
        Binding("left", "move(-1)", "◀", show=False),
        Binding("right", "move(1)", "▶", show=False),
        Binding("up", "page(-1)", "▲", show=False),
        Binding("down", "page(1)", "▼", show=False),
        Binding("pageup", "page(-10)", "-10", show=False),
        Binding("pagedown", "page(10)", "+10", show=False),
        Binding("plus,equals_sign", "zoom(0.5)", "zoom in", show=False),
        Binding("minus", "zoom(2)", "zoom out", show=False),
        Binding("home", "start", "start", show=False),
    ]

    view: reactive[NwbState] = reactive(NwbState, init=False)

    class Loaded(Message):
        def __init__(self, request: int, what: str, data: Any, error: str | None):
            super().__init__()
            self.request, self.what, self.data, self.error = request, what, data, error

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.path: Path | None = None
        self.summary: Any = None
        self.items: list[NwbItem] = []
        self.figure: Any = None  # the raster or series figure shown
        self.frame: Any = None  # the table head shown (a DataFrame)
        self.n_units = 0
        self._request = 0  # results of older requests are dropped

    def compose(self) -> ComposeResult:
        yield Static("", id="nwb-head")
        yield OptionList(id="nwb-items")
        yield Static("", id="nwb-view")

    # ---- opening a file -------------------------------------------------------------------

    def open(self, path: Path) -> None:
        """Read ``path``'s summary (in a thread) and show it."""
        self.path, self.summary, self.items = Path(path), None, []
        self.query_one("#nwb-head", Static).update(Text("reading the NWB file…", style="dim"))
        self.query_one("#nwb-items", OptionList).clear_options()
        self.set_reactive(NwbBrowser.view, NwbState())
        self._layout()
        self.post_message(PaneNote(f"reading {safe_line(path.name)} with pynwb…"))
        self._read("summary", NwbState())

    def _layout(self) -> None:
        summary = self.view.kind == "summary"
        self.query_one("#nwb-head").display = summary
        self.query_one("#nwb-items").display = summary
        self.query_one("#nwb-view").display = not summary

    # ---- state changes ------------------------------------------------------------------

    def validate_view(self, v: NwbState) -> NwbState:
        item = self._item(v)
        last_page = max(0, (self.n_units - 1) // UNITS_PER_PAGE * UNITS_PER_PAGE)
        rows = len(self.frame) if self.frame is not None and v.kind == "table" else 0
        cols = len(self.frame.columns) if self.frame is not None and v.kind == "table" else 0
        return replace(v, first_unit=max(0, min(v.first_unit, last_page)),
                       window=min(max(v.window, 0.01), 3600.0),
                       channel=max(0, min(v.channel, (item.channels if item else 1) - 1)),
                       row=max(0, min(v.row, rows - 1)), col=max(0, min(v.col, cols - 1)))

    def watch_view(self, old: NwbState, new: NwbState) -> None:
        self._layout()
        if new.kind == "summary":
            self.query_one("#nwb-items", OptionList).focus()
            self.post_message(PaneNote("enter opens · h HDF5 tree"))
        elif new.reads() != old.reads():
            self.post_message(PaneNote(f"reading {safe_line(new.name)}…"))
            self._read(new.kind, new)
        else:
            self.draw()

    def _item(self, v: NwbState) -> NwbItem | None:
        return next((i for i in self.items if i.kind == v.kind and i.name == v.name), None)

    @on(OptionList.OptionSelected, "#nwb-items")
    def _open_item(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        item = self.items[event.option_index]
        self.frame = self.figure = None
        self.query_one("#nwb-view", Static).update(Text(f"reading {safe_line(item.name)}…", style="dim"))
        self.view = NwbState(kind=item.kind, name=item.name)
        self.focus()

    def action_back(self) -> None:
        if self.view.kind != "summary":
            self.view = NwbState()

    def action_move(self, delta: int) -> None:
        v = self.view
        if v.kind == "raster" and v.t0 is not None:
            self.view = replace(v, t0=v.t0 + delta * v.window)
        elif v.kind == "series":
            self.view = replace(v, channel=v.channel + delta)
        elif v.kind == "table":
            self.view = replace(v, col=v.col + delta)

    def action_page(self, delta: int) -> None:
        v = self.view
        if v.kind == "raster":
            self.view = replace(v, first_unit=v.first_unit + (1 if delta > 0 else -1) * UNITS_PER_PAGE)
        elif v.kind == "table":
            self.view = replace(v, row=v.row + delta)

    def action_zoom(self, factor: float) -> None:
        if self.view.kind == "raster":
            self.view = replace(self.view, window=self.view.window * factor)

    def action_start(self) -> None:
        if self.view.kind == "raster":
            self.view = replace(self.view, t0=None)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # in the summary the list has the arrows; esc and the rest act on an open item only
        return self.view.kind != "summary" or action not in ("move", "page", "zoom", "start", "back")

    # ---- reading ------------------------------------------------------------------------

    def _read(self, what: str, v: NwbState) -> None:
        self._request += 1
        w, h = self.query_one("#nwb-view", Static).content_size
        self._worker(self._request, what, self.path, v, max(200, 2 * (w or 60)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="nwb")
    def _worker(self, request: int, what: str, path: Path, v: NwbState, points: int) -> None:
        from engine.data import nwb

        try:
            if what == "summary":
                data = nwb.summarize(path)
            elif what == "raster":
                t1 = v.t0 + v.window if v.t0 is not None else None
                data = nwb.raster_page(path, v.first_unit, UNITS_PER_PAGE, v.t0, t1)
                if v.t0 is None and v.window != 10.0:  # the engine's first window is 10 s long
                    data = nwb.raster_page(path, v.first_unit, UNITS_PER_PAGE, data[1], data[1] + v.window)
            elif what == "table":
                data = nwb.table_page(path, v.name, rows=TABLE_ROWS)
            else:
                data = nwb.series_figure(path, v.name, channel=v.channel, max_points=points)
            self.post_message(self.Loaded(request, what, data, None))
        except Exception as exc:  # DataError lines, and whatever else: one line, never a traceback
            text = str(exc).strip().splitlines()
            line = text[0] if text else type(exc).__name__
            if type(exc).__name__ != "DataError":
                line = f"{type(exc).__name__}: {line}"
            self.post_message(self.Loaded(request, what, None, _short(line, path)))

    def on_nwb_browser_loaded(self, msg: Loaded) -> None:
        msg.stop()
        if msg.request != self._request or not self.display:
            return  # a newer request replaced this one, or the pane shows something else now
        if msg.error:
            if msg.what == "summary":
                self.query_one("#nwb-head", Static).update(Text("⚠ not shown: see the line above", style="red"))
            self.post_message(PaneNote(msg.error, error=True))
            return
        if msg.what == "summary":
            self._show_summary(msg.data)
            return
        problem = None
        if msg.what == "raster":
            self.figure, t0, _, self.n_units = msg.data
            if self.view.t0 is None:
                self.set_reactive(NwbBrowser.view, replace(self.view, t0=t0))
        elif msg.what == "table":
            self.frame, problem = msg.data
            if problem:
                self.post_message(PaneNote(f"{_short(problem, self.path)} (the rows are shown as stored)",
                                           error=True))
        else:
            self.figure = msg.data
        if not problem:
            self.post_message(PaneNote(HINTS[self.view.kind]))
        self.draw()

    def _show_summary(self, summary: Any) -> None:
        self.summary, self.items = summary, summary_items(summary)
        self.n_units = summary.units.n_rows if summary.units is not None else 0
        self.query_one("#nwb-head", Static).update(summary_head(summary))
        options = self.query_one("#nwb-items", OptionList)
        options.clear_options()
        options.add_options([Text(i.label, no_wrap=True, overflow="ellipsis") for i in self.items])
        if self.items:
            options.highlighted = 0
        options.focus()
        if summary.units is None:
            self.post_message(PaneNote("no units table: this NWB file holds no sorted spikes (no raster)",
                                       error=True))
        else:
            self.post_message(PaneNote("enter opens · h HDF5 tree"))

    # ---- drawing ------------------------------------------------------------------------

    def draw(self) -> None:
        out = self.query_one("#nwb-view", Static)
        w, h = out.content_size
        w, h = (w or 60), (h or 14)
        v = self.view
        if v.kind == "table" and self.frame is not None:
            shown = min(len(self.frame) - v.row, max(1, h - 2))
            head = Text(f"{safe_line(v.name)} · rows {v.row}-{v.row + shown - 1} of {len(self.frame)}"
                        + (f" · from column {v.col + 1}" if v.col else ""), style="bold", no_wrap=True,
                        overflow="ellipsis")
            out.update(Group(head, table_view(self.frame, v.row, v.col, max(1, h - 2))))
        elif v.kind in ("raster", "series") and self.figure is not None:
            out.update(render_figure(self.figure, w, h))  # the keys are on the status line

    def on_resize(self) -> None:
        if self.view.kind != "summary":
            self.call_after_refresh(self.draw)
