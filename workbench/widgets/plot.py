"""Small plots as Rich text: line plots through plotext (one lock, in plotext_view),
bar charts drawn directly."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text

from workbench.widgets.plotext_view import render_plotext


def thin(x: Sequence[float], y: Sequence[float], buckets: int) -> tuple[list, list]:
    """At most ~2 points per bucket: each bucket's lowest and highest y, in x order.

    plotext's cost grows with the points, not the cells: a job streaming thousands of
    metric points made every redraw take most of a second (benchmarks/bench_tui.py
    tui_latency); min/max per bucket keeps spikes and the curve's envelope.
    """
    n = len(x)
    if n <= 2 * buckets:
        return list(x), list(y)
    step = -(-n // buckets)
    xs, ys = [], []
    for i in range(0, n, step):
        chunk = range(i, min(i + step, n))
        lo = min(chunk, key=lambda k: (y[k] if y[k] == y[k] else float("inf")))
        hi = max(chunk, key=lambda k: (y[k] if y[k] == y[k] else float("-inf")))
        for k in sorted({lo, hi}):
            xs.append(x[k])
            ys.append(y[k])
    return xs, ys


def line_plot(series: dict[str, tuple[Sequence[float], Sequence[float]]], width: int, height: int,
              title: str = "", ylog: bool = False, xlabel: str = "") -> Text:
    """One line per named series of (x, y)."""
    def draw(plt) -> None:
        for name, (x, y) in series.items():
            if len(x):
                x, y = thin(x, y, max(16, 2 * width))  # braille: 2 dots per cell across
                plt.plot(x, y, label=name, marker="braille")
        if ylog:
            plt.yscale("log")
        if title:
            plt.title(title)
        if xlabel:
            plt.xlabel(xlabel)

    if not any(len(x) for x, _ in series.values()):
        return Text("no data yet", style="dim")
    return render_plotext(draw, width, height)


def bar_plot(labels: Sequence[str], values: Sequence[float], width: int, height: int,
             title: str = "") -> Text:
    """Horizontal bars, one line per label, longest = largest value (the seed's MAE chart).

    Drawn directly rather than with plotext: a few bars need no axes, and eighth-block
    characters give 8 steps per cell, so close values (CfC vs CfC-pruned) stay distinguishable.
    """
    if not labels:
        return Text("no data yet", style="dim")
    out = Text()
    if title:
        out.append(title + "\n", style="bold")
    label_w = min(max(len(str(lb)) for lb in labels), max(8, width // 3))
    value_w = 10
    bar_w = max(4, width - label_w - value_w - 3)
    top = max((v for v in values if v == v), default=0.0) or 1.0
    for lb, v in zip(labels, values):
        out.append(f"{str(lb)[:label_w]:>{label_w}} ", style="bold")
        eighths = int(round(8 * bar_w * max(0.0, v) / top)) if v == v else 0
        bar = "█" * (eighths // 8) + ("▏▎▍▌▋▊▉"[eighths % 8 - 1] if eighths % 8 else "")
        out.append(f"{bar:<{bar_w}}", style="cyan")
        out.append(f" {v:>{value_w}.4g}\n")
    return out
