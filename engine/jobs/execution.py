"""Running a job's steps in this process (the worker's body, and ``--headless``): the
heartbeat, the parallel backend around the steps, a little disk set aside so that a full
disk still lets the job record why it failed, and the one end record."""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from engine import analyses, parallel
from engine.analyses.base import StepContext
from engine.atomic import clean_orphans
from engine.jobs import folders, liveness
from engine.jobs.reporter import SessionReporter
from engine.reporting import Cancelled
from engine.session import Job, Session, SessionError

HEARTBEAT_S = 2.0  # for the eye (the TUI shows a silent job); liveness never reads it


def run_job(session: Session, job_id: str, *, echo: Callable[[str, dict], None] | None = None,
            cancel: threading.Event | None = None) -> Job:
    """Run a job's steps in this process (the worker's body, and ``--headless``)."""
    session.patient = True  # a busy store delays this job's writes, never fails it
    job = session.job(job_id)
    spec = analyses.get(job.analysis)
    workdir = session.job_dir(job)
    workdir.mkdir(parents=True, exist_ok=True)
    cancel = cancel or threading.Event()
    reporter = SessionReporter(session, job_id, workdir, cancel=cancel, echo=echo)
    pid = os.getpid()
    if not session.start_job(job_id, pid=pid, pid_start=liveness.start_time(pid), started=time.time(),
                             heartbeat=time.time(), host=liveness.host()):
        return session.job(job_id)  # ended (cancelled, interrupted) before it started
    reserve = _reserve(session.artifacts / "logs" / f"{job_id}.reserve")
    stop_beat = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(session.path, job_id, stop_beat), daemon=True)
    beat.start()
    results: dict[str, Any] = {}
    # parallel loops of every step go to the session's backend; a dask/ray cluster
    # starts on first use and is closed when the job ends
    scale_out = contextlib.ExitStack()
    try:
        # no write is in flight in this folder now: temp files of killed writes can go
        clean_orphans(workdir)
        said = folders.inputs_line(workdir)  # logged under the first step's name
        scale_out.enter_context(parallel.session_backend(session, reporter))
        for name in job.steps:
            if cancel.is_set():
                raise Cancelled()
            session.update_job(job_id, current_step=name)
            reporter.start_step(name)
            if said is not None:
                reporter.log(said[1], level=said[0])
                said = None
            ctx = StepContext(workdir=workdir, reporter=reporter, session=session, job_id=job_id,
                              resuming=job.resume_of is not None,
                              inputs_from=tuple(sorted(_lineage(session, job, workdir))))
            before = folders.snapshot(workdir)
            out = spec.step(name).load()(ctx, dict(job.params)) or {}
            folders.record_step(workdir, name, job_id, before)
            if "device" in out:
                session.update_job(job_id, device=str(out["device"]))
            results.update(out)
            session.update_job(job_id, result=results)
        end, error = "finished", None
    except (Cancelled, KeyboardInterrupt):
        end, error = "cancelled", None
    except Exception as exc:  # a step failed: record one clear line, keep the traceback in the log
        _release(reserve)  # a full disk: room for the log line and the end record
        with contextlib.suppress(OSError):
            if not _user_error(exc):  # bad input says all in its line; a bug needs its traceback
                traceback.print_exc()
            else:  # the cause stays in the job's log too, not only in the store
                print(f"{job_id}: {_one_line(exc)}", file=sys.stderr, flush=True)
        end, error = "failed", _one_line(exc)
    finally:
        scale_out.close()
        stop_beat.set()
        _release(reserve)
    # recorded here, with the exception gone: its frames can hold a half-written file open,
    # whose space a full disk needs back for this very record
    gc.collect()
    _end(session, job_id, end, error=error, result=results)
    return session.job(job_id)


RESERVE_BYTES = 256 * 1024


def _reserve(path: Path) -> Path | None:
    """Set aside a little disk while the job runs (a ballast file).  If the disk fills, the
    job frees it to record why it failed — in its log and in the store — instead of dying
    silent with the cause lost."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            else:  # pragma: no cover - macOS
                os.write(fd, b"\0" * RESERVE_BYTES)
        finally:
            os.close(fd)
        return path
    except OSError:  # already full: nothing to set aside
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def _release(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def _end(session: Session, job_id: str, state: str, *, error: str | None = None,
         result: dict | None = None, tries: int = 6) -> None:
    """Record the job's end.  A full disk can refuse even that: say so in the log (where
    :func:`reconcile` finds the cause once this process is gone) and try again a few times,
    since the failed write that filled the disk usually frees its space as it fails."""
    for attempt in range(tries):
        try:
            session.finish_job(job_id, state, error=error, result=result)
            return
        except SessionError as exc:
            with contextlib.suppress(OSError):  # the log may be on the full disk too
                print(f"{job_id}: could not record the end ({state}"
                      f"{': ' + error if error else ''}): {exc}", file=sys.stderr, flush=True)
            if attempt + 1 < tries:
                time.sleep(0.2 * 2**attempt)


def _lineage(session: Session, job: Job, workdir: Path) -> set[str]:
    """The jobs whose stored results (equations, tables) a step of ``job`` may read: those
    that made the files in its folder, and the jobs it resumes."""
    ids = folders.producers(workdir) | {job.id}
    prev = job.resume_of
    while prev and prev not in ids:
        ids.add(prev)
        try:
            prev = session.job(prev).resume_of
        except SessionError:
            break
    return ids


def _user_error(exc: BaseException) -> bool:
    """Errors a user causes and fixes (a missing file, bad data or parameters, a step run
    before the one it needs, a loss gone NaN), whose one-line message is the whole story."""
    from engine.errors import UserError

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:  # "No space left on device"
        return True
    return isinstance(exc, (UserError, FileNotFoundError))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _heartbeat(session_path: Path, job_id: str, stop: threading.Event) -> None:
    # its own connection: sqlite connections are not shared across threads here
    s = Session(session_path, create=False)
    s.patient = True
    try:
        while not stop.wait(HEARTBEAT_S):
            try:
                s.update_job(job_id, heartbeat=time.time())
            except SessionError:
                pass  # a full disk must not kill the job; the next beat retries
    finally:
        s.close()
