"""A Static that draws a plotext figure at its current size.

plotext keeps one global figure, so drawing is serialised with a lock and done
on the UI thread; the figure function only gets ``plt`` and the size.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from rich.text import Text
from textual.widgets import Static

__all__ = ["PlotextView", "render_plotext"]

_LOCK = threading.Lock()
FigureFn = Callable[[object], None]


def render_plotext(draw: FigureFn, width: int, height: int) -> Text:
    """Run ``draw(plt)`` on a fresh plotext figure of ``width`` x ``height`` and return it as Text."""
    import plotext as plt

    with _LOCK:
        plt.clear_figure()
        plt.plotsize(max(10, width), max(4, height))
        plt.theme("pro")  # no background fill: blends with any Textual theme
        draw(plt)
        out = plt.build()
        plt.clear_figure()
    if os.environ.get("NO_COLOR"):  # https://no-color.org: keep the shapes, drop colours
        return Text(Text.from_ansi(out).plain, no_wrap=True)
    return Text.from_ansi(out, no_wrap=True)


class PlotextView(Static):
    """Shows the figure drawn by ``draw(plt)``; redrawn when resized or given a new figure."""

    DEFAULT_CSS = """
    PlotextView { height: 1fr; min-height: 6; }
    """

    def __init__(self, draw: FigureFn | None = None, **kwargs):
        super().__init__("", **kwargs)
        self._draw = draw

    def set_figure(self, draw: FigureFn | None) -> None:
        """Replace the figure function (None clears the view)."""
        self._draw = draw
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        w, h = self.content_size
        if self._draw is None or w < 10 or h < 4:
            self.update("")
            return
        try:
            self.update(render_plotext(self._draw, w, h))
        except Exception as exc:  # a bad figure must not take the app down
            self.update(Text(f"plot failed: {exc}", style="red"))
