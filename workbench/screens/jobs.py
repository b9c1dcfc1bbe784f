"""The jobs screen (`j`): every job of the session with state, progress, ETA, device and
GPU memory/utilisation; cancel, resume, delete and start from here (nvitop-like: dense, calm).

It draws what the app's store poll and device probe already fetched (``app.last_jobs``,
``app.last_progress``, ``app.gpus``), so opening it costs no query.  Below 160 columns the
details sit under the table; wider, beside it.  States carry a symbol as well as a colour
(readable with NO_COLOR).
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from engine.session import END_STATES, Job
from engine.text import safe_line, safe_text
from workbench.format import current_progress, fmt_duration, fmt_eta
from workbench.widgets.footer import WorkbenchFooter

STATE_MARK = {"queued": ("…", "yellow"), "running": ("●", "green"), "finished": ("✓", "green"),
              "failed": ("✗", "red"), "cancelled": ("■", "yellow"), "interrupted": ("!", "red")}
WIDE = 160  # columns from which the details move beside the table
MID = 100   # columns from which the device has a column of its own
BAR = 10


def _now() -> float:  # patched by snapshot tests for a fixed clock
    return time.time()


def progress_bar(frac: float, width: int = BAR) -> str:
    """``█████▌    `` — eighths of a cell, so 80x24 still shows movement."""
    frac = min(max(frac, 0.0), 1.0)
    eighths = round(frac * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")).ljust(width)


def job_gpu(job: Job, gpus: list[dict]) -> tuple[str, str]:
    """(memory, utilisation) of the GPU(s) the job's process uses, from nvidia-smi's process list."""
    if not job.active or not job.pid:
        return "", ""
    mem, utils = 0.0, []
    for g in gpus:
        if job.pid in g.get("procs", {}):
            mem += g["procs"][job.pid]
            utils.append(f"{g['util']:.0f}%")
    if not utils:
        return "", ""
    return f"{mem / 1024:.1f} GiB", "/".join(utils)


class JobsScreen(Screen):
    BINDINGS = [
        Binding("c", "cancel", "Cancel", id="jobs.cancel"),
        Binding("R", "resume", "Resume", id="jobs.resume"),
        Binding("d", "delete", "Delete", id="jobs.delete"),
        Binding("s", "start", "Start…", id="jobs.start"),
        Binding("escape", "app.pop_screen", "Back"),
    ]
    DEFAULT_CSS = """
    JobsScreen #jobs-body { layout: vertical; height: 1fr; }
    JobsScreen #jobs-table { height: 1fr; }
    JobsScreen #job-detail { height: 6; border-top: hkey $panel-lighten-2; padding: 0 1; }
    JobsScreen.-wide #jobs-body { layout: horizontal; }
    JobsScreen.-wide #job-detail { height: 1fr; width: 56; border-top: none;
        border-left: vkey $panel-lighten-2; }
    JobsScreen #jobs-head { height: 1; padding: 0 1; }
    JobsScreen #jobs-gpus { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__(id="jobs-screen")
        self._sig: object = None
        self._wide: bool | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="jobs-head")
        yield Static(id="jobs-gpus")
        with Container(id="jobs-body"):
            yield DataTable(id="jobs-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="job-detail")
        yield WorkbenchFooter()

    def on_mount(self) -> None:
        self.query_one("#jobs-table").focus()
        self.redraw()

    def on_screen_resume(self) -> None:
        # shown again (it is kept between visits): what changed meanwhile, at the current size
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    # -- data ------------------------------------------------------------------------
    @property
    def jobs(self) -> list[Job]:
        return list(reversed(getattr(self.app, "last_jobs", [])))  # newest first

    def selected(self) -> Job | None:
        table = self.query_one("#jobs-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((j for j in self.jobs if j.id == key), None)

    def redraw(self) -> None:
        """Rebuild the table when anything shown changed (cursor kept on the same job)."""
        if not self.is_attached:
            return
        app = self.app
        wide = self.size.width >= WIDE
        self.set_class(wide, "-wide")
        jobs, progress, gpus = self.jobs, getattr(app, "last_progress", {}), getattr(app, "gpus", [])
        now = _now()
        running = sum(j.active for j in jobs)
        ended = sum(j.state in END_STATES for j in jobs)
        self.query_one("#jobs-head", Static).update(Text.assemble(
            ("Jobs", "bold"), f" · session {app.session.name} · ", (f"{running} running", "bold"),
            f" · {ended} ended · {len(jobs)} in all",
            ("  (read-only)", "yellow") if getattr(app, "readonly", False) else ""))
        self.query_one("#jobs-gpus", Static).update(self._gpu_text(gpus))
        rows = [self._row(j, progress.get(j.id), gpus, now, wide) for j in jobs]
        shown = {j.id: tuple(map(str, r)) for j, r in zip(jobs, rows)}
        layout = (wide, self.size.width, bool(gpus), tuple(shown))
        if self._sig is None or self._sig[0] != layout:
            self._fill(jobs, rows, wide)  # new jobs, new order or new width: rebuild
        else:  # the same jobs: touch only the cells that changed (a 200-job session stays cheap)
            table = self.query_one("#jobs-table", DataTable)
            cols = list(table.columns)
            for j, r in zip(jobs, rows):
                old = self._sig[1].get(j.id, ())
                for c, (col, value) in enumerate(zip(cols, r)):
                    if c >= len(old) or old[c] != str(value):
                        table.update_cell(j.id, col, value, update_width=True)
        self._sig = (layout, shown)
        self._detail()

    def _gpu_text(self, gpus: list[dict]) -> Text:
        if not gpus:
            dev = getattr(getattr(self.app, "status", None), "device", "") or "no GPU seen"
            return Text(f"device: {dev}")
        t = Text()
        for g in gpus:
            frac = g["mem_used"] / g["mem_total"] if g["mem_total"] else 0.0
            t.append(f"GPU{g.get('index', 0)} {g['name']}  mem {progress_bar(frac, 8)} "
                     f"{g['mem_used'] / 1024:.1f}/{g['mem_total'] / 1024:.0f} GiB  "
                     f"util {progress_bar(g['util'] / 100, 8)} {g['util']:.0f}%\n")
        t.rstrip()
        return t

    def _row(self, j: Job, p: dict | None, gpus: list[dict], now: float, wide: bool) -> list:
        mark, colour = STATE_MARK.get(j.state, ("?", ""))
        state = Text(f"{mark} {j.state}", style=colour)
        p = current_progress(p, j.current_step) if j.active else p
        if p and p.get("total"):
            frac = p["done"] / p["total"]
            prog = f"{progress_bar(frac, BAR if wide else 5)} {100 * frac:3.0f}%"
            eta = fmt_eta(p, now) if j.active else ""
        else:
            prog = "done" if j.state == "finished" else ""
            eta = ""
        end = j.ended if j.ended else (now if j.active else None)
        took = fmt_duration(end - j.started) if j.started and end else ""
        mem, util = job_gpu(j, gpus)
        prefix = f"{self.app.session.name}-"  # the session is in the head line; details show it all
        jid = j.id[len(prefix):] if j.id.startswith(prefix) else j.id
        if not wide:  # 80 columns: the id's random tail tells jobs apart; details show it all
            jid = jid.rsplit("-", 1)[-1]
        step = j.current_step or (j.steps[0] if len(j.steps) == 1 else f"{len(j.steps)} steps")
        if wide:
            room = max(12, self.size.width - 56 - 102)  # the table never scrolls sideways
            err = j.error or ""
            err = Text(err if len(err) <= room else err[:room - 1] + "…", style="red")
            return [state, jid, j.analysis, step, prog, eta, took, j.device or "", mem, util, err]
        row = [state, jid, j.analysis, step, prog, eta]
        if self.size.width >= MID:  # the device is in the details below otherwise
            row.append(j.device or "")
        return row + ([mem] if gpus else [])

    def _fill(self, jobs: list[Job], rows: list[list], wide: bool) -> None:
        table = self.query_one("#jobs-table", DataTable)
        keep = self.selected()
        table.clear(columns=True)
        cols = ["state", "job", "analysis", "step", "progress", "ETA", "took", "device", "GPU mem",
                "GPU util", "error"] if wide else ["state", "job", "analysis", "step", "progress", "ETA"]
        if not wide:  # columns that fit whole at this width (no "GPU m" header)
            cols += ["device"] if self.size.width >= MID else []
            cols += ["GPU mem"] if getattr(self.app, "gpus", []) else []
        for c in cols:
            table.add_column(c, key=c)
        for j, r in zip(jobs, rows):
            table.add_row(*r, key=j.id)
        if keep is not None and keep.id in {j.id for j in jobs}:
            table.move_cursor(row=table.get_row_index(keep.id))
        if not jobs:
            table.add_row(Text("no jobs yet: s starts one", style="dim"), *[""] * (len(cols) - 1),
                          key="-none-")

    def _detail(self) -> None:
        j = self.selected()
        box = self.query_one("#job-detail", Static)
        if j is None:
            box.update(Text("no job selected", style="dim"))
            return
        t = Text()
        t.append(f"{j.id}\n", style="bold")
        t.append(safe_text(f"{j.analysis}: {', '.join(map(str, j.steps))}\n"))
        params = safe_line(", ".join(f"{k}={v}" for k, v in sorted(j.params.items())))  # as the session holds them
        if params:
            t.append(f"params {params}\n", style="dim")
        where = [f"pid {j.pid}" if j.pid else "", j.host or "", j.device or ""]
        t.append(" · ".join(w for w in where if w) + ("\n" if any(where) else ""))
        if j.resume_of:
            t.append(f"resumes {j.resume_of}\n", style="dim")
        if j.error:
            t.append(f"✗ {j.error}\n", style="red")
        hint = ("c cancels" if j.active else
                "R resumes · d deletes" if j.state != "finished" else "d deletes")
        t.append(hint, style="dim italic")
        box.update(t)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    # -- actions -------------------------------------------------------------------------
    def action_cancel(self) -> None:
        j = self.selected()
        if j is None or not j.active:
            self.app.notify("select a running job to cancel", severity="warning")
            return
        self.app.cancel_job(j.id)

    def action_resume(self) -> None:
        j = self.selected()
        if j is None or j.active or j.state == "finished":
            self.app.notify("select a failed, cancelled or interrupted job to resume",
                            severity="warning")
            return
        self.app.resume_job(j.id)

    def action_delete(self) -> None:
        j = self.selected()
        if j is not None:
            self.app.ask_delete_job(j.id)

    def action_start(self) -> None:
        self.app.action_run_dialog()
