"""``workbench run`` and ``workbench seeds``: an analysis in the foreground or detached,
once or once per seed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.errors import UserError
from workbench.cli_commands.common import _open_session, _split_steps
from workbench.cli_commands.progress import _ProgressPrinter
from workbench.format import fmt_duration


def cmd_run(args: argparse.Namespace) -> int:
    from engine import analyses
    from engine.analyses.base import parse_sets
    from engine.jobs import runner

    spec = analyses.get(args.analysis)
    steps = _split_steps(args.step)
    if steps == []:  # --step "" or "," named nothing: never fall back to running every step
        raise UserError(f"--step needs a step name (steps of {spec.name}: "
                        f"{', '.join(st.name for st in spec.steps)})")
    for s in steps or []:
        spec.step(s)
    # typed and range-checked against the steps' declarations: one line naming the key,
    # before the session is touched or any step runs
    overrides = parse_sets(args.set or [], spec.params())
    if getattr(args, "seeds", None):
        return _run_seeds(args, steps, overrides)
    session = _open_session(args)
    runner.reconcile(session)
    job_id = runner.submit(session, args.analysis, steps, overrides, from_job=args.from_job)
    if args.detach:
        from engine.jobs.folders import inputs_line

        said = inputs_line(session.job_dir(job_id))  # where a --step job's inputs come from
        if said:
            print(said[1], file=sys.stderr)
        runner.launch(session, job_id)
        print(job_id)
        return 0

    printer = _ProgressPrinter(quiet=args.json)
    import signal
    import threading

    cancel = threading.Event()
    # Ctrl-C / SIGTERM: stop at the next safe point, checkpoint, record "cancelled"
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    # A dropped terminal/SSH connection: stop at a safe point (checkpoint, "cancelled",
    # resumable) rather than die mid-step.  Under nohup SIGHUP is ignored: keep it so.
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda *_: cancel.set())
    job = runner.run_job(session, job_id, echo=printer, cancel=cancel)
    printer.close()
    if args.json:
        out = {"job": job.id, "session": session.name, "state": job.state, **(job.result or {})}
        if job.error:
            out["error"] = job.error
        print(json.dumps(out, default=str))
    else:
        print(f"{job.id}: {job.state}" + (f" — {job.error}" if job.error else ""), file=sys.stderr)
    return 0 if job.state == "finished" else 1


def _run_seeds(args: argparse.Namespace, steps: list[str] | None, overrides: dict[str, Any]) -> int:
    """``run NAME --seeds 0,1,2`` is ``seeds NAME --seeds 0,1,2``: each seed its own job."""
    if args.from_job:
        raise UserError("--from does not go with --seeds: each seed takes its inputs from its own seed's job")
    return _seeds(args, steps, overrides)


def cmd_seeds(args: argparse.Namespace) -> int:
    """``seeds NAME --seeds 0,1,2``: the analysis once per seed, each seed its own job in the
    session; then mean ± std, min–max and n per figure, saved as "NAME over seeds"."""
    from engine import analyses
    from engine.analyses.base import parse_sets

    spec = analyses.get(args.analysis)
    steps = _split_steps(args.step)
    if steps == []:
        raise UserError(f"--step needs a step name (steps of {spec.name}: "
                        f"{', '.join(st.name for st in spec.steps)})")
    return _seeds(args, steps, parse_sets(args.set or [], spec.params()))


def _seeds(args: argparse.Namespace, steps: list[str] | None, overrides: dict[str, Any]) -> int:
    import signal
    import threading

    from engine import seed_sweep
    from engine.jobs import runner
    from engine.seeds import parse_seeds

    seeds = parse_seeds(args.seeds)
    session = _open_session(args)
    runner.reconcile(session)
    sweep = seed_sweep.create(session, args.analysis, seeds, overrides, steps,
                              at_once=getattr(args, "at_once", None) or 1)
    if getattr(args, "detach", False):  # a driver in its own process: a logout stops nothing
        seed_sweep.start_detached(session, sweep)
        print(f"{sweep.id}: {len(seeds)} seeds, {sweep.at_once} at a time; "
              f"'workbench jobs' lists them, the table is {sweep.table_name!r}", file=sys.stderr)
        print(sweep.id)
        return 0
    printer = _ProgressPrinter(quiet=args.json)
    cancel = threading.Event()  # Ctrl-C, SIGTERM: the running seed stops at a safe point
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())

    def told(i: int, seed: int, job_id: str, eta: float | None) -> None:
        left = f"  ETA {fmt_duration(eta)}" if eta is not None else ""
        printer._line(f"seed {i + 1}/{len(seeds)} (seed={seed}): job {job_id}{left}", final=True)

    result = seed_sweep.run_here(session, sweep, echo=printer, cancel=cancel, on_seed=told)
    printer.close()
    if args.json:
        print(json.dumps({
            "sweep": sweep.id, "session": session.name, "seeds": seeds,
            "jobs": {str(s): j for s, j in sweep.jobs.items()},
            "states": {str(s): st for s, st in result.states.items()},
            "errors": {str(s): e for s, e in result.errors.items()},
            "summary": {f.label: {"mean": _finite(f.mean), "std": _finite(f.std), "min": _finite(f.min),
                                  "max": _finite(f.max), "n": f.n, "nonfinite": f.nonfinite} for f in result.figures},
            "per_seed": {f.label: {str(s): _finite(v) for s, v in f.values.items()} for f in result.figures},
        }, default=str))
    else:
        _print_seed_summary(result)
    return 0 if result.finished == len(seeds) else 1


def _finite(v: float) -> float | None:
    """NaN/inf as null: strict JSON readers (jq, JSON.parse) refuse NaN."""
    import math

    return v if math.isfinite(v) else None


def _print_seed_summary(result) -> None:
    from engine.text import safe_line

    print(f"{result.finished}/{len(result.seeds)} seeds finished" +
          (f", {result.failed} failed" if result.failed else ""))
    for seed, error in result.errors.items():
        print(f"  seed {seed}: {safe_line(error)}")
    width = max([len(f.label) for f in result.figures] or [6])
    for f in result.figures:
        print(f"{safe_line(f.label):<{width}}  {f.text()}")
