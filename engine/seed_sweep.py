"""One analysis over several seeds, each seed its own job in the session (issue 18).

A *sweep* is a small JSON record in ``artifacts/seeds/<id>.json``: the analysis, its
steps and ``--set`` values, the seeds, and the job of each seed submitted so far.  The
jobs are ordinary jobs (``--set seed=N``): the jobs screen lists them, a logout does not
stop them, and their tables are the session's.  :mod:`engine.seed_table` makes mean and
spread of them; the aggregate is saved as the table ``"<analysis> over seeds"``.

Two ways to drive one:

* :func:`run_here` runs the seeds one after the other in this process (``workbench
  seeds``, like ``workbench run``);
* :func:`start_detached` starts ``python -m engine.seed_sweep SESSION ID`` in its own
  process session (``workbench seeds --detach``, the TUI's "Run over seeds…"), which
  launches ``at_once`` workers at a time and saves the table once every seed has ended.

A seed job that starts part-way (``--step``) takes its inputs from the newest ended
job of the same seed, never from another seed's data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine.analyses.base import ParamError
from engine.seed_table import SeedRun, SeedSummary, summarize
from engine.session import ACTIVE_STATES, Session, SessionError

POLL_S = 0.5  # how often the detached driver looks at its jobs


@dataclass
class Sweep:
    """What a sweep is and how far it got (``jobs``: seed -> job id, as submitted)."""

    id: str
    analysis: str
    seeds: list[int]
    steps: list[str] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    at_once: int = 1
    created: float = field(default_factory=time.time)
    jobs: dict[int, str] = field(default_factory=dict)
    driver: list | None = None  # [pid, pid start, host] of a detached driver

    @property
    def table_name(self) -> str:
        return f"{self.analysis} over seeds"

    def pending(self) -> list[int]:
        return [s for s in self.seeds if s not in self.jobs]


def sweep_dir(session: Session) -> Path:
    return session.artifacts / "seeds"


def save(session: Session, sweep: Sweep) -> None:
    from engine.atomic import write_json

    write_json(sweep_dir(session) / f"{sweep.id}.json", asdict(sweep))


def load(session: Session, sweep_id: str) -> Sweep:
    path = sweep_dir(session) / f"{sweep_id}.json"
    try:
        raw = json.loads(path.read_text())
        raw["jobs"] = {int(k): v for k, v in raw.get("jobs", {}).items()}
        return Sweep(**raw)
    except FileNotFoundError:
        raise SessionError(f"no seed sweep {sweep_id!r} in session {session.name!r}") from None
    except (ValueError, TypeError) as exc:  # hand-edited or from another version
        raise SessionError(f"seed sweep {sweep_id!r} cannot be read: {exc}") from None


def sweeps(session: Session) -> list[Sweep]:
    """Every readable sweep of the session, oldest first."""
    out = []
    for path in sorted(sweep_dir(session).glob("*.json")):
        try:
            out.append(load(session, path.stem))
        except SessionError:
            continue  # one unreadable record hides no other
    return sorted(out, key=lambda s: s.created)


def create(session: Session, analysis: str, seeds: list[int], overrides: dict[str, Any] | None = None,
           steps: list[str] | None = None, at_once: int = 1) -> Sweep:
    """Check everything (parameters, inputs of each seed) and record the sweep; runs nothing."""
    from engine import analyses
    from engine.jobs.runner import plan

    overrides = dict(overrides or {})
    if "seed" in overrides:
        raise ParamError("give the seeds with --seeds, not --set seed=")
    if "seed" not in analyses.get(analysis).defaults():
        raise ParamError(f"analysis {analysis!r} has no seed parameter")
    if not seeds:
        raise ParamError("--seeds named no seed")
    if at_once < 1:
        raise ParamError(f"--at-once must be ≥ 1, got {at_once}")
    for s in seeds:  # typed and range-checked for every seed before any job exists
        steps_planned, planned = plan(analysis, steps, {**overrides, "seed": int(s)}, session)
    if planned.get("data"):
        raise ParamError(f"a seed sweep regenerates the data from each seed; with data={planned['data']} "
                         "every seed would read the same file and give the same numbers")
    # every setting as planned now, not only the --set ones: a value saved in the Run form
    # while the sweep runs must not change the later seeds
    fixed = {k: v for k, v in planned.items() if k != "seed"}
    sweep = Sweep(id=f"{analysis}-{time.strftime('%m%d-%H%M%S')}-{os.urandom(2).hex()}", analysis=analysis,
                  seeds=[int(s) for s in seeds], steps=steps_planned if steps else None,
                  overrides=fixed, at_once=int(at_once))
    for s in sweep.seeds:
        source_for(session, sweep, s)  # a --step sweep: each seed's inputs exist
    save(session, sweep)
    return sweep


def source_for(session: Session, sweep: Sweep, seed: int) -> str | None:
    """The earlier job whose files a part-way seed job starts from: the newest ended job of
    this analysis and seed that made the steps it needs (None: it needs none)."""
    from engine import analyses
    from engine.jobs import folders

    order = [s.name for s in analyses.get(sweep.analysis).steps]
    needed = folders.needed_steps(order, sweep.steps or order)
    if not needed:
        return None
    upstream = set(analyses.get(sweep.analysis).params(needed))
    expect = {k: v for k, v in sweep.overrides.items() if k in upstream}
    for job in reversed(session.jobs()):
        if job.analysis == sweep.analysis and not job.active and job.params.get("seed") == seed \
                and not folders.differences(job.params, expect) \
                and job.workdir and needed[-1] in folders.read_manifest(session.job_dir(job))["steps"]:
            return job.id
    raise ParamError(f"seed {seed}: no earlier {sweep.analysis} job with seed={seed} and these settings made "
                     f"{', '.join(needed)}; run the sweep over every step first")


def submit_next(session: Session, sweep: Sweep) -> tuple[int, str] | None:
    """Submit the job of the next pending seed and record it; None when none is left."""
    from engine.jobs import runner

    pending = sweep.pending()
    if not pending:
        return None
    seed = pending[0]
    job_id = runner.submit(session, sweep.analysis, sweep.steps, {**sweep.overrides, "seed": seed},
                           from_job=source_for(session, sweep, seed))
    sweep.jobs[seed] = job_id
    save(session, sweep)
    return seed, job_id


def _chains(jobs: list) -> tuple[dict, dict]:
    by_id = {j.id: j for j in jobs}
    resumed = {j.resume_of: j for j in jobs if j.resume_of}  # oldest first: the newest resume wins
    return by_id, resumed


def chain(job_id: str | None, by_id: dict, resumed: dict) -> list:
    """The seed's job and the jobs that resumed it (jobs screen), oldest first."""
    out, job = [], by_id.get(job_id or "")
    while job is not None and job not in out:
        out.append(job)
        job = resumed.get(job.id)
    return out


