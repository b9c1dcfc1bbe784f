"""Results pane: metric tables from the session (rows models, columns overall + cells),
best value per column highlighted, sortable, a bar chart of the overall column,
export to CSV / Markdown / LaTeX."""

from __future__ import annotations

import math

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from workbench.messages import StoreUpdate
from workbench.panes.base import StorePane
from workbench.widgets.plot import bar_plot

HIGHER_IS_BETTER = ("corr", "fev", "r2", "bps", "bits", "accuracy")


def higher_is_better(table_name: str, column: str) -> bool:
    name = f"{table_name} {column}".lower()
    return any(k in name for k in HIGHER_IS_BETTER)


class ResultsPane(StorePane):
    BINDINGS = [
        Binding("s", "sort", "Sort by column"),
        Binding("e", "export", "Export csv/md/tex"),
        Binding("left_square_bracket", "older", "Older run"),
        Binding("right_square_bracket", "newer", "Newer run"),
    ]
    DEFAULT_CSS = """
    ResultsPane #table-list { height: 1fr; }
    ResultsPane #result-table { height: auto; max-height: 12; }
    ResultsPane #result-bars { height: 1fr; min-height: 6; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.tables: list[dict] = []
        self.name_shown: str | None = None
        self.run_offset = 0  # 0 = newest run of this table, 1 = the one before...
        self._sort_desc = False
        self._tables_max = -1

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-split"):
            with Vertical(classes="side"):
                yield Static("Tables", classes="title")
                yield OptionList(id="table-list")
            with Vertical(classes="main"):
                yield Static("no results yet — run an analysis's evaluate step", id="result-title",
                             classes="title")
                yield DataTable(id="result-table", zebra_stripes=True)
                yield Static("", id="result-bars", classes="plot")

    def on_mount(self) -> None:
        self.name_shown = self.wb.session.ui().get("results.table")

    def store_update(self, msg: StoreUpdate) -> None:
        if msg.tables_max_id != self._tables_max:
            self._tables_max = msg.tables_max_id
            self.load_tables()

    @work(thread=True, exclusive=True, group="results-load", exit_on_error=False)
    def load_tables(self) -> None:
        tables = self.wb.store.tables()
        self.app.call_from_thread(self._set_tables, tables)

    def _set_tables(self, tables: list[dict]) -> None:
        self.tables = tables
        names = list(dict.fromkeys(t["name"] for t in reversed(tables)))
        lst = self.query_one("#table-list", OptionList)
        lst.clear_options()
        for n in names:
            runs = sum(t["name"] == n for t in tables)
            lst.add_option(Option(f"{n} ({runs})" if runs > 1 else n, id=n))
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
        entry = self.current()
        table = self.query_one("#result-table", DataTable)
        table.clear(columns=True)
        if entry is None:
            return
        frame = entry["frame"]
        runs = len(self._runs())
        self.query_one("#result-title", Static).update(
            Text.assemble((entry["name"], "bold"),
                          (f"  run {runs - self.run_offset}/{runs} · job {entry['job_id'] or '-'}", "dim")))
        table.add_column("model", key="model")
        for col in frame.columns:
            table.add_column(str(col), key=str(col))
        best = {}
        for col in frame.columns:
            values = frame[col]
            numeric = values[values.map(lambda v: isinstance(v, (int, float)) and math.isfinite(v))]
            if len(numeric):
                best[col] = numeric.max() if higher_is_better(entry["name"], str(col)) else numeric.min()
        for idx, row in frame.iterrows():
            cells = [Text(str(idx), style="bold")]
            for col in frame.columns:
                v = row[col]
                if isinstance(v, (bool,)) or not isinstance(v, (int, float)):
                    cells.append(Text(str(v)))
                elif not math.isfinite(v):
                    cells.append(Text("diverged" if v != v else "inf", style="red"))
                else:
                    style = "bold green" if col in best and v == best[col] else ""
                    cells.append(Text(f"{v:.4g}", style=style))
            table.add_row(*cells, key=str(idx))
        self._draw_bars(entry)

    def _draw_bars(self, entry: dict) -> None:
        frame = entry["frame"]
        col = "overall" if "overall" in frame.columns else next(
            (c for c in frame.columns if frame[c].dtype.kind == "f"), None)
        bars = self.query_one("#result-bars", Static)
        if col is None:
            bars.update("")
            return
        series = frame[col].astype(float)
        series = series[series.map(math.isfinite)]
        w, h = bars.size.width or 60, bars.size.height or 8
        bars.update(bar_plot([str(i) for i in series.index], list(series.values), w, h,
                             title=f"{col} {entry['name']}"))

    @on(OptionList.OptionHighlighted, "#table-list")
    def on_pick(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id != self.name_shown:
            self.name_shown = event.option.id
            self.run_offset = 0
            self.wb.save_ui(**{"results.table": self.name_shown})
            self._draw()

    def on_resize(self) -> None:
        entry = self.current()
        if entry is not None:
            self.call_after_refresh(self._draw_bars, entry)

    def action_sort(self) -> None:
        table = self.query_one("#result-table", DataTable)
        if not table.columns:
            return
        col = list(table.columns.keys())[table.cursor_column]

        def key(cell):
            try:
                return float(cell.plain)
            except (ValueError, AttributeError):
                return math.inf
        self._sort_desc = not self._sort_desc
        table.sort(col, key=key, reverse=self._sort_desc)

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
        stem = f"{entry['name']}-{entry['id']}"
        frame = entry["frame"]
        write_text(out / f"{stem}.csv", frame.to_csv())
        write_text(out / f"{stem}.md", to_markdown(frame))
        write_text(out / f"{stem}.tex", to_latex(frame))
        self.app.notify(f"wrote {out}/{stem}.csv/.md/.tex")

