"""One analysis over several seeds, in this process: its figures per seed, mean and std.

A seed is a first-class setting of every synthetic analysis (``--set seed=N``
regenerates the data and reruns the steps).  :func:`over_seeds` runs the same
steps once per seed, each in its own folder, through the session's parallel
backend (:func:`engine.parallel.pmap`), and gathers what the steps returned
into one table: a row per seed, then ``mean`` and ``std`` rows (sample std,
``ddof=1``), one column per numeric figure.  No job is recorded: it is for
benchmarks and notebooks (benchmarks/bench_truth_seeds.py).

``workbench seeds`` (and ``run --seeds``) and the TUI's "Run over seeds…" run
each seed as its own job instead, with every table's figures: engine.seed_sweep.
:func:`parse_seeds` reads a seed list for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.analyses.base import ParamError, StepContext


@dataclass(frozen=True)
class SeedTask:
    """Everything one worker needs (plain, picklable data)."""

    analysis: str
    steps: tuple[str, ...]
    params: dict[str, Any]
    workdir: str


@dataclass
class SeedsResult:
    """The per-seed results and the table built from them."""

    analysis: str
    seeds: list[int]
    results: list[dict[str, Any]]
    table: Any  # pandas DataFrame: a row per seed, then "mean" and "std"

    def summary(self) -> dict[str, dict[str, float]]:
        """``{figure: {"mean": m, "std": s}}`` for every numeric column."""
        return {c: {"mean": float(self.table.loc["mean", c]), "std": float(self.table.loc["std", c])}
                for c in self.table.columns}


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` (inclusive) -> seeds; one clear line on bad input."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi) + 1) if dash and lo else [int(part)])
        except ValueError:
            raise ParamError(f"--seeds expects integers such as 0,1,2 or 0-4, got {text!r}") from None
    if not out:
        raise ParamError(f"--seeds named no seed: {text!r}")
    if len(set(out)) != len(out):
        raise ParamError(f"--seeds names a seed twice: {text!r}")
    return out


def run_task(task: SeedTask) -> dict[str, Any]:
    """Run the steps of one seed in its folder; the merged step results (top level: loky pickles it)."""
    from engine import analyses

    spec = analyses.get(task.analysis)
    ctx = StepContext(workdir=Path(task.workdir))
    out: dict[str, Any] = {}
    for name in task.steps:
        out.update(spec.step(name).load()(ctx, dict(task.params)) or {})
    return out


def gather(seeds: list[int], results: list[dict[str, Any]]):
    """The table: a row per seed (``seed N``), then ``mean`` and ``std`` over the finite values
    and ``n finite`` (a diverged seed is counted out there, never averaged in silently)."""
    import numpy as np
    import pandas as pd

    def numeric(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    cols = [k for k in results[0] if all(numeric(r.get(k)) for r in results)] if results else []
    rows = {f"seed {s}": {c: float(r[c]) for c in cols} for s, r in zip(seeds, results)}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    finite = table.where(np.isfinite(table))
    n = finite.count(0)
    mean = finite.mean(0)
    std = finite.std(0, ddof=1).where(n > 1)
    table.loc["mean"], table.loc["std"], table.loc["n finite"] = mean, std, n.astype(float)
    table.index.name = "seed"
    return table


def over_seeds(analysis: str, seeds: list[int], overrides: dict[str, Any] | None = None,
               steps: list[str] | None = None, *, session=None, workdir: str | Path | None = None,
               n_jobs: int | None = 1, reporter=None) -> SeedsResult:
    """Run ``analysis`` once per seed and gather its figures with mean and std.

    ``overrides`` are validated like ``--set`` (``seed`` may not be among them).
    Each seed works in ``<workdir>/seed<N>`` (default: the session's artifacts
    folder for the analysis, under ``seeds/``).  ``n_jobs`` seeds run at once on
    the session's backend (1: one after the other in this process; a training
    step already uses the cores).
    """
    from engine import analyses
    from engine.jobs.runner import plan
    from engine.parallel import parallel_backend, pmap, session_backend

    overrides = dict(overrides or {})
    if "seed" in overrides:
        raise ParamError("give the seeds with --seeds, not --set seed=")
    if "seed" not in analyses.get(analysis).defaults():
        raise ParamError(f"analysis {analysis!r} has no seed parameter")
    steps, params = plan(analysis, steps, overrides, session)
    if workdir is None:
        if session is None:
            raise ParamError("over_seeds needs a session or a workdir")
        workdir = Path(session.artifact_dir(analysis)) / "seeds"
    tasks = [SeedTask(analysis, tuple(steps), {**params, "seed": int(s)}, str(Path(workdir) / f"seed{int(s)}"))
             for s in seeds]
    backend = session_backend(session, reporter) if session is not None else parallel_backend("loky",
                                                                                               reporter=reporter)
    with backend:
        results = pmap(run_task, tasks, n_jobs=n_jobs, reporter=reporter, message=f"{analysis} over seeds")
    table = gather(list(seeds), results)
    if session is not None:
        # not "<analysis> over seeds": that name is engine.seed_sweep's, in another layout
        session.save_table(f"{analysis} per seed (in-process)", table)
    return SeedsResult(analysis, list(seeds), results, table)
