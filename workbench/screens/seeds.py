"""The "Run over seeds…" form: which analysis, which seeds, how many at a time.

Each field is checked when the form is accepted (enter); a bad one is named in one line
and the form stays open.  It returns a :class:`SeedsRequest`, or None on escape.  The
other parameters are the analysis's current ones (its parameter form saves them).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from engine.analyses.base import ParamError


@dataclass(frozen=True)
class SeedsRequest:
    analysis: str
    seeds: list[int]
    at_once: int


def read_request(analysis: str, seeds: str, at_once: str) -> SeedsRequest:
    """The form's texts as a request; ParamError names the field that is wrong."""
    from engine import analyses
    from engine.seeds import parse_seeds

    analysis = analysis.strip()
    if "seed" not in analyses.get(analysis).defaults():  # ParamError for an unknown name
        raise ParamError(f"analysis {analysis!r} has no seed parameter")
    try:
        n = int(at_once.strip() or "1")
    except ValueError:
        raise ParamError(f"at once: a whole number, got {at_once!r}") from None
    if n < 1:
        raise ParamError(f"at once: at least 1, got {n}")
    return SeedsRequest(analysis, parse_seeds(seeds), n)


class SeedsScreen(ModalScreen[SeedsRequest | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    SeedsScreen { align: center middle; }
    SeedsScreen > Vertical { width: 64; max-width: 95%; height: auto; border: round $accent;
        background: $surface; padding: 0 1; }
    SeedsScreen Input { margin: 0 0 0 0; }
    SeedsScreen #seeds-error { color: $error; height: auto; }
    """

    def __init__(self, analysis: str, seeds: str = "0-2", at_once: int = 1) -> None:
        super().__init__()
        self.defaults = (analysis, seeds, str(at_once))

    def compose(self) -> ComposeResult:
        analysis, seeds, at_once = self.defaults
        with Vertical():
            yield Static("[b]Run over seeds[/b]: each seed its own job; mean ± spread in Results")
            yield Static("analysis", classes="muted")
            yield Input(analysis, id="seeds-analysis")
            yield Static("seeds (0,1,2 or 0-4)", classes="muted")
            yield Input(seeds, id="seeds-list")
            yield Static("seeds running at the same time", classes="muted")
            yield Input(at_once, id="seeds-at-once")
            yield Static("", id="seeds-error")
            yield Static("[b]enter[/b] run · [b]escape[/b] cancel", classes="muted")

    def on_mount(self) -> None:
        self.query_one("#seeds-list", Input).focus()

    @on(Input.Submitted)
    def accept(self) -> None:
        texts = [self.query_one(f"#{i}", Input).value for i in ("seeds-analysis", "seeds-list", "seeds-at-once")]
        try:
            request = read_request(*texts)
        except ParamError as exc:
            self.query_one("#seeds-error", Static).update(Text(str(exc)))  # no markup from a name
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
