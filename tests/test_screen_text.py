"""The snapshot renderer (tests/helpers/screen.py) is faithful to positions."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

from tests.helpers.screen import screen_lines, screen_text


class TwoColumns(App):
    """A word on the left, one on the right; the right one can be moved."""

    CSS = """
    Screen { layout: horizontal; }
    #left { width: 10; }
    #right { width: auto; }
    """

    def __init__(self, shift: int) -> None:
        super().__init__()
        self.shift = shift

    def compose(self) -> ComposeResult:
        yield Static("left", id="left")
        yield Static("right", id="right")

    def on_mount(self) -> None:
        self.query_one("#right").styles.margin = (0, 0, 0, self.shift)


async def _render(shift: int) -> list[str]:
    app = TwoColumns(shift)
    async with app.run_test(size=(30, 4)) as pilot:
        await pilot.pause()
        return screen_lines(app)


async def test_a_widget_moved_three_cells_changes_the_text():
    before, after = await _render(0), await _render(3)
    assert before[0] == "left".ljust(10) + "right".ljust(20)
    assert after[0] == "left".ljust(13) + "right".ljust(17)
    assert before != after
    assert all(len(line) == 30 for line in before + after)  # every cell, blanks included
    assert before[1:] == after[1:] == [" " * 30] * 3


async def test_wide_characters_take_two_cells():
    class Wide(App):
        def compose(self) -> ComposeResult:
            yield Static("日本 x")

    app = Wide()
    async with app.run_test(size=(12, 2)) as pilot:
        await pilot.pause()
        lines, text = screen_lines(app), screen_text(app)
    assert lines[0] == "日本 x" + " " * 6  # 5 characters in 6 cells, then 6 blank cells
    assert text == "日本 x\n\n"  # the text form: blanks at the ends of rows dropped


async def test_the_equations_column_moved_three_cells_is_seen(session_root, monkeypatch):
    """What the SVG-regex renderer missed: the Equations pane's main column 3 cells right."""
    import workbench.device_probe as probe
    from tests.helpers.snapshot_session import make_snapshot_session
    from tests.helpers.tui import settle
    from workbench.app import WorkbenchApp

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))
    session = make_snapshot_session(session_root)
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        before = screen_lines(app)
        app.query_one("#equations-pane .main").styles.margin = (0, 0, 0, 3)
        await settle(pilot, 0.2)
        after = screen_lines(app)
    session.close()
    row = next(i for i, line in enumerate(before) if "(x0)' = " in line)
    assert after[row].index("(x0)' = ") == before[row].index("(x0)' = ") + 3
