"""The workbench TUI: four panes over one session.

The app never computes anything heavy.  It polls the session store from a
thread worker (jobs, new events, new tables/equations) and hands each update to
the panes; jobs run in their own processes and keep running when the app quits.
Nothing here imports torch: first paint must not wait for it.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from engine.session import END_STATES, Session, SessionError
from workbench.commands import AnalysisCommands
from workbench.messages import DeviceInfo, StoreUpdate
from workbench.widgets.status_line import StatusLine

PANES = ("datasets", "training", "equations", "results")
POLL_S = 0.5


class WorkbenchApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "neuro-workbench"
    COMMANDS = App.COMMANDS | {AnalysisCommands}
    BINDINGS = [
        Binding("1", "show_pane('datasets')", "Data", key_display="1"),
        Binding("2", "show_pane('training')", "Train", key_display="2"),
        Binding("3", "show_pane('equations')", "Eqns", key_display="3"),
        Binding("4", "show_pane('results')", "Results", key_display="4"),
        Binding("r", "run_dialog", "Run"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+p", "command_palette", "Palette", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, session: Session | None = None, *, session_name: str = "demo",
                 root: Path | None = None, poll: bool = True):
        super().__init__()
        self.session = session or Session.open(session_name, root)
        self.readonly = self.session.readonly or not self.session.acquire_ui_lock()
        # a second connection for the poll worker thread; the main one writes UI state
        self.store = Session(self.session.path, create=False, readonly=True)
        self._poll = poll
        self._last_event = 0
        self._job_states: dict[str, str] = {}
        self._first_update = True
        self.exit_message = ""
        self.sub_title = self.session.name + ("  [read-only]" if self.readonly else "")

    # -- layout ------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        from workbench.panes.equations import EquationsPane
        from workbench.panes.results import ResultsPane
        from workbench.panes.training import TrainingPane

        yield Header()
        ui = self.session.ui()
        with TabbedContent(initial=ui.get("pane", "training"), id="panes"):
            # mounted after first paint: it pulls in numpy and h5py (see _mount_datasets)
            yield TabPane("1 Datasets", id="datasets")
            with TabPane("2 Training", id="training"):
                yield TrainingPane(id="training-pane")
            with TabPane("3 Equations", id="equations"):
                yield EquationsPane(id="equations-pane")
            with TabPane("4 Results", id="results"):
                yield ResultsPane(id="results-pane")
        yield StatusLine(id="status")
        yield Footer()

    def _mount_datasets(self) -> None:
        from textual.widget import MountError

        from workbench.panes.datasets import DatasetsPane

        tab = self.screen_stack[0].query_one("#datasets", TabPane)
        if tab.query("#datasets-pane"):
            return
        try:
            tab.mount(DatasetsPane(self.dataset_paths(), id="datasets-pane"))
        except MountError:
            pass  # the app is closing before it finished opening

    def dataset_paths(self) -> list[Path]:
        """HDF5 files the session knows: everything under its artifacts folder."""
        files = sorted(self.session.artifacts.glob("**/*.h5"))
        return files or [self.session.artifacts]

    def on_mount(self) -> None:
        # keep references: while a modal screen is up, queries see that screen, not ours
        from workbench.panes.base import StorePane

        self.status = self.query_one(StatusLine)
        self.panes = list(self.query(StorePane))
        self.status.readonly = self.readonly
        self.call_after_refresh(self._mount_datasets)
        if self.readonly:
            self.notify("Another workbench has this session open: this one is read-only and "
                        "follows its updates.", severity="warning", timeout=8)
        self.probe_device()
        if self.session.name == "demo" and not self.readonly and not self.session.jobs():
            # first run of the built-in demo: make its synthetic data and results
            self.start_job("demo")
        if self._poll:
            self.poll_store()
            self.set_interval(POLL_S, self.poll_store)

    # -- polling the store -------------------------------------------------------
    @work(thread=True, exclusive=True, group="poll", exit_on_error=False, name="poll")
    def poll_store(self) -> None:
        from engine.jobs.runner import reconcile

        if not self.readonly and self._first_update:
            # our own write connection may not be used from this thread; open one
            with Session(self.session.path, create=False) as w:
                reconcile(w)
        jobs = self.store.jobs()
        events = self.store.events(after=self._last_event, limit=5000)
        versions = self.store.versions()
        progress = {j.id: p for j in jobs if j.active and (p := self.store.latest_progress(j.id))}
        if events:
            self._last_event = events[-1].id
        self.post_message(StoreUpdate(jobs, events, *versions, first=self._first_update,
                                      progress=progress))
        self._first_update = False

    @on(StoreUpdate)
    def on_store_update(self, msg: StoreUpdate) -> None:
        if not self.is_running or not self.status.is_attached:
            return  # a last poll arriving while the app shuts down
        self.status.set_jobs(msg.jobs, msg.progress)
        self._notify_endings(msg)
        for pane in self.panes:
            pane.store_update(msg)
        if any(e.kind == "artifact" and e.payload.get("artifact_kind") == "hdf5" for e in msg.events):
            for pane in self.query("#datasets-pane"):  # a job wrote a new HDF5 file
                pane.set_paths(self.dataset_paths())

    def _notify_endings(self, msg: StoreUpdate) -> None:
        if msg.first:
            unseen = [j for j in msg.jobs if j.state in END_STATES and not j.seen]
            if unseen:
                finished = sum(j.state == "finished" for j in unseen)
                other = len(unseen) - finished
                text = f"{finished} job{'s' * (finished != 1)} finished while you were away"
                if other:
                    text += f", {other} ended otherwise (failed, cancelled or interrupted)"
                self.notify(text, timeout=8)
                self._mark_seen(unseen)
        else:
            ended = [j for j in msg.jobs if j.state in END_STATES
                     and self._job_states.get(j.id) not in (None, *END_STATES)]
            for j in ended:
                severity = "information" if j.state == "finished" else "error"
                self.notify(f"{j.analysis} {j.state}" + (f": {j.error}" if j.error else ""),
                            title=j.id, severity=severity, timeout=10)
                if self.config_bell():
                    self.bell()
            self._mark_seen(ended)
        self._job_states = {j.id: j.state for j in msg.jobs}

    def config_bell(self) -> bool:
        return bool(self.session.ui().get("bell", False)) if not self.readonly else False

    def _mark_seen(self, jobs) -> None:
        if self.readonly:
            return
        for j in jobs:
            self.session.update_job(j.id, seen=1)

    @work(thread=True, exclusive=True, group="device", exit_on_error=False, name="device")
    def probe_device(self) -> None:
        from workbench.device_probe import probe

        text, gpus = probe()
        self.post_message(DeviceInfo(text, gpus))

    @on(DeviceInfo)
    def on_device_info(self, msg: DeviceInfo) -> None:
        self.status.device = msg.text
        if msg.gpus:  # GPUs change: keep watching them, nvtop-style
            self.set_timer(2.0, self.probe_device)

    @on(Worker.StateChanged)
    def on_worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            text = str(err).splitlines()[0] if str(err) else type(err).__name__
            self.notify(f"{event.worker.name}: {text}", severity="error", timeout=8)

    # -- actions -----------------------------------------------------------------
    def action_show_pane(self, pane: str) -> None:
        self.query_one("#panes", TabbedContent).active = pane

    @on(TabbedContent.TabActivated)
    def on_tab(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "datasets":
            self._mount_datasets()
        for pane in self.panes:  # keys of the pane in front work at once
            if pane.parent is event.pane:
                pane.focus_default()
        self.save_ui(pane=event.pane.id)

    def save_ui(self, **values) -> None:
        if self.readonly:
            return
        try:
            self.session.set_ui(**values)
        except SessionError as exc:
            self.notify(str(exc), severity="error")

    def action_help(self) -> None:
        from workbench.screens.help import HelpScreen

        self.push_screen(HelpScreen(self))

    def action_run_dialog(self) -> None:
        self.action_command_palette()

    def start_job(self, analysis: str, steps: list[str] | None = None) -> str | None:
        """Launch a job (one analysis, some or all steps) in its own process."""
        from engine.analyses.base import ParamError
        from engine.jobs import runner

        if self.readonly:
            self.notify("read-only: start jobs from the workbench that owns this session",
                        severity="warning")
            return None
        try:
            job_id = runner.start(self.session, analysis, steps)
        except (ParamError, SessionError, OSError) as exc:
            self.notify(str(exc), severity="error")
            return None
        what = f"{analysis} ({', '.join(steps)})" if steps else f"{analysis} (all steps)"
        self.notify(f"started {what}", title=job_id)
        self.action_show_pane("training")
        self.poll_store()
        return job_id

    def cancel_job(self, job_id: str) -> None:
        from engine.jobs import runner

        if self.readonly:
            self.notify("read-only session", severity="warning")
            return
        sent = runner.cancel(self.session, job_id)
        self.notify("cancel sent; the job stops at its next safe point" if sent
                    else "job is not running", title=job_id)

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
        self.poll_store()

    async def action_quit(self) -> None:
        running = [j for j in self.store.jobs() if j.active]
        if running:
            n = len(running)
            self.exit_message = (
                f"{n} job{'s' * (n != 1)} keep{'s' * (n == 1)} running in the background; "
                f"reopen with: workbench --session {self.session.name}"
            )
        self.exit()

    def on_unmount(self) -> None:
        self.session.close()
        self.store.close()
