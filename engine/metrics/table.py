"""Many models scored against one target at once: :func:`score_table` (one row per model,
an explicit ``diverged`` column) and :func:`score_meta`, what its columns mean."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from engine.metrics.arrays import is_diverged
from engine.metrics.regression import fev, mae, pearson, rmse
from engine.metrics.spikes import bits_per_spike, poisson_nll

if TYPE_CHECKING:  # pragma: no cover
    from engine.session import TableMeta


# --------------------------------------------------------------------------- tables

#: name -> fn(y_true, y_pred, per_cell=bool); metrics usable in :func:`score_table`.
METRICS: dict[str, Callable] = {
    "mae": mae,
    "rmse": rmse,
    "corr": pearson,
    "fev": fev,
    "poisson_nll": poisson_nll,
    "bits_per_spike": bits_per_spike,
}

# which way each metric is better; a NaN in MAE, RMSE or the NLL only ever means the model
# diverged, in a correlation or FEV it may also mean a constant cell (nothing to score)
HIGHER_IS_BETTER = {"mae": False, "rmse": False, "corr": True, "fev": True,
                    "poisson_nll": False, "bits_per_spike": True}
NAN_IS_DIVERGED = ("mae", "rmse", "poisson_nll")

# Below this many entries per model the thread pool costs more than it saves.
_PARALLEL_MIN_ENTRIES = 200_000


def _score_one(name, pred, target, metrics, per_cell, repeats_target):
    row: dict[str, object] = {"model": name}
    pred = np.asarray(pred, dtype=float)
    row["diverged"] = is_diverged(pred)
    for m in metrics:
        fn = METRICS[m]
        if m == "fev" and repeats_target is not None:
            t = repeats_target
        else:
            t = target
        if row["diverged"]:
            # Explicit: no number at all for a diverged model.
            n_cells = 1 if pred.ndim == 1 else pred.shape[-1]
            overall, cells = float("nan"), np.full(n_cells, np.nan)
        else:
            overall = fn(t, pred, per_cell=False)
            cells = fn(t, pred, per_cell=True)
        row[m] = overall
        if per_cell:
            row[m + "_cells"] = np.asarray(cells)
    return row


def score_table(
    predictions: Mapping[str, np.ndarray],
    target,
    metrics: Sequence[str] = ("mae",),
    *,
    cells: Sequence | None = None,
    per_cell: bool = True,
    n_jobs: int = -1,
    backend: str | None = None,
):
    """Score several models against one target; one row per model.

    Parameters
    ----------
    predictions : mapping name -> array (T, cells) (or any (..., cells))
        Each model's prediction, same shape as the target.
    target : array (T, cells) or (repeats, T, cells)
        With a repeats axis, ``fev`` uses the repeats for its noise ceiling and
        every other metric is scored against the mean over repeats.
    metrics : sequence of str
        Names from :data:`METRICS`.
    cells : sequence, optional
        Names for the per-cell columns (default ``0..cells-1``).
    per_cell : bool
        Add one column per metric and cell, named ``"<metric>:<cell>"``.
    n_jobs, backend :
        joblib settings.  Models are scored in parallel through
        :func:`engine.parallel.pmap` on the session's backend (dask, ray); on this
        machine in threads, because numpy releases the GIL and the target is not
        copied.  ``backend="loky"`` etc. forces one.  Small inputs are scored in-process.

    Returns
    -------
    pandas.DataFrame
        Index: model names.  Columns: ``diverged`` (bool), then for each metric
        the overall value under its name and, if ``per_cell``, the per-cell values.
        A diverged model has NaN in every metric column, never a huge number.
    """
    import pandas as pd

    if not predictions:
        raise ValueError("no predictions to score")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    target = np.asarray(target, dtype=float)
    shapes = {k: np.shape(v) for k, v in predictions.items()}
    first = next(iter(shapes.values()))
    repeats_target = None
    if target.ndim == len(first) + 1:
        repeats_target = target
        target = target.mean(axis=0)
    for k, shp in shapes.items():
        if shp != target.shape:
            raise ValueError(f"prediction {k!r} has shape {shp}, target has {target.shape}")
    if not np.all(np.isfinite(target)):
        raise ValueError("target contains NaN or inf")
    n_cells = 1 if target.ndim == 1 else target.shape[-1]
    names = list(cells) if cells is not None else list(range(n_cells))
    if len(names) != n_cells:
        raise ValueError(f"got {len(names)} cell names for {n_cells} cells")

    jobs = [(k, v, target, tuple(metrics), per_cell, repeats_target) for k, v in predictions.items()]
    if n_jobs == 1 or len(jobs) == 1 or target.size < _PARALLEL_MIN_ENTRIES:
        rows = [_score_one(*j) for j in jobs]
    else:
        from engine.parallel import pmap

        rows = pmap(lambda j: _score_one(*j), jobs, n_jobs=n_jobs, backend=backend, prefer="threads",
                    message="scoring models")

    records = []
    for row in rows:
        rec: dict[str, object] = {"model": row["model"], "diverged": bool(row["diverged"])}
        for m in metrics:
            rec[m] = row[m]
            if per_cell:
                for name, v in zip(names, row[m + "_cells"]):
                    rec[f"{m}:{name}"] = float(v)
        records.append(rec)
    return pd.DataFrame.from_records(records).set_index("model")


def score_meta(metrics: Sequence[str] = ("mae",), *, rank_by: str | None = None) -> TableMeta:
    """What the columns of a :func:`score_table` of ``metrics`` mean, to store beside it
    (``ctx.save_table(name, table, meta=score_meta(metrics))``): which way each is better,
    its per-cell ``metric:cell`` columns alike, and which NaNs are a diverged model."""
    from engine.session import TableMeta

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    return TableMeta.of(higher=[m for m in metrics if HIGHER_IS_BETTER[m]],
                        lower=[m for m in metrics if not HIGHER_IS_BETTER[m]],
                        diverged=[m for m in metrics if m in NAN_IS_DIVERGED], rank_by=rank_by)
