"""The equations widget: lines drawn from a layout cached per width (see :mod:`.equation_parts`)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from workbench.panes.equation_parts import layout_parts, parts_to_text

_STYLES: dict[str | None, Any] = {}


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
