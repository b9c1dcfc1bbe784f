"""Retina EDA browser: sparsity table, lag histogram, the frames before a rise with the trace.

The browser owns its state: the EDA result and the shown ``cell`` and ``rise``
(reactives); changing either reads that rise's frames in a thread worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from workbench.widgets.halfblock import halfblock
from workbench.widgets.plotext_view import PlotextView

from .files import NodeRef
from .notes import PaneNote

__all__ = ["EdaBrowser"]


class EdaBrowser(VerticalScroll, can_focus=True):
    """Retina EDA of one file; n/p step through a cell's rises, c goes to the next cell."""

    DEFAULT_CSS = """
    EdaBrowser { height: 1fr; }
    EdaBrowser #eda-table { height: auto; }
    EdaBrowser #eda-lags { height: 12; }
    EdaBrowser #eda-frames { height: auto; }
    EdaBrowser #eda-trace { height: 8; }
    """

    BINDINGS = [
        Binding("n", "rise(1)", "next rise", show=True),
        Binding("p", "rise(-1)", "prev rise", show=True),
        Binding("c", "cell", "next cell", show=True),
    ]

    cell: reactive[int] = reactive(0, init=False)
    rise: reactive[int] = reactive(0, init=False)

    class Loaded(Message):
        def __init__(self, ref: NodeRef, eda: Any, error: str | None):
            super().__init__()
            self.ref, self.eda, self.error = ref, eda, error

    class RiseLoaded(Message):
        def __init__(self, example: Any, error: str | None):
            super().__init__()
            self.example, self.error = example, error

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.ref: NodeRef | None = None
        self.eda: Any = None

    def compose(self) -> ComposeResult:
        yield Static("", id="eda-table")
        yield PlotextView(id="eda-lags")
        yield Static("", id="eda-frames")
        yield PlotextView(id="eda-trace")

    # ---- state ------------------------------------------------------------------------

    def open(self, ref: NodeRef) -> None:
        """Run the EDA of ``ref``'s file (in a thread) and show it."""
        self.ref, self.eda = ref, None
        self.post_message(PaneNote("running retina EDA…"))
        self._run(ref)

    def watch_cell(self, cell: int) -> None:
        self.set_reactive(EdaBrowser.rise, 0)  # a new cell starts at its first rise
        self._request_rise()

    def watch_rise(self, rise: int) -> None:
        self._request_rise()

    def action_rise(self, delta: int) -> None:
        if self.eda is not None:
            self.rise += delta

    def action_cell(self) -> None:
        if self.eda is not None:
            self.cell = (self.cell + 1) % self.eda.n_cells

    # ---- the EDA ------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="eda")
    def _run(self, ref: NodeRef) -> None:
        from engine.data.eda import retina_eda

        try:
            self.post_message(self.Loaded(ref, retina_eda(ref.file), None))
        except Exception as exc:  # never let a worker kill the app
            self.post_message(self.Loaded(ref, None, str(exc)))

    def on_eda_browser_loaded(self, msg: Loaded) -> None:
        msg.stop()
        if msg.ref != self.ref or not self.display:
            return  # another file was opened since, or the pane shows something else now
        if msg.error:
            self.post_message(PaneNote(msg.error, error=True))
            return
        eda = self.eda = msg.eda
        self.set_reactive(EdaBrowser.cell, 0)
        self.set_reactive(EdaBrowser.rise, 0)
        head = Text.assemble(
            (f"{eda.path.name} /{eda.split}  ", "bold"),
            f"{eda.n_frames} frames · {eda.n_cells} cells · {100 * eda.zero_fraction:.0f}% zeros · "
            f"{len(eda.scene_changes)} scene changes (from the stimulus) · lag mode {eda.lag_mode} "
            f"· {100 * eda.lag_fraction(8, 12):.0f}% in 8-12",
        )
        self.query_one("#eda-table", Static).update(_cells_table(eda))
        lags = np.arange(len(eda.lag_counts)).tolist()
        counts = eda.lag_counts.tolist()

        def draw(plt):
            plt.bar(lags, counts, width=0.8)
            plt.title("first rise after a scene change: lag (frames)")

        self.query_one("#eda-lags", PlotextView).set_figure(draw)
        self.post_message(PaneNote("n/p: next/prev rise · c: next cell", info=head))
        self.focus()
        self._request_rise()

    # ---- one rise ------------------------------------------------------------------------

    def _request_rise(self) -> None:
        eda = self.eda
        if eda is None:
            return
        rises = eda.rises[self.cell]
        if len(rises) == 0:
            self.query_one("#eda-frames", Static).update(f"cell {self.cell}: no rises")
            self.query_one("#eda-trace", PlotextView).set_figure(None)
            return
        self.set_reactive(EdaBrowser.rise, self.rise % len(rises))
        self._load_rise(eda.path, eda.split, eda.response_key, self.cell, int(rises[self.rise]))

    @work(thread=True, exclusive=True, exit_on_error=False, group="rise")
    def _load_rise(self, path: Path, split: str, key: str, cell: int, rise: int) -> None:
        from engine.data.eda import rise_example

        try:
            self.post_message(self.RiseLoaded(rise_example(path, split, key, cell, rise, n=10), None))
        except Exception as exc:
            self.post_message(self.RiseLoaded(None, str(exc)))

    def on_eda_browser_rise_loaded(self, msg: RiseLoaded) -> None:
        msg.stop()
        if not self.display:
            return
        if msg.error:
            self.post_message(PaneNote(msg.error, error=True))
            return
        ex = msg.example
        panel = self.query_one("#eda-frames", Static)
        panel.update(_rise_frames(ex, max(20, panel.content_size.width or 60)))
        x, y = ex.indices.tolist(), ex.trace.tolist()

        def draw(plt):
            plt.plot(x, y, marker="dot")
            plt.title("rate (Hz)")

        self.query_one("#eda-trace", PlotextView).set_figure(draw)


def _cells_table(eda: Any) -> Table:
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for col in ("cell", "zeros", "mean Hz", "max Hz", "rises", "median lag"):
        table.add_column(col, justify="right")
    for row in eda.table():
        table.add_row(
            str(row["cell"]),
            f"{row['zero_pct']:.0f}%",
            f"{row['mean_rate']:.1f}",
            f"{row['max_rate']:.0f}",
            str(row["rises"]),
            "-" if np.isnan(row["median_lag"]) else f"{row['median_lag']:.0f}",
        )
    return table


def _rise_frames(ex: Any, width: int) -> Table:
    """As many thumbnails as fit, the rise frame last (the seed's plot_spike_images)."""
    thumb = 10
    n = max(1, min(len(ex.indices), width // (thumb + 1)))
    idx = list(range(len(ex.indices) - n, len(ex.indices)))
    vmin, vmax = float(ex.frames.min()), float(ex.frames.max())
    pics = [halfblock(ex.frames[i], thumb, thumb // 2, vmin=vmin, vmax=vmax) for i in idx]
    grid = Table.grid(padding=(0, 1))
    for _ in idx:
        grid.add_column(width=thumb)
    grid.add_row(*pics)
    grid.add_row(*[Text(str(ex.indices[i]), style="bold" if i == idx[-1] else "") for i in idx])
    title = Text(f"cell {ex.cell} · rise at frame {ex.rise} · the {n} frames up to it", style="bold")
    outer = Table.grid()
    outer.add_row(title)
    outer.add_row(grid)
    return outer

