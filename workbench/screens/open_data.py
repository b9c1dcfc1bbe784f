"""Open your own data: a path field for an HDF5/NWB file or a folder of recordings, shown in
the Datasets pane beside the session's own files (nothing is copied into the session)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


def check_data_path(text: str) -> tuple[Path | None, str | None]:
    """(the resolved path, None) or (None, one line saying why it cannot be opened)."""
    text = text.strip()
    if not text:
        return None, "type a file or folder path"
    path = Path(text).expanduser()
    if not path.exists():
        return None, f"{path}: no such file or folder"
    if path.is_file():
        from workbench.panes.datasets import H5_SUFFIXES

        if path.suffix.lower() not in H5_SUFFIXES:
            return None, f"{path}: not an HDF5/NWB file ({', '.join(sorted(H5_SUFFIXES))})"
    return path.resolve(), None


class OpenDataScreen(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "Back")]
    DEFAULT_CSS = """
    OpenDataScreen { align: center middle; }
    OpenDataScreen > Vertical { width: 76; max-width: 95%; height: auto; border: round $accent;
        background: $surface; padding: 0 1; }
    OpenDataScreen #open-error { color: $error; height: auto; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Open data: an HDF5 / NWB file or a folder of them", style="bold"))
            yield Input(placeholder="/path/to/recording.nwb or /path/to/folder", id="open-path")
            yield Static("", id="open-error")
            yield Static(Text("enter opens · esc back · files stay where they are", style="dim"))

    def on_mount(self) -> None:
        self.query_one("#open-path", Input).focus()

    @on(Input.Submitted, "#open-path")
    def _open(self, event: Input.Submitted) -> None:
        path, err = check_data_path(event.value)
        if err:
            self.query_one("#open-error", Static).update(Text(err, overflow="ellipsis", no_wrap=True))
            return
        self.dismiss(path)
