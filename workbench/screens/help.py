"""`?`: the keys of the app and of the pane in front, on one screen."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    # esc goes back everywhere; q quits everywhere (as it does behind this screen)
    BINDINGS = [Binding("escape,question_mark", "dismiss", "Back"), Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 95%; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1; }
    """

    def __init__(self, app) -> None:
        super().__init__()
        self._wb = app

    def _key(self, b) -> str:
        """The key as shown in the footer, after the user's [keys] remapping."""
        from textual.binding import Binding

        key = getattr(self._wb, "config", None) and self._wb.config.keys.get(b.id or "")
        if key:
            b = Binding(key.split(",")[0], b.action, b.description)
        # each key of a multi-key binding as the footer shows it ("+/=", never "plus,equals_sign")
        return "/".join(self._wb.get_key_display(Binding(k.strip(), b.action, b.description))
                        for k in b.key.split(","))

    def rows(self) -> list[tuple[str, str]]:
        """(key, description) pairs: the app's keys, then those of the pane or screen in front."""
        from workbench.screens.jobs import JobsScreen

        out = [("[b]Everywhere[/b]", "")]
        out += [(self._key(b), b.description) for b in self._wb.BINDINGS if b.description]
        out.append(("ctrl+p", "command palette: run any analysis or step, every action"))
        front = self._wb.screen_stack[-2] if len(self._wb.screen_stack) > 1 else None
        if isinstance(front, JobsScreen):
            out += [("", ""), ("[b]Jobs screen[/b]", "")]
            out += [(self._key(b), b.description) for b in front.BINDINGS]
            return out
        active = self._wb.screen_stack[0].query_one("#panes").active
        if active == "datasets":
            from workbench.panes.datasets import DatasetsPane, EdaView, FrameView

            out += [("", ""), ("[b]Datasets pane[/b]", "")]
            out += list(DatasetsPane.HELP_KEYS)
            out += [(self._key(b), b.description) for b in (*FrameView.BINDINGS, *EdaView.BINDINGS)]
            return out
        for pane in self._wb.panes:
            if getattr(pane.parent, "id", None) == active:
                out += [("", ""), (f"[b]{active.title()} pane[/b]", "")]
                out += [(self._key(b), b.description) for b in pane._bindings_list()]
        return out

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, desc in self.rows():
            table.add_row(key, desc)
        with VerticalScroll():
            yield Static(table)
            yield Static("[dim]esc back · q quits · jobs run in their own processes and survive "
                         "quitting and lost connections[/dim]")
