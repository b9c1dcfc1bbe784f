"""The parameter form: before a run starts, every parameter of the chosen steps with its
value, type, allowed range and help; each value is checked as it is typed (the same
``Param.check`` that ``--set`` uses), and the run starts only when all are valid.

It returns every value of the form (``dismiss(dict)``), or None on escape.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from engine.analyses.base import Param, ParamError


def shown(value: Any) -> str:
    """A value as the user types it back (lists comma-separated, like --set)."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class ParamForm:
    """The form's logic without a screen (tests drive it directly): the specs, the current
    texts, and what each text means or why it is refused."""

    def __init__(self, specs: dict[str, Param], current: dict[str, Any]) -> None:
        self.specs = specs
        self.texts = {k: shown(current.get(k, p.default)) for k, p in specs.items()}

    def check(self, key: str) -> tuple[Any, str | None]:
        """(value, None) or (None, the one line saying what is wrong)."""
        try:
            return self.specs[key].check(self.texts[key]), None
        except ParamError as exc:
            return None, f"{key}: {exc}"

    def result(self) -> tuple[dict[str, Any], list[str]]:
        """(every value, typed; the errors): run only without errors."""
        values, errors = {}, []
        for key in self.specs:
            value, err = self.check(key)
            if err:
                errors.append(err)
            else:
                values[key] = value
        return values, errors


class ParamsScreen(ModalScreen[dict | None]):
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Back"),
        Binding("down", "app.focus_next", "Next field", show=False),
        Binding("up", "app.focus_previous", "Previous field", show=False),
    ]
    DEFAULT_CSS = """
    ParamsScreen { align: center middle; }
    ParamsScreen > Vertical { width: 100; max-width: 98%; height: auto; max-height: 95%;
        border: round $accent; background: $surface; padding: 0 1; }
    ParamsScreen #params-rows { height: auto; max-height: 1fr; }
    ParamsScreen .param-row { height: 1; }
    ParamsScreen .param-key { width: 20; }
    ParamsScreen .param-row Input { width: 16; height: 1; border: none; padding: 0 1; }
    ParamsScreen .param-row Input.-invalid { background: $error 30%; }
    ParamsScreen .param-row Input:focus { background: $accent 30%; }
    ParamsScreen .param-note { width: 1fr; color: $text-muted; }
    ParamsScreen .param-note.-bad { color: $error; }
    ParamsScreen #params-status { height: auto; }
    """

    def __init__(self, title: str, specs: dict[str, Param], current: dict[str, Any]) -> None:
        super().__init__(id="params")
        self.title_text = title
        self.form = ParamForm(specs, current)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.title_text, style="bold"), id="params-title")
            with VerticalScroll(id="params-rows"):
                if not self.form.specs:
                    yield Static("no parameters: enter runs it", classes="param-note")
                for key, spec in self.form.specs.items():
                    with Horizontal(classes="param-row"):
                        yield Static(Text(key, overflow="ellipsis", no_wrap=True), classes="param-key")
                        yield Input(self.form.texts[key], id=f"param-{key}", name=key, compact=True)
                        yield Static(self._note(spec), classes="param-note", id=f"note-{key}")
            yield Static(Text("enter runs · tab/↑/↓ next field · esc back", style="dim"), id="params-status")

    @staticmethod
    def _note(spec: Param) -> Text:
        bits = [spec.kind, spec.describe(), spec.help]
        return Text(" · ".join(b for b in bits if b), overflow="ellipsis", no_wrap=True)

    def on_mount(self) -> None:
        inputs = self.query(Input)
        if inputs:
            inputs.first().focus()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        key = event.input.name or ""
        if key not in self.form.specs:
            return
        self.form.texts[key] = event.value
        _, err = self.form.check(key)
        event.input.set_class(err is not None, "-invalid")
        note = self.query_one(f"#note-{key}", Static)
        note.set_class(err is not None, "-bad")
        note.update(Text(err.split(": ", 1)[1], overflow="ellipsis", no_wrap=True) if err
                    else self._note(self.form.specs[key]))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run()

    def key_enter(self) -> None:  # a form without fields: enter still runs
        if not self.form.specs:
            self.action_run()

    def action_run(self) -> None:
        values, errors = self.form.result()
        status = self.query_one("#params-status", Static)
        if errors:
            status.update(Text(f"✗ {errors[0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
                               style="bold red"))
            bad = errors[0].split(":", 1)[0]
            self.query_one(f"#param-{bad}", Input).focus()
            return
        self.dismiss(values)
