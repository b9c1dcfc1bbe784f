"""The app's job actions: the run palette and parameter form, starting, cancelling, resuming
and deleting jobs (each job runs in its own process).  A mixin of :class:`workbench.app.WorkbenchApp`.
"""

from __future__ import annotations

from engine.session import SessionError


class JobActions:
    """Starting and steering jobs from the TUI; read-only sessions only say so."""

    def action_run_dialog(self) -> None:
        """r / s: a palette of run entries only (ctrl+p keeps every action)."""
        from textual.command import CommandPalette

        from workbench.commands import RunCommands

        if not CommandPalette.is_open(self):
            self.push_screen(CommandPalette(providers=[RunCommands], id="--command-palette",
                                            placeholder="Run which analysis or step? (type to filter)"))

    def ask_run(self, analysis: str, steps: list[str] | None = None) -> None:
        """The parameter form of an analysis's steps; the job starts when it is accepted."""
        from engine import analyses
        from engine.errors import UserError
        from workbench.screens.params import ParamsScreen

        if self.readonly:
            self.notify("read-only: start jobs from the workbench that owns this session",
                        severity="warning")
            return
        try:
            spec = analyses.get(analysis)
            specs = spec.params(steps)
            current = {k: v for k, v in self.session.params(analysis).items() if k in specs}
        except UserError as exc:
            self.notify(str(exc), severity="error")
            return
        what = f"{analysis}: {', '.join(steps)}" if steps else f"{analysis}: all steps"

        def started(values: dict | None) -> None:
            if values is None:
                return
            try:  # the next form opens with these values
                self.session.set_params(analysis, values)
            except SessionError as exc:
                self.notify(str(exc), severity="error")
            self.start_job(analysis, steps, values)

        self.push_screen(ParamsScreen(f"Run {what} — {spec.title}", specs, current), started)

    def start_job(self, analysis: str, steps: list[str] | None = None,
                  overrides: dict | None = None) -> str | None:
        """Launch a job (one analysis, some or all steps) in its own process."""
        from engine.errors import UserError
        from engine.jobs import runner

        if self.readonly:
            self.notify("read-only: start jobs from the workbench that owns this session",
                        severity="warning")
            return None
        try:
            job_id = runner.start(self.session, analysis, steps, overrides)
        except (UserError, OSError) as exc:
            self.notify(str(exc), severity="error")
            return None
        what = f"{analysis} ({', '.join(steps)})" if steps else f"{analysis} (all steps)"
        self.notify(f"started {what}", title=job_id)
        self.action_show_pane("training")
        self.request_poll()
        return job_id

    def cancel_job(self, job_id: str) -> None:
        from engine.jobs import runner

        if self.readonly:
            self.notify("read-only session", severity="warning")
            return
        sent = runner.cancel(self.session, job_id)
        self.notify("cancel sent; the job stops at its next safe point" if sent
                    else "job is not running", title=job_id)

    def ask_delete_job(self, job_id: str) -> None:
        """Delete a job after a y/n question (its events go; its artifacts stay on disk)."""
        from workbench.screens.confirm import ConfirmScreen

        job = next((j for j in self.last_jobs if j.id == job_id), None)
        if job is not None and job.active:
            self.notify(f"{job_id} is {job.state}: cancel it first", severity="warning")
            return
        what = f" ({job.analysis}, {job.state})" if job else ""
        self.push_screen(ConfirmScreen(f"Delete job [b]{job_id}[/b]{what} and its events? "
                                       "Its artifacts stay on disk."),
                         lambda yes: self.delete_job(job_id) if yes else None)

    def delete_job(self, job_id: str) -> None:
        if self.readonly:
            self.notify("read-only session", severity="warning")
            return
        try:
            self.session.delete_job(job_id)
        except SessionError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify("deleted (its artifacts stay on disk)", title=job_id)
        self.request_poll()

    def resume_job(self, job_id: str) -> None:
        from engine.jobs import runner

        if self.readonly:
            self.notify("read-only session", severity="warning")
            return
        try:
            new_id = runner.resume(self.session, job_id)
        except SessionError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"resumed as {new_id}", title=job_id)
        self.request_poll()