def runs(session: Session, sweep: Sweep, jobs: list | None = None, tables: list[dict] | None = None
         ) -> list[SeedRun]:
    """Each seed as the store has it.  ``jobs``/``tables``: what the caller has already read
    (the TUI's poll), to read nothing twice.  A seed resumed from the jobs screen is its
    whole chain: the steps the first job finished keep their tables and figures."""
    jobs = session.jobs() if jobs is None else jobs
    tables = session.tables() if tables is None else tables
    by_id, resumed = _chains(jobs)
    out = []
    for seed in sweep.seeds:
        jobs_of_seed = chain(sweep.jobs.get(seed), by_id, resumed)
        if not jobs_of_seed:  # not submitted yet (or its job deleted)
            out.append(SeedRun(seed, sweep.jobs.get(seed), "pending"))
            continue
        ids = [j.id for j in jobs_of_seed]
        mine = {}
        for t in tables:  # oldest first: a table saved twice keeps its newest
            if t["job_id"] in ids:
                mine[t["name"]] = t["frame"]
        result: dict = {}
        for j in jobs_of_seed:  # a resume's results add to (and update) the first job's
            # a returned number that is a parameter (trajectories=12) is a setting, not a figure
            result.update({k: v for k, v in (j.result or {}).items() if k not in j.params})
        job = jobs_of_seed[-1]
        out.append(SeedRun(seed, job.id, job.state, job.error, result, mine))
    return out


