"""What a stored metric table says about itself, so that no reader guesses from its names:
per score column, which way is better and what a NaN in it means; which column ranks.

Stored as JSON beside the table (the ``tables.meta`` column, schema 4).  A table stored
without it (older sessions, or a caller that passes none) reads back with ``meta=None``
and the Results pane falls back to reading the column names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

NanMeaning = Literal["n/a", "diverged"]
NAN_MEANINGS: tuple[str, ...] = ("n/a", "diverged")
VERSION = 1


@dataclass(frozen=True)
class Score:
    """One score column: ``higher`` is better or lower is; a NaN in it is ``nan``:
    "diverged" (a rollout that blew up: a failure) or "n/a" (nothing to score, e.g. the
    correlation of a constant trace)."""

    higher: bool
    nan: NanMeaning = "n/a"

    def __post_init__(self) -> None:
        if self.nan not in NAN_MEANINGS:
            raise ValueError(f"nan must be one of {NAN_MEANINGS}, not {self.nan!r}")


@dataclass(frozen=True)
class TableMeta:
    """The scores of a table by column name.  A per-cell column ``mae:c3`` takes the
    score of ``mae`` unless it is named itself; a column named in neither is not a score
    (a setting such as ``amount``, or bookkeeping)."""

    scores: dict[str, Score] = field(default_factory=dict)
    rank_by: str | None = None  # the column that ranks the models, if the table has one

    @classmethod
    def of(cls, *, higher: Iterable[str] = (), lower: Iterable[str] = (),
           diverged: Iterable[str] = (), rank_by: str | None = None) -> "TableMeta":
        """Shorthand: the columns where higher / lower is better; ``diverged`` names the
        ones whose NaN means a diverged model (every other NaN reads "n/a")."""
        bad = set(diverged)
        scores = {c: Score(True, "diverged" if c in bad else "n/a") for c in higher}
        scores.update({c: Score(False, "diverged" if c in bad else "n/a") for c in lower})
        unknown = bad - set(scores)
        if unknown:
            raise ValueError(f"diverged names columns that are not scores: {sorted(unknown)}")
        return cls(scores, rank_by)

    def score(self, column: str) -> Score | None:
        """The score of ``column`` (or of its metric, for a per-cell ``metric:cell``)."""
        if column in self.scores:
            return self.scores[column]
        return self.scores.get(column.split(":", 1)[0]) if ":" in column else None

    def to_payload(self) -> dict[str, Any]:
        return {"version": VERSION, "rank_by": self.rank_by,
                "scores": {c: {"higher": s.higher, "nan": s.nan} for c, s in self.scores.items()}}

    @classmethod
    def from_payload(cls, payload: Any) -> "TableMeta | None":
        """What a session stored, or None where it is missing or unreadable (a hand-edited
        row, a newer workbench's version): the reader then falls back to the names."""
        if not isinstance(payload, dict) or payload.get("version") != VERSION:
            return None
        scores: dict[str, Score] = {}
        for col, s in (payload.get("scores") or {}).items():
            if not (isinstance(col, str) and isinstance(s, dict) and isinstance(s.get("higher"), bool)
                    and s.get("nan", "n/a") in NAN_MEANINGS):
                return None
            scores[col] = Score(s["higher"], s.get("nan", "n/a"))
        rank_by = payload.get("rank_by")
        return cls(scores, rank_by if isinstance(rank_by, str) else None)
