"""Jobs: one analysis run (a list of steps with parameters) in its own process.

``launch`` starts ``python -m engine.jobs.worker`` in a new process session
(``start_new_session=True``), so a hang-up of the terminal or the death of the
TUI does not reach it.  The worker records its pid and a heartbeat, writes its
events to the session, and ends the job as finished / failed / cancelled.
SIGTERM sets the cancel flag; steps stop at their next safe point.

A job whose process vanished without ending it (SIGKILL, reboot) is found by
:func:`reconcile` and marked ``interrupted``; :func:`resume` starts a new job
for the remaining steps, which continue from their last checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from engine import analyses, parallel
from engine.analyses.base import ParamError, StepContext, validate_params
from engine.jobs.reporter import SessionReporter
from engine.reporting import Cancelled
from engine.session import ACTIVE_STATES, Job, Session, SessionError

HEARTBEAT_S = 2.0
STALE_AFTER_S = 30.0  # a heartbeat older than this means the worker is gone


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
           overrides: dict[str, Any] | None = None, resume_of: str | None = None) -> str:
    steps, params = plan(analysis, steps, overrides or {}, session)
    return session.create_job(analysis, steps, params, resume_of=resume_of)


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
    session.update_job(job_id, pid=proc.pid)
    return proc.pid


def start(session: Session, analysis: str, steps: list[str] | None = None,
          overrides: dict[str, Any] | None = None) -> str:
    job_id = submit(session, analysis, steps, overrides)
    launch(session, job_id)
    return job_id


def run_job(session: Session, job_id: str, *, echo: Callable[[str, dict], None] | None = None,
            cancel: threading.Event | None = None) -> Job:
    """Run a job's steps in this process (the worker's body, and ``--headless``)."""
    job = session.job(job_id)
    spec = analyses.get(job.analysis)
    workdir = session.artifact_dir(job.analysis)
    cancel = cancel or threading.Event()
    reporter = SessionReporter(session, job_id, workdir, cancel=cancel, echo=echo)
    session.update_job(job_id, state="running", pid=os.getpid(), started=time.time(),
                       heartbeat=time.time(), host=os.uname().nodename)
    stop_beat = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(session.path, job_id, stop_beat), daemon=True)
    beat.start()
    results: dict[str, Any] = {}
    # parallel loops of every step go to the session's backend; a dask/ray cluster
    # starts on first use and is closed when the job ends
    scale_out = contextlib.ExitStack()
    try:
        scale_out.enter_context(parallel.session_backend(session, reporter))
        for name in job.steps:
            if cancel.is_set():
                raise Cancelled()
            session.update_job(job_id, current_step=name)
            reporter.start_step(name)
            ctx = StepContext(workdir=workdir, reporter=reporter, session=session, job_id=job_id,
                              resuming=job.resume_of is not None)
            out = spec.step(name).load()(ctx, dict(job.params)) or {}
            if "device" in out:
                session.update_job(job_id, device=str(out["device"]))
            results.update(out)
            session.update_job(job_id, result=results)
        session.finish_job(job_id, "finished", result=results)
    except Cancelled:
        session.finish_job(job_id, "cancelled", result=results)
    except KeyboardInterrupt:
        session.finish_job(job_id, "cancelled", result=results)
    except Exception as exc:  # a step failed: record one clear line, keep the traceback in the log
        if not _user_error(exc):  # bad input says all in its line; a bug needs its traceback
            traceback.print_exc()
        session.finish_job(job_id, "failed", error=_one_line(exc), result=results)
    finally:
        scale_out.close()
        stop_beat.set()
    return session.job(job_id)


def _user_error(exc: BaseException) -> bool:
    """Errors a user causes and fixes (a missing file, bad data or parameters, a step run
    before the one it needs, a loss gone NaN), whose one-line message is the whole story."""
    from engine.data.errors import DataError

    kinds: tuple[type, ...] = (DataError, ParamError, FileNotFoundError)
    train = sys.modules.get("engine.train")  # loaded only if the step trained: no torch import here
    if train is not None:
        kinds += (train.TrainingError,)
    return isinstance(exc, kinds)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _heartbeat(session_path: Path, job_id: str, stop: threading.Event) -> None:
    # its own connection: sqlite connections are not shared across threads here
    s = Session(session_path, create=False)
    try:
        while not stop.wait(HEARTBEAT_S):
            try:
                s.update_job(job_id, heartbeat=time.time())
            except SessionError:
                pass  # a busy store must not kill the job; the next beat retries
    finally:
        s.close()


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def reconcile(session: Session) -> list[str]:
    """Mark jobs whose worker is gone as interrupted; return their ids."""
    if session.readonly:
        return []
    gone = []
    now = time.time()
    host = os.uname().nodename
    for job in session.jobs(ACTIVE_STATES):
        if job.host and job.host != host:
            continue  # another machine's job: only its own host can judge it
        if job.pid is None:  # created, not launched yet: give the launcher time
            gone_now = job.state == "queued" and now - job.created > STALE_AFTER_S
        else:
            stale = job.heartbeat is not None and now - job.heartbeat > STALE_AFTER_S
            gone_now = stale or not _alive(job.pid)
        if gone_now:
            session.finish_job(job.id, "interrupted",
                               error="the worker process ended without finishing the job")
            gone.append(job.id)
    return gone


def cancel(session: Session, job_id: str) -> bool:
    """Ask a running job to stop at its next safe point (SIGTERM to its process group)."""
    job = session.job(job_id)
    if not job.active:
        return False
    session.add_event(job_id, "log", {"message": "cancel requested", "level": "warning"})
    if job.pid and _alive(job.pid):
        try:
            os.killpg(job.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            os.kill(job.pid, signal.SIGTERM)
        return True
    reconcile(session)
    return False


def resume(session: Session, job_id: str) -> str:
    """Start a new job for the steps an interrupted/cancelled/failed job had not finished."""
    job = session.job(job_id)
    if job.active:
        raise SessionError(f"job {job_id} is still {job.state}")
    done = {e.payload.get("step") for e in session.events(job_id, kinds=("step",))}
    current = job.current_step
    remaining = [s for s in job.steps if s == current or s not in done]
    new_id = session.create_job(job.analysis, remaining or job.steps, job.params, resume_of=job_id)
    launch(session, new_id)
    return new_id


def find_job(root: Path, job_id: str) -> tuple[str, Job]:
    """Find a job by id across the sessions under ``root``."""
    from engine.session import list_sessions

    for name in list_sessions(root):
        s = Session(root / name, create=False)
        try:
            return name, s.job(job_id)
        except SessionError:
            continue
        finally:
            s.close()
    raise SessionError(f"no job {job_id!r} in any session under {root}")
