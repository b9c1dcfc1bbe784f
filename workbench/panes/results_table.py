"""How the Results pane reads a stored table: what a row is (``role``), which columns are
scores, which way is better and what a NaN in them means, and the marks columns
(``best``, ``rank_by``...) taken out.

A table stored with its metadata (engine.session.TableMeta) says which columns are scores
and how to read them; a table without (older sessions) is read by its column names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.session import Score, TableMeta

# the marks columns are engine.seed_table's too: a sweep's figures leave them out
from engine.seed_table import MARK_COLUMNS

# the fallback for tables stored without metadata: a guess from the names
HIGHER_IS_BETTER = ("corr", "fev", "r2", "bps", "bits", "accuracy")
LOWER_IS_BETTER = ("mae", "mse", "rmse", "err", "loss")


@dataclass
class Marks:
    """What the marks columns say: each row's role, the best model, the ranking column,
    the rows that lose to predicting zero and the rows that diverged."""

    role: dict[str, str] | None = None
    best: str | None = None
    rank_by: str | None = None
    worse: set[str] = field(default_factory=set)
    diverged: set[str] = field(default_factory=set)


def _marks(frame: Any, meta: TableMeta | None) -> Marks:
    cols = [str(c) for c in frame.columns]
    marks = Marks(rank_by=meta.rank_by if meta is not None else None)
    if "role" in cols:
        marks.role = {str(i): str(r) for i, r in zip(frame.index, frame["role"])}
    if "best" in cols:
        marks.best = next((str(i) for i, b in zip(frame.index, frame["best"]) if b is True), None)
    if "rank_by" in cols and len(frame):
        marks.rank_by = str(frame["rank_by"].iloc[0])
    if "worse_than_zeros" in cols:
        marks.worse = {str(i) for i, w in zip(frame.index, frame["worse_than_zeros"]) if w is True}
    if "diverged" in cols:
        marks.diverged = {str(i) for i, d in zip(frame.index, frame["diverged"]) if d is True}
    return marks


def prepare_table(entry: dict) -> dict:
    """A stored table as the pane shows it: the summary columns before the per-cell ones
    (``metric:cell``), what a row is (``role``) first, and the marks (which row is best, what
    ranks, which rows lose to predicting zero, which diverged) taken out into ``marks``."""
    frame = entry["frame"]
    marks = _marks(frame, entry.get("meta"))
    head = [c for c in frame.columns if str(c) == "role"]
    summary = [c for c in frame.columns if ":" not in str(c) and str(c) not in ("role", *MARK_COLUMNS)]
    # the ranking metric first, then the other scores, then settings and bookkeeping
    first = [c for c in summary if str(c) == marks.rank_by]
    scores = [c for c in summary if score_of(entry, str(c)) is not None and c not in first]
    summary = first + scores + [c for c in summary if c not in first and c not in scores]
    per_cell = [c for c in frame.columns if ":" in str(c)]
    return {**entry, "frame": frame[head + summary + per_cell], "stored": frame, "marks": marks}


def score_of(entry: dict, column: str) -> Score | None:
    """How to read ``column`` of a table: which way is better and what its NaN means; None
    where it is not a score.  The table's metadata says; without it, the names guess."""
    meta: TableMeta | None = entry.get("meta")
    if meta is not None:
        return meta.score(column)
    if not is_metric(column):
        return None
    return Score(higher=higher_is_better(entry.get("name") or "", column))


def nan_text(entry: dict, row: str, column: str) -> str:
    """What a NaN cell says: "diverged" where the row is marked diverged or the table says
    a NaN in that column is a divergence, else "n/a" (a constant trace has no correlation)."""
    marks: Marks = entry.get("marks") or Marks()
    score = score_of(entry, column)
    if row in marks.diverged or (entry.get("meta") is not None and score is not None
                                 and score.nan == "diverged"):
        return "diverged"
    return "n/a"


def is_metric(column: str) -> bool:
    """Name heuristic (tables without metadata): whether a column is a score (marked best),
    not a setting such as ``amount`` or ``pruned``."""
    name = column.lower()
    return any(k in name for k in HIGHER_IS_BETTER + LOWER_IS_BETTER)


def higher_is_better(table_name: str, column: str) -> bool:
    """Name heuristic (tables without metadata): whether higher is better."""
    name = f"{table_name} {column}".lower()
    return any(k in name for k in HIGHER_IS_BETTER)
