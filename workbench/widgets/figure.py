"""Draw an :class:`engine.views.Figure` as Rich renderables at a given size.

Line panels go through plotext (the target drawn first, grey, behind the
prediction, as in seed 000's figure); image panels through half blocks: images
that keep their aspect (MEIs, receptive fields) sit side by side, heatmaps
(neurons x time) fill the width and stack.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from workbench.widgets.halfblock import halfblock
from workbench.widgets.plotext_view import render_plotext

__all__ = ["render_figure"]

_COLOURS = ("cyan", "orange", "green", "magenta", "blue", "red")


def _lines(panel: Any, width: int, height: int) -> Text:
    def draw(plt) -> None:
        colour = iter(_COLOURS)
        for s in panel.series:
            x, y = list(map(float, s.x)), [float(v) for v in s.y]
            if s.role == "points":
                plt.scatter(x, y, label=s.label, marker="dot", color=next(colour))
            else:
                plt.plot(x, y, label=s.label, marker="braille",
                         color="gray" if s.role == "background" else next(colour))
        if panel.xlabel and height >= 12:  # an axis label costs a row: only when rows are plenty
            plt.xlabel(panel.xlabel)

    if not any(len(s.x) for s in panel.series):
        return Text("no data", style="dim")
    # the panel's label on a line of its own, cut with an ellipsis (plotext cut titles
    # mid-word in narrow plots: "ceiling 0")
    label = panel.label if panel.label and len(panel.series) == 1 else ""
    out = render_plotext(draw, width, height - 1 if label else height)
    out.rstrip()  # plotext ends with a newline: it would push the caption one line down
    if label:
        head = Text(label, style="bold", no_wrap=True, overflow="ellipsis")
        head.truncate(width, overflow="ellipsis")
        out = Text.assemble(head, "\n", out)
    return out


def _image(panel: Any, width: int, height: int) -> Text:
    # images keep their aspect; a (neurons x time) heatmap uses all of the space it is given
    body = halfblock(panel.image, width, height - 1, cmap=panel.cmap,
                     vmin=panel.vmin, vmax=panel.vmax, keep_aspect=panel.aspect)
    out = Text(panel.label[:width] + "\n", style="bold", no_wrap=True, overflow="crop")
    out.append_text(body)
    return out


def render_figure(fig: Any, width: int, height: int, hint: str = "") -> Group:
    """Everything of ``fig`` that fits in ``width`` x ``height`` cells; ``hint`` (the keys
    that work) shares the title's line, dim, so small terminals keep their rows for data."""
    head = Text(fig.title, style="bold", no_wrap=True, overflow="ellipsis")
    parts: list[Any] = [head]
    if hint and head.cell_len + 2 + len(hint) <= width:
        head.append("  " + hint, style="dim")
    elif hint:  # never "v: va": the keys get a line of their own when the title is long
        parts.append(Text(hint, style="dim", no_wrap=True, overflow="ellipsis"))
    for t in parts:
        t.truncate(width, overflow="ellipsis")
    body_h = height - len(parts) - (1 if fig.caption else 0)
    images = [p for p in fig.panels if p.image is not None]
    lines = [p for p in fig.panels if p.image is None]
    side = [p for p in images if p.aspect]
    stacked = lines + [p for p in images if not p.aspect]
    n_rows = len(stacked) + (1 if side else 0)
    left = body_h
    if n_rows and left >= 4:
        each = max(4, body_h // n_rows)  # panels that do not fit are left out, not squeezed
        if side:  # images keeping their aspect: side by side, one row
            grid = Table.grid(padding=(0, 1))
            w = max(6, (width - (len(side) - 1)) // len(side))
            for _ in side:
                grid.add_column(width=w)
            grid.add_row(*(_image(p, w, min(each, left)) for p in side))
            parts.append(grid)
            left -= min(each, left)
        for p in stacked:
            if left < 4:
                break
            h = min(each, left)
            parts.append(_lines(p, width, h) if p.image is None else _image(p, width, h))
            left -= h
    if fig.caption:
        parts.append(Text(fig.caption[:width], style="italic", no_wrap=True, overflow="crop"))
    return Group(*parts)
