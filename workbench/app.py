"""The workbench TUI: four panes over one session.

The app never computes anything heavy.  It polls the session store from a
thread worker (jobs, new events, new tables/equations) and hands each update to
the panes; jobs run in their own processes and keep running when the app quits.
Nothing here imports torch: first paint must not wait for it.

Split by concern: this module lays out the app, mounts the panes and keeps its message
handlers; :mod:`workbench.app_polling` reads the store, :mod:`workbench.app_screens` holds the
screens and what ``S``/``E`` save, :mod:`workbench.app_jobs` starts and steers jobs.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from engine.session import Session, SessionError
from workbench.app_jobs import JobActions
from workbench.app_polling import StorePolling
from workbench.app_screens import ScreenActions
from workbench.commands import AnalysisCommands
from workbench.messages import DeviceInfo, StoreUpdate
from workbench.widgets.footer import WorkbenchFooter
from workbench.widgets.status_line import StatusLine
PANES = ("datasets", "training", "equations", "results")
POLL_S = 0.5


class WorkbenchApp(StorePolling, ScreenActions, JobActions, App):
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

    # -- the store poll's and the workers' messages (the poll itself: workbench.app_polling);
    # @on handlers stay on the App class: textual registers them only on its own subclasses
    @on(StoreUpdate)
    def on_store_update(self, msg: StoreUpdate) -> None:
        if not self.is_running or not self.status.is_attached:
            return  # a last poll arriving while the app shuts down
        t0 = time.perf_counter()
        try:
            self._fold_update(msg)
        finally:
            self.update_ms.append(1000 * (time.perf_counter() - t0))

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
