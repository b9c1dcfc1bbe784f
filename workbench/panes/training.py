"""Training pane: the session's jobs, and for the selected one its progress, ETA,
throughput, device, loss curves, checkpoints and log tail — all redrawn from the
session store, so reopening a session shows the same thing."""

from __future__ import annotations

import time
from collections import defaultdict

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, ProgressBar, RichLog, Static

from engine.session import Event, Job
from engine.text import safe_line
from workbench.messages import JobEventsLoaded, StoreUpdate
from workbench.panes.base import StorePane
from workbench.widgets.figure_view import FigureView
from workbench.widgets.plot import line_plot
from workbench.format import current_progress, fmt_eta

STATE_MARK = {"queued": ("…", "yellow"), "running": ("●", "green"), "finished": ("✓", "green"),
              "failed": ("✗", "red"), "cancelled": ("■", "yellow"), "interrupted": ("!", "red")}
LOSS_METRICS = ("train_loss", "val_loss", "loss")


class TrainingPane(StorePane):
    BINDINGS = [
        Binding("c", "cancel", "Cancel job"),
        Binding("R", "resume", "Resume job"),
        Binding("s", "start", "Start…"),
        Binding("l", "toggle_log_scale", "Log y"),
        Binding("v", "next_view", "Loss / predicted vs true"),
        Binding("n", "index(1)", "Next cell"),
        Binding("p", "index(-1)", "Previous cell"),
    ]
    DEFAULT_CSS = """
    TrainingPane #job-table { height: 1fr; }
    TrainingPane #job-log { height: 5; border-top: hkey $panel-lighten-2; }
    TrainingPane #job-progress { width: 1fr; }
    TrainingPane #progress-row { height: 1; }
    TrainingPane #job-facts { height: auto; max-height: 3; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.selected: str | None = None
        self.jobs: dict[str, Job] = {}
        self.series: dict[str, dict[str, tuple[list, list]]] = defaultdict(dict)
        self.facts: dict[str, dict] = defaultdict(dict)
        self.log_scale = False
        self._plot_dirty = True
        self._upto: dict[str, int] = {}  # last event id folded in, per job
        self._figure_for: tuple[str, str] | None = None  # (job, analysis) the figure view shows
        self._table_rows: list | None = None  # what the job table shows, to skip identical redraws
        self._plotted_at = 0.0
        self._texts: dict[str, Text] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-split"):
            with Vertical(classes="side"):
                yield Static("Jobs", classes="title")
                yield DataTable(id="job-table", cursor_type="row", zebra_stripes=False)
            with Vertical(classes="main"):
                yield Static("no job selected — ctrl+p to run an analysis", id="job-title",
                             classes="title")
                with Horizontal(id="progress-row"):
                    yield ProgressBar(id="job-progress", show_eta=False)
                yield Static("", id="job-facts", classes="muted")
                yield FigureView(builtin=("loss", self._loss_plot), id="loss-plot", classes="plot")
                yield RichLog(id="job-log", max_lines=500, wrap=True, markup=False)

    def on_mount(self) -> None:
        table = self.query_one("#job-table", DataTable)
        # fixed widths: auto widths grow with whatever passed through the table first
        # "done": a running job's percent, an ended job's end time (two "retina train" rows differ)
        for label, width in (("", 1), ("analysis", 8), ("step", 7), ("done", 5)):
            table.add_column(label, width=width)
        self.selected = self.wb.session.ui().get("training.job") if hasattr(self.wb, "session") else None

    # -- store updates -------------------------------------------------------------
    def store_update(self, msg: StoreUpdate) -> None:
        # a job that appeared since the last poll (palette, R, another terminal) is followed
        new = [j.id for j in msg.jobs if j.id not in self.jobs] if self.jobs and not msg.first else []
        self.jobs = {j.id: j for j in msg.jobs}
        for j in msg.jobs:
            if j.id in msg.progress:
                self.facts[j.id]["progress"] = msg.progress[j.id]
        if new:
            self.selected = new[-1]
            self.wb.save_ui(**{"training.job": self.selected})
            self.load_job(self.selected)
        elif self.selected not in self.jobs and msg.jobs:
            self.selected = msg.jobs[-1].id
            self.load_job(self.selected)
        elif msg.first and self.selected:
            self.load_job(self.selected)
        else:
            for e in msg.events:
                # skip what a replay from the store already folded in
                if e.job_id == self.selected and e.id > self._upto.get(e.job_id, 0):
                    self._apply(e, self.selected)
                    self._upto[e.job_id] = e.id
        self._refresh_table()
        self._refresh_detail()

    def _apply(self, e: Event, job_id: str) -> None:
        """Fold one event into ``job_id``'s view (events of the jobs it resumed count too)."""
        p = e.payload
        if e.kind == "metric":
            xs, ys = self.series[job_id].setdefault(p["name"], ([], []))
            xs.append(p.get("step") if p.get("step") is not None else len(xs))
            ys.append(p["value"])
            self.facts[job_id][p["name"]] = p["value"]
            self._plot_dirty = True
        elif e.kind == "progress":
            self.facts[job_id]["progress"] = p
        elif e.kind == "artifact" and "checkpoint" in (p.get("artifact_kind") or ""):
            self.facts[job_id].setdefault("checkpoints", []).append(p["name"])
        elif e.kind == "artifact":  # e.g. the validation predictions a figure reads
            self.query_one("#loss-plot", FigureView).reload()
        elif e.kind == "log":
            stamp = time.strftime("%H:%M:%S", time.localtime(e.ts))
            style = {"warning": "yellow", "error": "red"}.get(p.get("level", ""), "")
            self.query_one("#job-log", RichLog).write(Text(f"{stamp} {p['message']}", style=style))
        elif e.kind == "step":
            self.query_one("#job-log", RichLog).write(Text(f"── step {p['step']} ──", style="bold"))
        elif e.kind in ("finished", "failed", "cancelled", "interrupted"):
            text = f"job {e.kind}" + (f": {p['error']}" if p.get("error") else "")
            style = "green" if e.kind == "finished" else "red"
            self.query_one("#job-log", RichLog).write(Text(text, style=style))

    @work(thread=True, exclusive=True, group="training-load", exit_on_error=False)
    def load_job(self, job_id: str) -> None:
        # a resumed job continues the curve of the job(s) it resumed: replay their metrics first
        chain, job = [], self.jobs.get(job_id)
        while job is not None and job.resume_of and job.resume_of not in chain:
            chain.insert(0, job.resume_of)
            job = self.jobs.get(job.resume_of)
        events = [e for jid in chain for e in self.wb.store.events(jid, kinds=("metric", "artifact"))]
        events += self.wb.store.events(job_id)
        self.post_message(JobEventsLoaded(job_id, events))

    def on_job_events_loaded(self, message: JobEventsLoaded) -> None:
        job_id, events = message.job_id, message.events
        if job_id != self.selected:
            return
        self.series[job_id] = {}
        self.facts[job_id] = {}
        self.query_one("#job-log", RichLog).clear()
        for e in events:
            self._apply(e, job_id)
        own = [e.id for e in events if e.job_id == job_id]
        self._upto[job_id] = max(own, default=0)
        self._redraw_now()

    # -- drawing -------------------------------------------------------------------
    def _refresh_table(self) -> None:
        rows = []
        for j in reversed(list(self.jobs.values())):
            prog = current_progress(self.facts[j.id].get("progress"), j.current_step) if j.active else None
            if prog and prog.get("total"):
                pct = f"{100 * prog['done'] / prog['total']:.0f}%"
            elif j.active:
                pct = ""
            else:
                pct = time.strftime("%H:%M", time.localtime(j.ended)) if j.ended else "-"
            rows.append((j.id, j.state, j.analysis, j.current_step or "-", pct))
        table = self.query_one("#job-table", DataTable)
        if rows != self._table_rows:  # a poll with nothing new must cost nothing here
            self._table_rows = rows
            table.clear()
            for jid, state, analysis, step, pct in rows:
                mark, colour = STATE_MARK.get(state, ("?", ""))
                table.add_row(Text(mark, style=colour), analysis, step, pct, key=jid)
        if self.selected in self.jobs:
            row = table.get_row_index(self.selected)
            if table.cursor_row != row:
                table.move_cursor(row=row, animate=False)

    def _refresh_detail(self) -> None:
        job = self.jobs.get(self.selected or "")
        if job is None:
            return
        facts = self.facts[job.id]
        self.query_one("#loss-plot", FigureView).job_running = job.active  # "missing" means "not yet"
        mark, colour = STATE_MARK.get(job.state, ("?", ""))
        title = Text()
        title.append(f"{mark} ", style=colour)
        title.append(f"{job.analysis} · {job.current_step or '-'} · {job.state}", style="bold")
        prefix = f"{self.wb.session.name}-" if hasattr(self.wb, "session") else ""
        title.append(f"  {job.id.removeprefix(prefix)}", style="dim")  # the session is in the header
        self._set("#job-title", title)
        prog = (current_progress(facts.get("progress"), job.current_step) if job.active
                else facts.get("progress")) or {}
        bar = self.query_one("#job-progress", ProgressBar)
        if prog.get("total"):
            bar.update(total=prog["total"], progress=prog["done"])
        elif job.state == "finished":
            bar.update(total=1, progress=1)
        elif job.active:
            bar.update(total=None, progress=0)  # this step has no count yet
        parts = []
        if prog.get("total"):
            parts.append(f"{prog['done']}/{prog['total']}")
            if job.active:
                parts.append(f"ETA {fmt_eta(prog, time.time())}")
        elif job.active and prog.get("message"):
            parts.append(prog["message"])  # "starting": no count yet for this step
        if prog.get("rate"):
            parts.append(f"{prog['rate']:.1f} it/s")
        if prog.get("samples_per_s"):
            parts.append(f"{prog['samples_per_s']:.0f} samples/s")
        parts.append(f"device {job.device or '-'}")
        for key in ("train_loss", "val_loss", "val_corr", "gpu_mem_mib"):
            if key in facts:
                parts.append(f"{key} {facts[key]:.4g}")
        if facts.get("checkpoints"):
            parts.append(f"ckpt {facts['checkpoints'][-1]} ({len(facts['checkpoints'])})")
        if job.error:
            parts.append(f"error: {job.error}")
        self._set("#job-facts", Text(" · ".join(parts)))
        # the curve is redrawn at most once a second while events stream in, and not at all
        # while the pane is hidden: a job writing hundreds of events/s must not slow the keys
        if self._plot_dirty and self._shown() and time.monotonic() - self._plotted_at > 1.0:
            self._draw_plot()

    def _set(self, selector: str, text: Text) -> None:
        """Update a fixed-height line only when its text changed, without a layout pass: a
        layout of the whole screen on every poll made keys slow while a job streamed events."""
        old = self._texts.get(selector)
        if old != text:
            self._texts[selector] = text
            widget = self.query_one(selector, Static)
            w = max(1, widget.content_size.width)
            rows = lambda t: -(-len(t.plain) // w) if t is not None else -1  # noqa: E731
            # a layout pass only when the text may wrap onto another number of lines
            widget.update(text, layout=rows(old) != rows(text))

    def _shown(self) -> bool:
        try:
            return self.app.screen_stack[0].query_one("#panes").active == "training"
        except Exception:  # not inside the workbench's tabs (small test apps): always shown
            return True

    def _draw_plot(self) -> None:
        fv = self.query_one("#loss-plot", FigureView)
        job = self.jobs.get(self.selected or "")
        if job is not None and self._figure_for != (job.id, job.analysis):
            self._figure_for = (job.id, job.analysis)
            from engine import analyses

            try:
                views = analyses.get(job.analysis).views_for("training")
            except Exception:  # an analysis no longer registered: the loss curve still shows
                views = []
            fv.configure(self.wb.session.job_dir(job), views)  # the job's own folder
        elif fv.view_name == "loss":
            fv.redraw()
        self._plot_dirty = False
        self._plotted_at = time.monotonic()

    def _loss_plot(self, w: int, h: int):
        series = self.series.get(self.selected or "", {})
        loss = {k: v for k, v in series.items() if k in LOSS_METRICS}
        if loss:
            return line_plot(loss, w, h, ylog=self.log_scale, xlabel="step")
        # no loss: other metrics only where they form a curve -- an evaluate job's single values
        # drawn as "curves" gave one-step axes from -1 to 1 with two dots that looked like data
        curves = {k: v for k, v in series.items() if len(set(v[0])) >= 2}
        if series and not curves:
            names = ", ".join(safe_line(k) for k in list(series)[:3]) + (", ..." if len(series) > 3 else "")
            return Text(f"no curve: this job reported single values ({names}), not series over steps; "
                        "the log below and the Results pane show them", style="dim")
        return line_plot(dict(list(curves.items())[:2]), w, h, ylog=self.log_scale, xlabel="step")

    def _redraw_now(self) -> None:
        """The user asked for it (a new job, a resize, log scale): no throttling."""
        self._plot_dirty, self._plotted_at = True, 0.0
        self._refresh_detail()

    def on_resize(self) -> None:
        self.call_after_refresh(self._redraw_now)

    def on_show(self) -> None:
        # coming back to the pane redraws the curve only if it changed while hidden (a plot
        # costs ~30 ms: switching panes must not pay it for nothing)
        if self._plot_dirty:
            self.call_after_refresh(self._redraw_now)

    # -- interaction ---------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#job-table")
    def on_row(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key else None
        if key and key != self.selected:
            self.selected = key
            self.wb.save_ui(**{"training.job": key})
            self.load_job(key)

    def action_cancel(self) -> None:
        if self.selected:
            self.wb.cancel_job(self.selected)

    def action_resume(self) -> None:
        if self.selected:
            self.wb.resume_job(self.selected)

    def action_start(self) -> None:
        self.app.action_run_dialog()

    def action_next_view(self) -> None:
        self.query_one("#loss-plot", FigureView).cycle_view()

    def action_index(self, delta: int) -> None:
        self.query_one("#loss-plot", FigureView).step_index(delta)

    def action_toggle_log_scale(self) -> None:
        self.log_scale = not self.log_scale
        self._redraw_now()
