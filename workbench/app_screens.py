"""The app's screens and what it saves: panes, the jobs and help screens, "Open data…",
the screenshot (SVG and text), the session report, and the palette's system commands.
A mixin of :class:`workbench.app.WorkbenchApp`.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.widgets import TabbedContent

from engine.session import Session
from workbench.messages import ReportWritten


class ScreenActions:
    """What the keys and the palette show or save (the job actions are in :mod:`workbench.app_jobs`)."""

    def action_open_data(self) -> None:
        from workbench.screens.open_data import OpenDataScreen

        self.push_screen(OpenDataScreen(), self.add_data)

    def add_data(self, path: Path | None) -> None:
        """Show a file or folder in the Datasets pane (nothing is copied)."""
        if path is None:
            return
        if path not in self.extra_data:
            self.extra_data.insert(0, path)
            self.save_ui(**{"datasets.extra": [str(p) for p in self.extra_data]})
        for pane in self.screen_stack[0].query("#datasets-pane"):
            pane.set_paths(self.dataset_paths())
        self.action_show_pane("datasets")
        self.notify(f"opened {path}", title="Datasets")

    def action_show_pane(self, pane: str) -> None:
        from workbench.screens.jobs import JobsScreen

        if isinstance(self.screen, JobsScreen):
            self.pop_screen()
        self.screen_stack[0].query_one("#panes", TabbedContent).active = pane

    def _jobs_screen(self):
        from workbench.screens.jobs import JobsScreen

        return next((s for s in self.screen_stack if isinstance(s, JobsScreen)), None)

    def _redraw_jobs(self) -> None:
        screen = self._jobs_screen()
        if screen is not None:
            screen.redraw()

    def action_jobs(self) -> None:
        """Open the jobs screen, or close it when it is in front."""
        from workbench.screens.jobs import JobsScreen

        if isinstance(self.screen, JobsScreen):
            self.pop_screen()
        elif self._jobs_screen() is None:
            # one screen, built once and kept (installed): j shows it without composing it again
            if not self.is_screen_installed("jobs"):
                self.install_screen(JobsScreen(), "jobs")
            self.push_screen("jobs")

    def active_view(self) -> str:
        """What is in front: "jobs", "help", or the pane's id."""
        from workbench.screens.jobs import JobsScreen

        if isinstance(self.screen, JobsScreen):
            return "jobs"
        if len(self.screen_stack) > 1 and self.screen.id:
            return self.screen.id
        return self.screen_stack[0].query_one("#panes", TabbedContent).active or "panes"

    def screen_text(self) -> str:
        """The screen in front as plain text (what ``S`` saves beside the SVG)."""
        import io

        from rich.console import Console

        width, height = self.size
        console = Console(width=width, height=height, file=io.StringIO(), record=True,
                          force_terminal=True, color_system=None, legacy_windows=False, safe_box=False)
        console.print(self.screen._compositor.render_update(
            full=True, screen_stack=self._background_screens))
        return "\n".join(line.rstrip() for line in console.export_text(styles=False).splitlines()) + "\n"

    def action_screenshot(self) -> None:
        """Save the screen in front as SVG and text in the session's ``exports/screens``."""
        out = self.session.artifacts / "exports" / "screens"
        stem = f"{self.active_view()}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            out.mkdir(parents=True, exist_ok=True)
            self.save_screenshot(f"{stem}.svg", str(out))
            (out / f"{stem}.txt").write_text(self.screen_text(), encoding="utf-8")
        except OSError as exc:
            self.notify(f"cannot save the screen: {exc}", severity="error")
            return
        self.notify(f"saved {out / stem}.svg and .txt", title="screen saved")

    def action_report(self) -> None:
        self.report_worker()

    @work(thread=True, exclusive=True, group="report", exit_on_error=False, name="report")
    def report_worker(self) -> None:
        from engine.session_report import write_report

        with Session(self.session.path, create=False, readonly=True) as s:  # this thread's own
            rep = write_report(s, self.session.artifacts / "exports"
                               / f"report-{time.strftime('%Y%m%d-%H%M%S')}.md")
        self.post_message(ReportWritten(f"{rep.path} ({rep.tables} tables, {rep.equation_sets} "
                                        f"equation sets, {len(rep.figures)} figures)"))

    def on_report_written(self, message: ReportWritten) -> None:
        self.notify(message.text, title="report written")

    def get_system_commands(self, screen):
        from textual.app import SystemCommand

        yield from super().get_system_commands(screen)
        yield SystemCommand("Jobs screen", "every job: state, progress, ETA, device, GPU; "
                            "cancel / resume / delete (key j)", self.action_jobs)
        yield SystemCommand("Save screen as SVG and text",
                            "into the session's artifacts/exports/screens (key S)", self.action_screenshot)
        yield SystemCommand("Export session report", "Markdown with tables, equations and PNG "
                            "figures into artifacts/exports (key E)", self.action_report)
        yield SystemCommand("Help: keys of this pane", "key ?", self.action_help)
        yield SystemCommand("Open data: an HDF5/NWB file or folder", "shown in the Datasets pane; "
                            "nothing is copied into the session", self.action_open_data)

    def action_help(self) -> None:
        from workbench.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self))
