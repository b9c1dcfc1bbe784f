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
takes its inputs from an earlier job, which its log names.
"""

from __future__ import annotations

import contextlib
import errno
import gc
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
from engine.atomic import clean_orphans
from engine.jobs import folders, liveness
from engine.jobs.liveness import Liveness
from engine.jobs.reporter import SessionReporter
from engine.reporting import Cancelled
from engine.session import ACTIVE_STATES, Job, Session, SessionError

HEARTBEAT_S = 2.0  # for the eye (the TUI shows a silent job); liveness never reads it
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
    upstream = set(spec.params(folders.needed_steps(order, steps)))
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
        folders.note_missing(workdir, analysis, folders.needed_steps(order, steps))
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
    from engine.data.errors import DataError

    kinds: tuple[type, ...] = (DataError, ParamError, FileNotFoundError)
    train = sys.modules.get("engine.train")  # loaded only if the step trained: no torch import here
    if train is not None:
        kinds += (train.TrainingError,)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:  # "No space left on device"
        return True
    return isinstance(exc, (*kinds, SessionError))


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
    state = liveness.check(job.pid, job.pid_start, job.host) if job.pid else None
    if job.state == "queued" and state is not Liveness.ELSEWHERE and not session.readonly:
        # not started yet: its end is recorded now, and a worker that gets to start finds it
        # ended and runs nothing (a SIGTERM before its handler is set would only kill it)
        session.finish_job(job_id, "cancelled")
        if state is Liveness.ALIVE:
            _signal(job.pid)
        return True
    if state is Liveness.ELSEWHERE:
        raise SessionError(f"job {job_id} runs on host {job.host!r}; cancel it there")
    if state is not Liveness.ALIVE:
        reconcile(session)
        return False
    if not session.readonly:
        with contextlib.suppress(SessionError):  # the signal matters; the note is a courtesy
            session.add_event(job_id, "log", {"message": "cancel requested", "level": "warning"})
    if not _signal(job.pid):
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
