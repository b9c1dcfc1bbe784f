"""Mean and spread of an analysis's figures over seeds (issue 18); pure, no session.

A *figure* is one number a seed's job produced: a cell of a table it saved (a row, such
as a model or a baseline, and a summary column; per-cell ``metric:cell`` columns and the
marks columns are left out), or a number its steps returned (table ``result``).

Over the seeds whose job finished: mean, sample std (``ddof=1``; NaN for fewer than two
values), min, max and ``n``, all over the finite values only.  A finished seed whose value
is NaN or inf (a diverged fit) is counted in ``nonfinite`` and never averaged in; a seed
whose job failed is counted in :attr:`SeedSummary.failed`, with its error, never dropped.
"""

from __future__ import annotations

import math
import numbers
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Columns a table carries to say how to read it (engine/analyses/retina/scoring.py writes
# them); they are marks, not figures.  The Results pane shows them as marks too.
MARK_COLUMNS = ("best", "rank_by", "worse_than_zeros", "diverged")
RESULT_TABLE = "result"  # the numbers a seed's steps returned
ENDED_BADLY = ("failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class SeedRun:
    """One seed of a sweep as the store has it now."""

    seed: int
    job_id: str | None  # None: not submitted yet
    state: str  # "pending" (no job yet), or the job's state
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)  # table name -> DataFrame (the job's newest)


@dataclass(frozen=True)
class FigureStats:
    """One figure over the finished seeds."""

    table: str
    row: str | None  # None: a number the steps returned
    column: str
    role: str | None  # "model", "baseline", "ceiling"... when the table says
    values: dict[int, float]  # seed -> value, NaN/inf included
    mean: float
    std: float
    min: float
    max: float
    n: int  # finite values
    nonfinite: int  # finished seeds whose value is NaN or inf

    @property
    def label(self) -> str:
        return " · ".join(p for p in (self.table, self.row, self.column) if p is not None)

    def mean_text(self) -> str:
        """``0.2 ± 0.1``; ``n/a`` without a finite value; no ``±`` from one value."""
        if not self.n:
            return "n/a"
        return f"{self.mean:.4g}" + (f" ± {self.std:.2g}" if self.n > 1 else "")

    def range_text(self) -> str:
        return f"{self.min:.3g}–{self.max:.3g}" if self.n > 1 else ""

    def text(self) -> str:
        """One line for a terminal: mean ± std  (min–max)  n=3, and what did not count."""
        extra = f"  {self.nonfinite} NaN/inf" if self.nonfinite else ""
        spread = f"  ({self.range_text()})" if self.range_text() else ""
        return f"{self.mean_text()}{spread}  n={self.n}{extra}"


@dataclass(frozen=True)
class SeedSummary:
    """Every figure of a sweep, and where each seed stands."""

    seeds: list[int]
    figures: list[FigureStats]
    states: dict[int, str]
    errors: dict[int, str]  # seed -> the one-line error of a job that ended badly

    def count(self, *states: str) -> int:
        return sum(s in states for s in self.states.values())

    @property
    def finished(self) -> int:
        return self.count("finished")

    @property
    def failed(self) -> int:
        return self.count(*ENDED_BADLY)

    @property
    def waiting(self) -> int:
        """Seeds still to come: not submitted, queued or running."""
        return len(self.seeds) - self.finished - self.failed

    def to_frame(self) -> pd.DataFrame:
        """The table saved in the session: a row per figure; role, mean, std, min, max, n,
        nonfinite and failed, then one column per seed (NaN where a seed has no value)."""
        import pandas as pd

        rows = {}
        for f in self.figures:
            row: dict[str, Any] = {"role": f.role or "", "mean": f.mean, "std": f.std, "min": f.min,
                                   "max": f.max, "n": f.n, "nonfinite": f.nonfinite, "failed": self.failed}
            row.update({f"seed {s}": f.values.get(s, math.nan) for s in self.seeds})
            rows[f.label] = row
        cols = ["role", "mean", "std", "min", "max", "n", "nonfinite", "failed", *(f"seed {s}" for s in self.seeds)]
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
        frame.index.name = "figure"
        if not any(f.role for f in self.figures):
            frame = frame.drop(columns="role")
        return frame


def is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and type(v).__name__ != "bool_"


def _numeric_columns(frame) -> list:
    """The summary columns of a table whose values are all numbers (NaN included)."""
    out = []
    for c in frame.columns:
        name = str(c)
        if ":" in name or name == "role" or name in MARK_COLUMNS:
            continue
        values = [v for v in frame[c] if not (v is None or (isinstance(v, float) and math.isnan(v)))]
        if all(is_number(v) for v in values):
            out.append(c)
    return out


def figures_of(run: SeedRun) -> dict[tuple[str, str | None, str], tuple[float, str | None]]:
    """``{(table, row, column): (value, role)}`` of one seed, tables first, in their order."""
    out: dict[tuple[str, str | None, str], tuple[float, str | None]] = {}
    for name, frame in run.tables.items():
        roles = dict(zip(map(str, frame.index), frame["role"])) if "role" in frame.columns else {}
        cols = _numeric_columns(frame)
        for idx, (_, row) in zip(frame.index, frame.iterrows()):  # a row's figures together
            role = roles.get(str(idx))
            for c in cols:
                v = row[c]
                out[(name, str(idx), str(c))] = (math.nan if v is None else float(v),
                                                 str(role) if role is not None else None)
    for k, v in run.result.items():
        if is_number(v):
            out[(RESULT_TABLE, None, str(k))] = (float(v), None)
    return out


def _stats(key: tuple[str, str | None, str], role: str | None, values: dict[int, float]) -> FigureStats:
    finite = [v for v in values.values() if math.isfinite(v)]
    n = len(finite)
    # exact arithmetic (statistics): equal values have a std of 0, not 3e-17
    mean = float(statistics.mean(finite)) if n else math.nan
    std = float(statistics.stdev(finite)) if n > 1 else math.nan
    return FigureStats(*key, role=role, values=values, mean=mean, std=std,
                       min=min(finite) if n else math.nan, max=max(finite) if n else math.nan,
                       n=n, nonfinite=len(values) - n)


def summarize(runs: list[SeedRun]) -> SeedSummary:
    """The figures over the finished seeds of ``runs``; a figure shows up as soon as one
    finished seed has it, in the order they first appear."""
    per: dict[tuple[str, str | None, str], dict[int, float]] = {}
    roles: dict[tuple[str, str | None, str], str | None] = {}
    for run in runs:
        if run.state != "finished":
            continue
        for key, (value, role) in figures_of(run).items():
            per.setdefault(key, {})[run.seed] = value
            roles.setdefault(key, role)
    figures = [_stats(k, roles[k], v) for k, v in per.items()]
    # a table's rows first, the returned numbers after them
    figures.sort(key=lambda f: f.table == RESULT_TABLE)
    return SeedSummary(seeds=[r.seed for r in runs], figures=figures,
                       states={r.seed: r.state for r in runs},
                       errors={r.seed: r.error or r.state for r in runs if r.state in ENDED_BADLY})
