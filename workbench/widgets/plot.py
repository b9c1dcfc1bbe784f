"""plotext figures as Rich text, sized to the widget that shows them.

plotext keeps global state, so every figure is built under one lock (plots are
built from worker threads as well as the UI thread).
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Sequence

from rich.text import Text

_LOCK = threading.Lock()


def plot_text(draw: Callable[[object], None], width: int, height: int) -> Text:
    """Run ``draw(plt)`` on a fresh plotext figure of the given size and return Rich text."""
    import plotext as plt

    width, height = max(20, width), max(6, height)
    with _LOCK:
        plt.clf()
        plt.plotsize(width, height)
        plt.theme("clear" if os.environ.get("NO_COLOR") is None else "clear")
        draw(plt)
        out = plt.build()
    text = Text.from_ansi(out)
    if os.environ.get("NO_COLOR"):
        text = Text(text.plain)
    return text


def line_plot(series: dict[str, tuple[Sequence[float], Sequence[float]]], width: int, height: int,
              title: str = "", ylog: bool = False, xlabel: str = "") -> Text:
    """One line per named series of (x, y)."""
    def draw(plt) -> None:
        for name, (x, y) in series.items():
            if len(x):
                plt.plot(list(x), list(y), label=name, marker="braille")
        if ylog:
            plt.yscale("log")
        if title:
            plt.title(title)
        if xlabel:
            plt.xlabel(xlabel)

    if not any(len(x) for x, _ in series.values()):
        return Text("no data yet", style="dim")
    return plot_text(draw, width, height)


def bar_plot(labels: Sequence[str], values: Sequence[float], width: int, height: int,
             title: str = "") -> Text:
    """Horizontal bars (labels on the left), as in the seed's MAE chart."""
    def draw(plt) -> None:
        plt.bar(list(labels), list(values), orientation="horizontal", width=0.3)
        if title:
            plt.title(title)

    if not labels:
        return Text("no data yet", style="dim")
    return plot_text(draw, width, height)
