"""The Results pane's seeds view: one analysis over several seeds (engine.seed_sweep).

For each figure of the analysis's tables: mean ± std, min–max and n over the seeds that
have finished, redrawn as seeds end.  A table's models come first and its baselines and
ceiling after them, dimmed and named, as in the pane's tables; a failed seed is counted
and its error shown, and a NaN/inf (diverged) value is counted apart, never averaged in.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static
from textual.widgets.option_list import Option

from engine.seed_sweep import Sweep, driver_gone, runs
from engine.seed_table import FigureStats, SeedSummary, summarize
from engine.session import TableMeta

PREFIX = "sweep:"  # the table list's option ids of sweeps
ERRORS_SHOWN = 2  # failed seeds named in the title; the rest counted


def seeds_text(seeds: list[int]) -> str:
    """``0-4`` for a run of seeds, else ``0,3,7`` (at most 8, then ``…``)."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds[:8])) + (",…" if len(seeds) > 8 else "")


def sweep_option(sweep: Sweep) -> Option:
    return Option(f"{sweep.analysis} ×{len(sweep.seeds)} seeds", id=PREFIX + sweep.id)


def ordered(figures: list[FigureStats]) -> list[tuple[str, list[FigureStats]]]:
    """Figures by table, in order; in each, the models' rows before the baselines' and
    the ceiling's (a row's figures stay together)."""
    groups: dict[str, list[FigureStats]] = {}
    for f in figures:
        groups.setdefault(f.table, []).append(f)
    return [(name, sorted(fs, key=lambda f: f.role not in (None, "model"))) for name, fs in groups.items()]


def title(sweep: Sweep, summary: SeedSummary) -> Text:
    out = Text.assemble((f"{sweep.analysis} over seeds", "bold"), (f"  {sweep.id}", "dim"))
    out.append(f"\nseeds {seeds_text(sweep.seeds)}: {summary.finished} finished")
    out.append(f" · {summary.failed} failed", "bold red" if summary.failed else "dim")
    if summary.waiting:
        out.append(f" · {summary.waiting} to come", "dim")
    not_started = sum(st == "pending" for st in summary.states.values())
    if not_started and "cancelled" in summary.states.values():
        out.append(f"\nstopped: a seed was cancelled; {not_started} will not start", "yellow")
    elif driver_gone(sweep):
        out.append(f"\nits driver ended (a reboot, a kill): {not_started} seeds will not start", "yellow")
    if not summary.figures:
        out.append("  — no seed has finished yet" if summary.waiting else "  — no figure", "dim")
    for seed, error in list(summary.errors.items())[:ERRORS_SHOWN]:
        out.append(f"\n✗ seed {seed}: {error}", "red")
    if len(summary.errors) > ERRORS_SHOWN:
        out.append(f"  (+{len(summary.errors) - ERRORS_SHOWN} more failed)", "red")
    return out


def nan_word(f: FigureStats, metas: dict[str, TableMeta]) -> str:
    """What a seed's NaN in this figure is, as its table states it ("diverged", "n/a");
    "NaN" where the table was stored without metadata or the column is not a score."""
    meta = metas.get(f.table)
    score = meta.score(f.column) if meta is not None else None
    return score.nan if score is not None else "NaN"


def n_text(f: FigureStats, nan: str = "NaN") -> Text:
    if not f.nonfinite:
        return Text(str(f.n))
    return Text(str(f.n)) + Text(f" +{f.nonfinite} {nan}", "dim" if nan == "n/a" else "red")


class SeedsView(Vertical):
    """A sweep's title and its figures over the seeds (the pane passes what it has read)."""

    DEFAULT_CSS = """
    SeedsView { height: 1fr; }
    SeedsView #seeds-title { height: auto; }
    SeedsView #seeds-table { height: 1fr; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.summary: SeedSummary | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="seeds-title")  # not .title: that is one line high
        yield DataTable(id="seeds-table", zebra_stripes=True, cursor_type="row")

    def show(self, sweep: Sweep, store, jobs: list, tables: list[dict]) -> None:
        """Redraw from the poll's jobs and the pane's tables (nothing read here)."""
        self.summary = summarize(runs(store, sweep, jobs, tables))
        # each table's metadata as its newest run stored it (a seed's tables share it)
        metas = {t["name"]: t["meta"] for t in tables if t.get("meta") is not None}
        self.query_one("#seeds-title", Static).update(title(sweep, self.summary))
        table = self.query_one("#seeds-table", DataTable)
        table.clear(columns=True)
        for name in ("figure", "mean ± std", "n", "min–max"):  # n before the range: 80 columns
            table.add_column(name, key=name)
        for group, figures in ordered(self.summary.figures):
            table.add_row(Text(group, "bold"), "", "", "", key=f"table:{group}")
            for f in figures:
                model = f.role in (None, "model")
                label = " · ".join(p for p in (f.row, f.column) if p) + ("" if model else f" ({f.role})")
                style = "" if model else "dim"
                table.add_row(Text("  " + label, style), Text(f.mean_text(), style or "bold"), n_text(f, nan_word(f, metas)),
                              Text(f.range_text(), "dim"), key=f.label)
