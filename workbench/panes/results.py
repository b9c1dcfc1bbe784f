"""Results pane: metric tables from the session (rows models, columns overall + cells),
best value per column highlighted, sortable, two runs side by side, export to CSV /
Markdown / LaTeX; below the table a bar chart of the overall column or one of the
analysis's figures (predicted-vs-target traces, rasters, MEIs...), cycled with ``v``.
A seed sweep in the list shows mean ± spread per figure instead (seeds_view.py)."""

from __future__ import annotations

import math

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from workbench.messages import StoreUpdate, TablesLoaded
from workbench.panes.base import StorePane
from workbench.panes.results_table import Marks, nan_text, prepare_table, score_of
from workbench.panes.seeds_view import SeedsView, sweep_option
from workbench.widgets.figure_view import FigureView
from workbench.widgets.plot import bar_plot


def safe_stem(name: str) -> str:
    """A file name from a table name: ``retina MAE-2`` -> ``retina_MAE-2``."""
    import re

    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "table"


class ResultsPane(StorePane):
    BINDINGS = [
        Binding("s", "sort", "Sort by column"),
        Binding("e", "export", "Export csv/md/tex"),
        Binding("left_square_bracket", "older", "Older run"),
        Binding("right_square_bracket", "newer", "Newer run"),
        Binding("c", "compare", "Compare with the run before"),
        Binding("v", "next_view", "Next figure"),
        Binding("n", "index(1)", "Next cell/trial/neuron"),
        Binding("p", "index(-1)", "Previous cell/trial/neuron"),
        Binding("m", "option", "Next model"),
        Binding("z", "zoom", "Figure full height"),
    ]
    DEFAULT_CSS = """
    ResultsPane #table-list { height: 1fr; }

    ResultsPane #tables-row { height: auto; max-height: 12; }
    ResultsPane #result-table { height: auto; max-height: 12; width: 1fr; }
    ResultsPane #compare-table { height: auto; max-height: 12; width: 1fr; display: none; }
    ResultsPane.comparing #compare-table { display: block; }
    ResultsPane.zoomed #tables-row { display: none; }
    ResultsPane #result-bars { height: 1fr; min-height: 6; }
    ResultsPane #seeds-view { display: none; }
    ResultsPane.seeds #seeds-view { display: block; }
    ResultsPane.seeds #result-title, ResultsPane.seeds #tables-row, ResultsPane.seeds #result-bars { display: none; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.tables: list[dict] = []
        self.name_shown: str | None = None
        self.run_offset = 0  # 0 = newest run of this table, 1 = the one before...
        self._sort_desc = False
        self._sorted: str | None = None  # the column sorted by, shown with ▲/▼
        self.hidden_columns: list[str] = []  # columns left out because they do not fit
        self._tables_max = -1
        self._raw: list[dict] = []  # the tables as stored, for the seeds view
        self.sweeps: dict = {}  # option id -> engine.seed_sweep.Sweep
        self._jobs_seen: tuple = ()  # (id, state) of the last poll: a seed ended or started
        self.comparing = False
        self._analysis: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-split"):
            with Vertical(classes="side"):
                yield Static("Tables", classes="title")
                yield OptionList(id="table-list")
            with Vertical(classes="main"):
                yield Static("no results yet — run an analysis's evaluate step", id="result-title",
                             classes="title")
                with Horizontal(id="tables-row"):
                    yield DataTable(id="result-table", zebra_stripes=True)
                    yield DataTable(id="compare-table", zebra_stripes=True)
                yield FigureView(builtin=("bars", self._bars), id="result-bars", classes="plot")
                yield SeedsView(id="seeds-view")

    def on_mount(self) -> None:
        ui = self.wb.session.ui()
        self.name_shown = ui.get("results.table")
        self._figure_state = ui.get("results.figure") or {}

    def store_update(self, msg: StoreUpdate) -> None:
        jobs = tuple((j.id, j.state) for j in msg.jobs)
        if msg.tables_max_id != self._tables_max or jobs != self._jobs_seen:
            # a new job may be a seed of a new sweep; a job's end changes a sweep's figures
            self._tables_max, self._jobs_seen = msg.tables_max_id, jobs
            self.load_tables()

    @work(thread=True, exclusive=True, group="results-load", exit_on_error=False)
    def load_tables(self) -> None:
        from engine.seed_sweep import sweeps

        tables, found = self.wb.store.tables(), sweeps(self.wb.store)
        self.post_message(TablesLoaded(tables, found))

    def on_tables_loaded(self, message: TablesLoaded) -> None:
        self._set_tables(message.tables, message.sweeps)

    def _set_tables(self, tables: list[dict], sweeps: list | None = None) -> None:
        self.tables, self._raw = [prepare_table(t) for t in tables], tables
        self.sweeps = {sweep_option(s).id: s for s in reversed(sweeps or [])}  # newest first
        names = list(dict.fromkeys(t["name"] for t in reversed(tables)))
        lst = self.query_one("#table-list", OptionList)
        lst.clear_options()
        for n in names:
            runs = sum(t["name"] == n for t in tables)
            lst.add_option(Option(f"{n} ({runs})" if runs > 1 else n, id=n))
        lst.add_options([sweep_option(s) for s in self.sweeps.values()])
        names += list(self.sweeps)
        if names and self.name_shown not in names:
            self.name_shown = names[0]
        if self.name_shown in names:
            lst.highlighted = names.index(self.name_shown)
        self._draw()

    def _runs(self) -> list[dict]:
        return [t for t in reversed(self.tables) if t["name"] == self.name_shown]

    def current(self) -> dict | None:
        runs = self._runs()
        if not runs:
            return None
        self.run_offset = min(self.run_offset, len(runs) - 1)
        return runs[self.run_offset]

    def _draw(self) -> None:
        sweep = self.sweeps.get(self.name_shown)
        self.set_class(sweep is not None, "seeds")
        if sweep is not None:
            self.query_one(SeedsView).show(sweep, self.wb.store, self.wb.last_jobs, self._raw)
            return
        entry = self.current()
        table = self.query_one("#result-table", DataTable)
        if entry is None:
            table.clear(columns=True)
            return
        runs = len(self._runs())
        title = Text.assemble((entry["name"], "bold"),
                              (f"  run {runs - self.run_offset}/{runs} · job {entry['job_id'] or '-'}", "dim"))
        self._fill(table, entry)
        marks: Marks = entry.get("marks") or Marks()
        if marks.rank_by:
            title.append(f"\nranked by {marks.rank_by}" + (f"; best model {marks.best} ★" if marks.best else "")
                         + ("; ✗ MAE worse than predicting zero" if marks.worse else ""), "dim")
        if self.hidden_columns:  # never a cut number: whole columns, and say what is left out
            title.append(f"  +{len(self.hidden_columns)} col (e exports all)", "dim")
        before = self._runs()[self.run_offset + 1] if self.run_offset + 1 < runs else None
        self.set_class(self.comparing and before is not None, "comparing")
        if self.comparing and before is not None:
            self._fill(self.query_one("#compare-table", DataTable), before)
            title.append(f"  ◂ vs run {runs - self.run_offset - 1}", "dim")
        self.query_one("#result-title", Static).update(title)
        self._configure_figure(entry)

    def _fill(self, table: DataTable, entry: dict) -> None:
        table.clear(columns=True)
        self._sorted = None
        frame = entry["frame"]
        cells = self._cells(entry)
        # the columns that fit whole in the table's width, in order (no `mae:c`, no `6.224e`)
        room = table.size.width or self.size.width or 10**6
        widths = [max([len(str(c)) for c in [name, *col]] or [1]) + 2
                  for name, col in zip(["model", *map(str, frame.columns)], zip(*cells) if cells else [])]
        keep, used = 0, 0
        for w in widths:
            if keep and used + w > room:
                break
            used += w
            keep += 1
        keep = max(keep, 1) if cells else len(frame.columns) + 1
        shown = ["model", *map(str, frame.columns)][:keep]
        self.hidden_columns = [str(c) for c in frame.columns][keep - 1:]
        for name in shown:
            table.add_column(name, key=name)
        for idx, row in zip(frame.index, cells):
            table.add_row(*row[:keep], key=str(idx))

    def on_resize(self) -> None:
        # the columns that fit change with the width: refill once the new size is laid out
        self.call_after_refresh(self._draw)

    def _cells(self, entry: dict) -> list[list[Text]]:
        """Each row's cells as drawn: the best value per column marked (* and colour)."""
        frame = entry["frame"]
        rows: list[list[Text]] = []
        marks: Marks = entry.get("marks") or Marks()
        roles = marks.role
        # the best value among the models only: a baseline or the ceiling is never "best"
        ranked = frame if roles is None else frame[[roles.get(str(i)) == "model" for i in frame.index]]
        best = {}
        for col in frame.columns:
            values = ranked[col]
            numeric = values[values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                                        and math.isfinite(v))]
            score = score_of(entry, str(col))  # the table's metadata, else its names
            if len(numeric) and score is not None:
                best[col] = numeric.max() if score.higher else numeric.min()
        for idx, row in frame.iterrows():
            label = str(idx) + (" ★" if str(idx) == marks.best else "") \
                + (" ✗" if str(idx) in marks.worse else "")
            role = None if roles is None else roles.get(str(idx))
            cells = [Text(label, style="bold" if role in (None, "model") else "dim")]
            for col in frame.columns:
                v = row[col]
                if isinstance(v, (bool,)) or not isinstance(v, (int, float)):
                    cells.append(Text(str(v)))
                elif v != v:  # NaN: "diverged" only where the row or the table says so
                    said = nan_text(entry, str(idx), str(col))  # (a constant row has no corr: n/a)
                    cells.append(Text(said, style="red" if said == "diverged" else "dim"))
                elif not math.isfinite(v):
                    cells.append(Text("inf", style="red"))
                else:
                    # a mark as well as a colour: the best value must read without colour (NO_COLOR)
                    is_best = col in best and v == best[col]
                    cells.append(Text(f"{v:.4g}" + ("*" if is_best else ""), style="bold green" if is_best else ""))
            rows.append(cells)
        return rows

    def _analysis_of(self, entry: dict) -> str | None:
        # the jobs of the latest poll: no store read on the UI thread for each redraw
        job = next((j for j in self.wb.last_jobs if j.id == entry.get("job_id")), None)
        if job is not None:
            return job.analysis
        return entry["name"].split()[0] if entry["name"] else None  # the job was deleted

    def _configure_figure(self, entry: dict) -> None:
        from engine import analyses

        fv = self.query_one("#result-bars", FigureView)
        name = self._analysis_of(entry)
        try:
            views = analyses.get(name).views_for("results") if name else []
        except Exception:
            views = []
        # the figures of the job that made this table, from that job's own folder
        job = next((j for j in self.wb.last_jobs if j.id == entry.get("job_id")), None)
        workdir = self.wb.session.job_dir(job) if job else (self.wb.session.artifacts / name if name else None)
        fv.configure(workdir, views, self._figure_state if name != self._analysis else None)
        self._analysis = name

    def _bars(self, w: int, h: int):
        entry = self.current()
        if entry is None:
            return ""
        frame = entry["frame"]
        col = "overall" if "overall" in frame.columns else next(
            (c for c in frame.columns if frame[c].dtype.kind == "f"), None)
        if col is None:
            return ""
        series = frame[col].astype(float)
        series = series[series.map(math.isfinite)]
        return bar_plot([str(i) for i in series.index], list(series.values), w, h,
                        title=f"{col} {entry['name']}")

    @on(OptionList.OptionHighlighted, "#table-list")
    def on_pick(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id != self.name_shown:
            self.name_shown = event.option.id
            self.run_offset = 0
            self.wb.save_ui(**{"results.table": self.name_shown})
            self._draw()

    @on(FigureView.Changed)
    def _figure_changed(self, event: FigureView.Changed) -> None:
        self._figure_state = event.state
        self.wb.save_ui(**{"results.figure": event.state})

    def action_next_view(self) -> None:
        self.query_one("#result-bars", FigureView).cycle_view()

    def action_index(self, delta: int) -> None:
        self.query_one("#result-bars", FigureView).step_index(delta)

    def action_option(self) -> None:
        self.query_one("#result-bars", FigureView).cycle_option()

    def action_zoom(self) -> None:
        self.toggle_class("zoomed")  # at 80x24 a raster or an MEI needs the table's rows

    def action_compare(self) -> None:
        if len(self._runs()) < 2:
            self.app.notify("only one run of this table: nothing to compare")
            return
        self.comparing = not self.comparing
        self._draw()

    def action_sort(self) -> None:
        """Sort by the cursor's column; on the model column, by the first metric (the headline),
        best first; again reverses.  The header shows ▲/▼."""
        table = self.query_one("#result-table", DataTable)
        if not table.columns:
            return
        keys = list(table.columns.keys())
        col = keys[table.cursor_column]
        if col.value == "model" and len(keys) > 1:
            entry = self.current()
            frame = entry["frame"] if entry else None
            metric = next((k for k in keys[1:] if frame is not None and k.value in map(str, frame.columns)
                           and frame[next(c for c in frame.columns if str(c) == k.value)].dtype.kind in "fi"),
                          keys[1])
            col = metric

        def key(cell):
            try:
                return float(cell.plain.rstrip("*"))
            except (ValueError, AttributeError):
                return math.inf
        if self._sorted == col.value:
            self._sort_desc = not self._sort_desc
        else:  # a new column: best first
            score = score_of(self.current() or {}, str(col.value))
            self._sort_desc = score is not None and score.higher
        table.sort(col, key=key, reverse=self._sort_desc)
        for k, column in table.columns.items():  # the sort indicator on that column only
            column.label = Text(str(k.value) + ((" ▼" if self._sort_desc else " ▲") if k == col else ""))
        self._sorted = col.value
        table.refresh()

    def action_older(self) -> None:
        if self.run_offset + 1 < len(self._runs()):
            self.run_offset += 1
            self._draw()

    def action_newer(self) -> None:
        if self.run_offset > 0:
            self.run_offset -= 1
            self._draw()

    def action_export(self) -> None:
        entry = self.current()
        if entry is None or self.wb.readonly:
            self.app.notify("nothing to export" if entry is None else "read-only session")
            return
        from engine.atomic import write_text
        from engine.table_export import to_latex, to_markdown

        out = self.wb.session.artifacts / "exports"
        stem = safe_stem(f"{entry['name']}-{entry['id']}")  # no spaces: easy to use from a shell
        frame = entry.get("stored", entry["frame"])  # the table as stored: every column, marks too
        write_text(out / f"{stem}.csv", frame.to_csv())
        write_text(out / f"{stem}.md", to_markdown(frame))
        write_text(out / f"{stem}.tex", to_latex(frame))
        self.app.notify(f"wrote {out}/{stem}.csv/.md/.tex")

