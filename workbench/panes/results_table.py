"""How the Results pane reads a stored table: what a row is (``role``), which columns are
scores and which way is better, and the marks columns (``best``, ``rank_by``...) taken out."""

from __future__ import annotations

# the marks columns are engine.seed_table's too: a sweep's figures leave them out
from engine.seed_table import MARK_COLUMNS

HIGHER_IS_BETTER = ("corr", "fev", "r2", "bps", "bits", "accuracy")
LOWER_IS_BETTER = ("mae", "mse", "rmse", "err", "loss")


def prepare_table(entry: dict) -> dict:
    """A stored table as the pane shows it: the summary columns before the per-cell ones
    (``metric:cell``), what a row is (``role``) first, and the marks (which row is best, what
    ranks, which rows lose to predicting zero, which diverged) taken out into ``meta``."""
    frame = entry["frame"]
    meta: dict = {"role": None, "best": None, "rank_by": None, "worse": set(), "diverged": set()}
    cols = [str(c) for c in frame.columns]
    if "role" in cols:
        meta["role"] = {str(i): str(r) for i, r in zip(frame.index, frame["role"])}
    if "best" in cols:
        meta["best"] = next((str(i) for i, b in zip(frame.index, frame["best"]) if b is True), None)
    if "rank_by" in cols and len(frame):
        meta["rank_by"] = str(frame["rank_by"].iloc[0])
    if "worse_than_zeros" in cols:
        meta["worse"] = {str(i) for i, w in zip(frame.index, frame["worse_than_zeros"]) if w is True}
    if "diverged" in cols:
        meta["diverged"] = {str(i) for i, d in zip(frame.index, frame["diverged"]) if d is True}
    head = [c for c in frame.columns if str(c) == "role"]
    summary = [c for c in frame.columns if ":" not in str(c) and str(c) not in ("role", *MARK_COLUMNS)]
    # the ranking metric first, then the other scores, then settings and bookkeeping
    first = [c for c in summary if str(c) == meta["rank_by"]]
    summary = first + [c for c in summary if is_metric(str(c)) and c not in first] \
        + [c for c in summary if not is_metric(str(c))]
    per_cell = [c for c in frame.columns if ":" in str(c)]
    return {**entry, "frame": frame[head + summary + per_cell], "stored": frame, "meta": meta}


def is_metric(column: str) -> bool:
    """Whether a column is a score (marked best), not a setting such as ``amount`` or ``pruned``."""
    name = column.lower()
    return any(k in name for k in HIGHER_IS_BETTER + LOWER_IS_BETTER)


def higher_is_better(table_name: str, column: str) -> bool:
    name = f"{table_name} {column}".lower()
    return any(k in name for k in HIGHER_IS_BETTER)
