"""The workbench TUI: four panes over one session.

The app never computes anything heavy.  It polls the session store from a
thread worker (jobs, new events, new tables/equations) and hands each update to
the panes; jobs run in their own processes and keep running when the app quits.
Nothing here imports torch: first paint must not wait for it.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from engine.session import END_STATES, Session, SessionError
from workbench.commands import AnalysisCommands
from workbench.messages import DeviceInfo, ReportWritten, StoreUpdate
from workbench.widgets.footer import WorkbenchFooter
from workbench.widgets.status_line import StatusLine

PANES = ("datasets", "training", "equations", "results")
POLL_S = 0.5


class WorkbenchApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "neuro-workbench"
    COMMANDS = App.COMMANDS | {AnalysisCommands}
    # ids name the bindings a user may remap in the config's [keys] table (workbench.config)
    BINDINGS = [
        Binding("1", "show_pane('datasets')", "Data", id="pane.datasets"),
        Binding("2", "show_pane('training')", "Train", id="pane.training"),
        Binding("3", "show_pane('equations')", "Eqns", id="pane.equations"),
        Binding("4", "show_pane('results')", "Results", id="pane.results"),
        Binding("r", "run_dialog", "Run", id="run"),
        Binding("j", "jobs", "Jobs", id="jobs"),
        Binding("S", "screenshot", "Save screen", show=False, id="screenshot"),
        Binding("E", "report", "Report", show=False, id="report"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("ctrl+p", "command_palette", "Every action (palette)", show=False),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, session: Session | None = None, *, session_name: str = "demo",
                 root: Path | None = None, poll: bool = True, data: list[Path] | None = None):
        super().__init__()
        from workbench.config import load

        self.config, self._config_warning = load()
        self.session = session or Session.open(session_name, root)
        self.readonly = self.session.readonly or not self.session.acquire_ui_lock()
        # a second connection for the poll worker thread; the main one writes UI state
        self.store = Session(self.session.path, create=False, readonly=True)
        self._poll = poll
        self._last_event = 0
        self._job_states: dict[str, str] = {}
        self._first_update = True
        self._poll_again = False
        # how long each store update took to fold into the panes (ms): the benchmark reads it
        self.update_ms: collections.deque[float] = collections.deque(maxlen=1000)
        self.exit_message = ""
        self.store_warnings: list[str] = []  # what was read from the session and set aside
        self.opening_note = ""  # shown once the screen is up (e.g. "new session X created")
        self.last_jobs: list = []  # the latest poll, for the jobs screen
        self.last_progress: dict[str, dict] = {}
        self.gpus: list[dict] = []
        self.sub_title = self.session.name + ("  [read-only]" if self.readonly else "")
        # the user's own files and folders (--data, "Open data…"), kept in the session's UI state
        saved = [Path(p) for p in self.session.ui().get("datasets.extra", [])]
        self.extra_data: list[Path] = list(dict.fromkeys([*(Path(p) for p in data or []), *saved]))

    # -- layout ------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        pane, warning = _saved_pane(self.session)
        if warning:  # a hand-edited or other-version row: the default, said on mount
            self.store_warnings.append(warning)
        with TabbedContent(initial=pane, id="panes"):
            # mounted after first paint: it pulls in numpy and h5py (see _mount_datasets)
            yield TabPane("1 Datasets", id="datasets")
            # the panes are mounted right after first paint, the one in front first: the tabs,
            # status and keys show at once, without waiting for the panes' imports and styles
            yield TabPane("2 Training", id="training")
            yield TabPane("3 Equations", id="equations")
            yield TabPane("4 Results", id="results")
        yield StatusLine(id="status")
        yield WorkbenchFooter()

    def _mount_datasets(self) -> None:
        from textual.widget import MountError

        from workbench.panes.datasets import DatasetsPane

        tab = self.screen_stack[0].query_one("#datasets", TabPane)
        if tab.query("#datasets-pane"):
            return
        pane = DatasetsPane(self.dataset_paths(), id="datasets-pane")
        try:
            tab.mount(pane)
        except MountError:
            return  # the app is closing before it finished opening
        if self._active_pane() == "datasets":  # arrived on it: its tree takes the keys
            self.call_after_refresh(pane.focus_default)

    def _active_pane(self) -> str:
        return self.screen_stack[0].query_one("#panes", TabbedContent).active

    def dataset_paths(self) -> list[Path]:
        """What the Datasets pane lists: the user's own files and folders (--data, "Open
        data…"), then the session's artifacts folder (searched for HDF5/NWB files)."""
        return [*self.extra_data, self.session.artifacts]

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

    def on_mount(self) -> None:
        # keep references: while a modal screen is up, queries see that screen, not ours
        from workbench.panes.base import StorePane

        self.status = self.query_one(StatusLine)
        self.panes = list(self.query(StorePane))  # the pane in front; _mount_rest adds the others
        self.status.readonly = self.readonly
        self._apply_config()
        self.call_after_refresh(self._after_first_paint)

    async def _after_first_paint(self) -> None:
        """What can wait for the first frame: notices, the device probe, the panes, the demo."""
        from engine import parallel  # a backend setting made elsewhere runs locally, and says so

        why = parallel.notice(self.session, reset=not self.readonly)
        for warning in self.store_warnings + ([why] if why else []):
            self.notify(warning, severity="warning", timeout=12)
        if self.opening_note:
            self.notify(self.opening_note, timeout=8)
        if self.readonly:
            self.notify("Another workbench has this session open: this one is read-only and "
                        "follows its updates.", severity="warning", timeout=8)
        self.probe_device()
        await self._mount_rest()
        if self._exit or not self.is_running:
            return
        if self.session.name == "demo" and not self.readonly and not self.session.jobs():
            # first run of the built-in demo: make its synthetic data and results
            self.start_job("demo")

    async def _mount_rest(self) -> None:
        """After first paint: the panes not in front, then the Datasets pane, then the store
        poll (every pane is there for the first update)."""
        from textual.widget import MountError

        from workbench.panes.base import StorePane

        front = self.screen_stack[0]
        order = sorted(("training", "equations", "results"), key=lambda p: p != self._active_pane())
        try:
            for pid in order:
                tab = front.query_one(f"#{pid}", TabPane)
                if not tab.query(f"#{pid}-pane"):
                    await tab.mount(_store_pane(pid))
        except MountError:
            return  # the app is closing before it finished opening
        if self._exit or not self.is_running:
            return  # q pressed while the panes were still arriving
        self.panes = list(front.query(StorePane))
        for pane in self.panes:  # a pane key pressed while they arrived: its keys work now
            if getattr(pane.parent, "id", None) == self._active_pane() and self.screen is front:
                pane.focus_default()
        self._mount_datasets()
        if self._poll:
            self.poll_store()
            self.set_interval(POLL_S, self._poll_tick)

    def _apply_config(self) -> None:
        cfg = self.config
        if cfg.keys:
            self.set_keymap(cfg.keys)
        warning = self._config_warning
        if cfg.theme:
            if cfg.theme in self.available_themes:
                self.theme = cfg.theme
            else:
                warning = (f"config {cfg.path}: unknown theme {cfg.theme!r} (known: "
                           f"{', '.join(sorted(self.available_themes))}); using the default")
        if warning:  # one line, and the workbench opens with the defaults
            self.notify(warning, severity="warning", timeout=12)

    # -- polling the store -------------------------------------------------------
    def _polling(self) -> bool:
        return any(w.group == "poll" and not w.is_finished for w in self.workers)

    def _poll_tick(self) -> None:
        # a poll still reading (a loaded machine, a big session) is left to finish, and the
        # next tick comes soon; polls never overlap, so no event is folded in twice
        if not self._polling():
            self.poll_store()

    def request_poll(self) -> None:
        """Read the store now (after this app started, cancelled or resumed a job)."""
        if self._polling():
            self._poll_again = True  # the poll in flight reads once more before it ends
        else:
            self.poll_store()

    @work(thread=True, group="poll", exit_on_error=False, name="poll")
    def poll_store(self) -> None:
        from engine.jobs.runner import reconcile

        while True:
            self._poll_again = False
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
            if not self._poll_again:
                return

    @on(StoreUpdate)
    def on_store_update(self, msg: StoreUpdate) -> None:
        if not self.is_running or not self.status.is_attached:
            return  # a last poll arriving while the app shuts down
        t0 = time.perf_counter()
        try:
            self._fold_update(msg)
        finally:
            self.update_ms.append(1000 * (time.perf_counter() - t0))

    def _fold_update(self, msg: StoreUpdate) -> None:
        self.status.set_jobs(msg.jobs, msg.progress)
        self.last_jobs, self.last_progress = msg.jobs, msg.progress
        self._redraw_jobs()
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
        """Ring the terminal bell when a job ends: ``bell = true`` in the config file."""
        return self.config.bell

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
        self.gpus = msg.gpus
        self._redraw_jobs()
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

    @on(TabbedContent.TabActivated)
    def on_tab(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "datasets":
            self._mount_datasets()
        for pane in [*self.panes, *self.screen_stack[0].query("#datasets-pane")]:
            if pane.parent is event.pane:  # keys of the pane in front work at once
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

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self))

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


PANES = ("datasets", "training", "equations", "results")


def _store_pane(pid: str):
    """A new Training/Equations/Results pane (their modules imported when first needed)."""
    if pid == "training":
        from workbench.panes.training import TrainingPane as cls
    elif pid == "equations":
        from workbench.panes.equations import EquationsPane as cls
    else:
        from workbench.panes.results import ResultsPane as cls
    return cls(id=f"{pid}-pane")


def _saved_pane(session) -> tuple[str, str | None]:
    """(pane the session was left on, None) or, for anything else (a hand-edited row,
    another version's pane), ("training", one line saying so)."""
    from engine.text import safe_line

    raw = session.ui().get("pane", "training")  # rows that are not JSON are left out there
    if isinstance(raw, str) and raw in PANES:
        return raw, None
    return "training", f"saved pane {safe_line(raw)!r} is unknown; showing training"