def summary(session: Session, sweep: Sweep) -> SeedSummary:
    return summarize(runs(session, sweep))


def save_table(session: Session, sweep: Sweep) -> SeedSummary:
    """Aggregate what ended and save it as ``"<analysis> over seeds"``."""
    result = summary(session, sweep)
    if result.figures or result.failed:
        session.save_table(sweep.table_name, result.to_frame())
    return result


def eta(durations: list[float], remaining: int, at_once: int = 1) -> float | None:
    """Seconds left: the mean time of a finished seed for each remaining one (None: no
    seed has finished yet)."""
    if not durations:
        return None
    return sum(durations) / len(durations) * -(-remaining // max(1, at_once))


def run_here(session: Session, sweep: Sweep, *, echo: Callable[[str, dict], None] | None = None,
             cancel: threading.Event | None = None,
             on_seed: Callable[[int, int, str, float | None], None] | None = None) -> SeedSummary:
    """Run the pending seeds one after the other in this process, then save the table.
    ``on_seed(index, seed, job_id, eta_s)`` is told before each seed starts."""
    from engine.jobs import runner

    cancel = cancel or threading.Event()
    durations: list[float] = []
    while sweep.pending() and not cancel.is_set():
        done = len(sweep.seeds) - len(sweep.pending())
        submitted = submit_next(session, sweep)
        if submitted is None:  # not after the pending() check above; the type allows it
            break
        seed, job_id = submitted
        if on_seed is not None:
            on_seed(done, seed, job_id, eta(durations, len(sweep.pending()) + 1))
        t0 = time.time()
        job = runner.run_job(session, job_id, echo=echo, cancel=cancel)
        if job.state == "finished":
            durations.append(time.time() - t0)
    return save_table(session, sweep)


def drive(session: Session, sweep: Sweep, poll_s: float = POLL_S) -> SeedSummary:
    """The detached driver's loop: keep ``at_once`` seed jobs running until every seed has
    ended, then save the table.  A seed job cancelled by the user stops the sweep: no
    further seed starts (the ones running finish)."""
    from engine.jobs import runner

    while True:
        runner.reconcile(session)  # a worker killed outright ends its seed as interrupted
        by_id, resumed = _chains(session.jobs())
        # each seed by its newest job: one resumed from the jobs screen counts as that seed
        states = [chain(j, by_id, resumed)[-1].state for j in sweep.jobs.values() if j in by_id]
        active = [st for st in states if st in ACTIVE_STATES]
        stopped = "cancelled" in states
        while len(active) < sweep.at_once and sweep.pending() and not stopped:
            submitted = submit_next(session, sweep)
            if submitted is None:
                break
            job_id = submitted[1]
            runner.launch(session, job_id)
            active.append(job_id)
        if not active and (stopped or not sweep.pending()):
            return save_table(session, sweep)
        time.sleep(poll_s)


def start_detached(session: Session, sweep: Sweep) -> int:
    """Start the driver in its own process session (it outlives the terminal); its pid."""
    log_dir = session.artifacts / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    with open(log_dir / f"{sweep.id}.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "engine.seed_sweep", str(session.path), sweep.id],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env, cwd=root)
    return proc.pid


def driver_gone(sweep: Sweep) -> bool:
    """Whether a sweep's detached driver has ended (a reboot, a kill) with seeds not started;
    False for a sweep run in a terminal, or another host's driver (it is that host's)."""
    from engine.jobs import liveness

    if not sweep.driver or not sweep.pending():
        return False
    return liveness.check(*sweep.driver) is liveness.Liveness.DEAD


def main(argv: list[str]) -> int:
    from engine.jobs import liveness

    path, sweep_id = argv
    with Session(path, create=False) as session:
        session.patient = True  # a busy store delays the driver, never stops it
        sweep = load(session, sweep_id)
        # the driver alone writes the record from now on: it says who drives it
        sweep.driver = [os.getpid(), liveness.start_time(os.getpid()), liveness.host()]
        save(session, sweep)
        result = drive(session, sweep)
    print(f"{sweep_id}: {result.finished} finished, {result.failed} failed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
