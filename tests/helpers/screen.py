"""The screen as text, cell for cell: what the snapshot tests compare.

Read from the compositor's full update (the strips a terminal would be sent), not from
the SVG export: the SVG places each run of text at an x coordinate, and a renderer that
joined the runs dropped the gaps between them, so a column moved 3 cells right gave the
same text.  Here every row is exactly the screen's width in cells, with spaces wherever
nothing is drawn, so a move of one cell changes the text.
"""

from __future__ import annotations

from rich.cells import cell_len


def screen_lines(app) -> list[str]:
    """The screen in front (with the screens that show through behind it), one string a row."""
    width, height = app.size
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    lines = ["".join(seg.text for strip in row for seg in strip if not seg.control) for row in update.strips]
    assert len(lines) == height, (len(lines), height)
    for y, line in enumerate(lines):  # a wider or narrower row would shift what follows it
        assert cell_len(line) == width, (y, cell_len(line), width, line)
    return lines


def screen_text(app) -> str:
    """:func:`screen_lines` joined, a newline after each row.  Trailing blanks are dropped:
    they say nothing the checked width does not, and files with them get trimmed by editors."""
    return "".join(line.rstrip() + "\n" for line in screen_lines(app))
