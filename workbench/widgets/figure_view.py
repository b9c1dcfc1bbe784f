"""A Static showing one of an analysis's figures (:mod:`engine.views`).

The pane that holds it says which views are available and where the artifacts
are; keys of the pane call :meth:`cycle_view`, :meth:`step_index` and
:meth:`cycle_option`.  Figures are loaded in a thread (they read .npz files) and
drawn on the UI thread at the widget's size; a missing artifact shows the step
to run instead of an error.  An optional ``builtin`` figure (the Results pane's bar
chart) is the first entry of the cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from rich.console import Group
from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets import Static

from workbench.messages import FigureLoaded


Builtin = Callable[[int, int], Any]


class FigureView(Static):
    DEFAULT_CSS = """
    FigureView { height: 1fr; min-height: 6; }
    """

    class Changed(Message):
        """The shown view, index or option changed (the pane persists them)."""

        def __init__(self, state: dict[str, Any]) -> None:
            super().__init__()
            self.state = state

    def __init__(self, builtin: tuple[str, Builtin] | None = None, **kw) -> None:
        super().__init__("", **kw)
        self.builtin = builtin
        self.views: list[Any] = []
        self.workdir: Path | None = None
        self.view_name: str | None = builtin[0] if builtin else None
        self.index = 0
        self.option: str | None = None
        self._fig: Any = None
        self._error: str | None = None

    # -- what to show -----------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return ([self.builtin[0]] if self.builtin else []) + [v.name for v in self.views]

    def configure(self, workdir: Path | None, views: list[Any], state: dict[str, Any] | None = None) -> None:
        """New artifacts folder and views; keeps (or restores from ``state``) the selection."""
        self.workdir, self.views = workdir, list(views)
        if state:
            self.view_name = state.get("view", self.view_name)
            self.index = int(state.get("index", self.index))
            self.option = state.get("option", self.option)
        if self.view_name not in self.names:
            self.view_name = self.names[0] if self.names else None
        self.reload()

    @property
    def state(self) -> dict[str, Any]:
        return {"view": self.view_name, "index": self.index, "option": self.option}

    def _view(self) -> Any:
        return next((v for v in self.views if v.name == self.view_name), None)

    def cycle_view(self) -> None:
        names = self.names
        if len(names) > 1:
            self.view_name = names[(names.index(self.view_name) + 1) % len(names)]
            self._changed()

    def step_index(self, delta: int) -> None:
        n = self._fig.n_index if self._fig is not None else 1
        new = max(0, min(n - 1, self.index + delta))
        if new != self.index:
            self.index = new
            self._changed()

    def cycle_option(self) -> None:
        opts = self._fig.options if self._fig is not None else []
        if len(opts) > 1:
            cur = self._fig.option if self._fig.option in opts else opts[0]
            self.option = opts[(opts.index(cur) + 1) % len(opts)]
            self._changed()

    def _changed(self) -> None:
        self.post_message(self.Changed(self.state))
        self.reload()

    # -- loading and drawing -------------------------------------------------------------
    def reload(self) -> None:
        view = self._view()
        if view is None or self.workdir is None:
            self._fig, self._error = None, None
            self.redraw()
            return
        self._load(view, self.workdir, self.index, self.option)

    @work(thread=True, exclusive=True, group="figure-load", exit_on_error=False)
    def _load(self, view: Any, workdir: Path, index: int, option: str | None) -> None:
        from engine.views import load_figure

        try:
            fig, error = load_figure(view, workdir, index, option), None
        except FileNotFoundError as exc:
            fig, error = None, str(exc)
        except Exception as exc:  # a broken artifact must not take the pane down
            fig, error = None, f"{view.name}: {type(exc).__name__}: {exc}"
        self.post_message(FigureLoaded(fig, error))

    def on_figure_loaded(self, message: FigureLoaded) -> None:
        fig = message.figure
        self._fig, self._error = fig, message.error
        if fig is not None:  # the loader clamps: keep our index in its range
            self.index = fig.index
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        w, h = self.content_size
        w, h = w or 60, h or 8
        hint = self.hint()
        if self._fig is not None and not self._showing_builtin():
            try:  # a figure has a title line: the keys share it
                from workbench.widgets.figure import render_figure  # numpy: not at startup

                self.update(render_figure(self._fig, w, h, hint))
            except Exception as exc:  # drawing must never crash the app
                self.update(Text(f"figure failed: {exc}", style="red"))
            return
        if self._showing_builtin():
            body = self.builtin[1](w, h - 1 if hint else h)
        elif self._error and self.job_running:
            # "run the 'train' step first" is wrong while train runs: its file is on the way
            body = Text("this figure appears when the running job writes its file", style="dim")
        elif self._error:
            body = Text(self._error, style="yellow")
        else:
            body = Text("no figure", style="dim")
        # no title line to share: the keys get one dim line of their own
        self.update(Group(Text(hint[:w], style="dim", no_wrap=True, overflow="crop"), body) if hint else body)

    @property
    def job_running(self) -> bool:
        """The job whose folder this shows is still running (set by the pane)."""
        return getattr(self, "_job_running", False)

    @job_running.setter
    def job_running(self, value: bool) -> None:
        if value != self.job_running:
            self._job_running = value
            self.redraw()

    def _showing_builtin(self) -> bool:
        return bool(self.builtin) and self.view_name == self.builtin[0]

    def hint(self) -> str:
        """Keys that do something now, for the pane's title line."""
        parts = []
        names = self.names
        if len(names) > 1:
            parts.append(f"v: {self.view_name} ({names.index(self.view_name) + 1}/{len(names)})")
        if self._fig is not None and self._fig.n_index > 1:
            view = self._view()
            parts.append(f"n/p: {view.index if view else 'index'} {self.index + 1}/{self._fig.n_index}")
        if self._fig is not None and len(self._fig.options) > 1:
            parts.append(f"m: {self._fig.option}")
        return " · ".join(parts)
