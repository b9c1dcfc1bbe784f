"""The one-line status bar: running jobs with progress/ETA, the device, read-only flag."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from engine.session import Job
from workbench.format import current_progress, fmt_eta


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """

    device: reactive[str] = reactive("device: probing…")
    readonly: reactive[bool] = reactive(False)

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._jobs: list[Job] = []
        self._progress: dict[str, dict] = {}
        self._shown: Text | None = None

    def set_jobs(self, jobs: list[Job], progress: dict[str, dict]) -> None:
        self._jobs = [j for j in jobs if j.active]
        self._progress = progress
        self.refresh_text()

    def watch_device(self) -> None:
        self.refresh_text()

    def watch_readonly(self) -> None:
        self.refresh_text()

    def refresh_text(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        if self.readonly:
            t.append(" READ-ONLY ", style="bold reverse yellow")
            t.append(" ")
        if not self._jobs:
            t.append("no jobs running", style="dim")
        for j in self._jobs[:2]:
            p = current_progress(self._progress.get(j.id), j.current_step) or {}
            t.append("● ", style="green")
            t.append(f"{j.analysis}/{j.current_step or j.state}")
            if p.get("total"):
                t.append(f" {100 * p['done'] / p['total']:.0f}% ETA {fmt_eta(p, time.time())}")
            t.append("  ")
        if len(self._jobs) > 2:
            t.append(f"+{len(self._jobs) - 2} more  ")
        t.append(" │ ", style="dim")
        t.append(self.device)
        if t != self._shown:  # one fixed line: no layout pass, and none at all when unchanged
            self._shown = t
            self.update(t, layout=False)
