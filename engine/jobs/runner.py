"""Jobs: one analysis run (a list of steps with parameters) in its own process.

``launch`` starts ``python -m engine.jobs.worker`` in a new process session
(``start_new_session=True``), so a hang-up of the terminal or the death of the
TUI does not reach it.  The worker records its pid and a heartbeat, writes its
events to the session, and ends the job as finished / failed / cancelled.
SIGTERM sets the cancel flag; steps stop at their next safe point.

A job whose process vanished without ending it (SIGKILL, reboot) is found by
:func:`reconcile` and marked ``interrupted``; :func:`resume` starts a new job
for the remaining steps, which continue from their last checkpoints.  A job is
dead only when its process is gone (pid, start time, host: :mod:`.liveness`),
never because its heartbeat is late (SIGSTOP, a suspended laptop).  End states
are final.

Each job works in its own folder (:mod:`.folders`); a job that starts part-way
takes its inputs from an earlier job, which its log names.  Running the steps in
a process is :mod:`.execution`'s (:func:`run_job`, re-exported here).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine import analyses
from engine.analyses.base import ParamError, validate_params
from engine.jobs import folders, liveness
from engine.jobs.execution import HEARTBEAT_S as HEARTBEAT_S, run_job as run_job  # re-exported
from engine.jobs.liveness import Liveness
from engine.session import ACTIVE_STATES, Job, Session, SessionError

LAUNCH_GRACE_S = 30.0  # a queued job with no worker pid after this: its launcher died


def plan(analysis: str, steps: list[str] | None, overrides: dict[str, Any],
         session: Session | None = None) -> tuple[list[str], dict[str, Any]]:
    """Validate analysis/steps/params and return (steps, full params) — no side effects."""
    spec = analyses.get(analysis)
    if steps:
        for s in steps:
            spec.step(s)  # raises ParamError for unknown steps
        steps = [s.name for s in spec.steps if s.name in steps]
    else:
        steps = [s.name for s in spec.steps]
    params = spec.defaults()
    if session is not None:
        params.update({k: v for k, v in session.params(analysis).items() if k in params})
    unknown = set(overrides) - set(params)
    if unknown:
        raise ParamError(f"unknown parameter(s) {sorted(unknown)} for {analysis}")
    params.update(overrides)
    # every value is typed and range-checked here, before any step runs (one line naming the key)
    return steps, validate_params(spec, params, steps)


def submit(session: Session, analysis: str, steps: list[str] | None = None,
           overrides: dict[str, Any] | None = None, from_job: str | None = None) -> str:
    """Record a job and prepare its folder: a job that starts part-way gets the files of
    the steps it needs from ``from_job``, or from the newest ended job that made them."""
    steps, params = plan(analysis, steps, overrides or {}, session)
    spec = analyses.get(analysis)
    order = [s.name for s in spec.steps]
    needed = folders.needed_steps(order, steps)
    upstream = set(spec.params(needed))
    # what this job asks of the files it starts from: the earlier steps' settings it sets
    expect = {k: v for k, v in (overrides or {}).items() if k in upstream}
    inputs = folders.choose(session, analysis, order, steps, from_job, expect=expect)
    if inputs is not None and inputs.job_id is not None:
        # the job records the settings its inputs were made with, not today's defaults
        made = session.job(inputs.job_id).params or {}
        params.update({k: made[k] for k in upstream if k in made and k not in (overrides or {})})
    job_id = session.create_job(analysis, steps, params, source=inputs.job_id if inputs else None)
    workdir = session.job_dir(job_id)
    if inputs is not None:
        folders.seed(workdir, inputs)
    else:
        # a recording stands in for what a generate step would make
        folders.note_missing(workdir, analysis, [s for s in needed if not (s == "generate" and params.get("data"))])
    return job_id


def launch(session: Session, job_id: str) -> int:
    """Start the worker detached from this process and terminal; return its pid."""
    log_dir = session.artifacts / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # the worker must import this very checkout, wherever the caller's cwd is
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    cmd = [sys.executable, "-m", "engine.jobs.worker", str(session.path), job_id]
    nproc = int(session.job(job_id).params.get("nproc", 1) or 1)
    if nproc > 1:  # DDP: torchrun starts nproc ranks of the worker; rank 0 is the job
        from engine.distributed import torchrun_command

        cmd = torchrun_command(nproc, "engine.jobs.worker", str(session.path), job_id)
    with open(log_dir / f"{job_id}.log", "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, env=env, cwd=root,
        )
    session.update_job(job_id, pid=proc.pid, pid_start=liveness.start_time(proc.pid))
    return proc.pid


def start(session: Session, analysis: str, steps: list[str] | None = None,
          overrides: dict[str, Any] | None = None) -> str:
    job_id = submit(session, analysis, steps, overrides)
    launch(session, job_id)
    return job_id


def reconcile(session: Session) -> list[str]:
    """Mark jobs whose worker process is gone as interrupted; return their ids.

    Gone means: no process on this host with the recorded pid and start time.  A late
    heartbeat is not enough (a stopped or suspended worker continues later), and another
    host's job is left to that host.
    """
    if session.readonly:
        return []
    gone = []
    now = time.time()
    for job in session.jobs(ACTIVE_STATES):
        if job.pid is None:  # created, not launched yet: give the launcher time
            if job.host not in (None, liveness.host()):
                continue
            dead = job.state == "queued" and now - job.created > LAUNCH_GRACE_S
        else:
            dead = liveness.check(job.pid, job.pid_start, job.host) is Liveness.DEAD
        if dead and session.finish_job(job.id, "interrupted", error=_death_cause(session, job)):
            gone.append(job.id)
    return gone


def _death_cause(session: Session, job: Job) -> str:
    """Why a worker ended without a word: its log's last error line, if it wrote one (a
    full disk may have kept it from recording its end)."""
    line = "the worker process ended without finishing the job"
    log = session.artifacts / "logs" / f"{job.id}.log"
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, log.stat().st_size - 8192))
            tail = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return line
    for text in reversed(tail):
        if "Error" in text or "No space left" in text or "Killed" in text:
            clean = "".join(ch for ch in text.strip() if ch.isprintable())[:240]
            return f"{line}; its log ends with: {clean}"
    return line


def cancel(session: Session, job_id: str) -> bool:
    """Ask a running job to stop at its next safe point (SIGTERM to its worker).

    Signals only the job's own worker: the one recorded on this host, with the recorded
    start time (a reused pid belongs to someone else).  False if the job is not running.
    """
    job = session.job(job_id)
    if not job.active:
        return False
    pid = job.pid
    state = liveness.check(pid, job.pid_start, job.host) if pid else None  # ALIVE: a pid
    if job.state == "queued" and state is not Liveness.ELSEWHERE and not session.readonly:
        # not started yet: its end is recorded now, and a worker that gets to start finds it
        # ended and runs nothing (a SIGTERM before its handler is set would only kill it)
        session.finish_job(job_id, "cancelled")
        if state is Liveness.ALIVE and pid:
            _signal(pid)
        return True
    if state is Liveness.ELSEWHERE:
        raise SessionError(f"job {job_id} runs on host {job.host!r}; cancel it there")
    if state is not Liveness.ALIVE or not pid:
        reconcile(session)
        return False
    if not session.readonly:
        with contextlib.suppress(SessionError):  # the signal matters; the note is a courtesy
            session.add_event(job_id, "log", {"message": "cancel requested", "level": "warning"})
    if not _signal(pid):
        reconcile(session)
        return False
    return True


def _signal(pid: int) -> bool:
    """SIGTERM a worker.  A detached worker leads its own process group (it and its
    children, such as torchrun's ranks); a foreground run shares the shell's group: it
    alone is signalled.  False if it is gone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def resume(session: Session, job_id: str) -> str:
    """Start a new job for the steps an interrupted/cancelled/failed job had not finished.

    It continues in the same folder, from the checkpoints there; one resume at a time.
    """
    job = session.job(job_id)
    if job.active:
        raise SessionError(f"job {job_id} is still {job.state}")
    workdir = session.job_dir(job)
    for other in session.jobs(ACTIVE_STATES):
        if session.job_dir(other) == workdir:
            raise SessionError(f"job {other.id} is already working in {job_id}'s folder "
                               f"(it is {other.state}); cancel it or wait for it")
    done = {e.payload.get("step") for e in session.events(job_id, kinds=("step",))}
    current = job.current_step
    remaining = [s for s in job.steps if s == current or s not in done]
    new_id = session.create_job(job.analysis, remaining or job.steps, job.params, resume_of=job_id,
                                workdir=str(workdir.relative_to(session.path)), source=job.source)
    launch(session, new_id)
    return new_id


def _session_name(job_id: str) -> str:
    """Job ids are ``<session>-<mmdd>-<HHMMSS>-<hex>``: the session is in the id."""
    return job_id.rsplit("-", 3)[0]


def find_job(root: Path, job_id: str) -> tuple[str, Job]:
    """Find a job by id under ``root``: in the session its id names, else in each session,
    read-only, skipping the ones that cannot be opened (one bad session blocks no one)."""
    from engine.session import list_sessions

    guess = _session_name(job_id)
    names = list_sessions(root)
    for name in ([guess] if guess in names else []) + [n for n in names if n != guess]:
        try:
            s = Session(root / name, create=False, readonly=True)
        except SessionError:
            continue
        try:
            return name, s.job(job_id)
        except SessionError:
            continue
        finally:
            s.close()
    raise SessionError(f"no job {job_id!r} in any session under {root}")
