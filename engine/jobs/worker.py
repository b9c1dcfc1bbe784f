"""Entry point of a detached job process: ``python -m engine.jobs.worker SESSION_DIR JOB_ID``."""

from __future__ import annotations

import signal
import sys
import threading

from engine import distributed
from engine.jobs.follower import run_follower
from engine.jobs.runner import run_job
from engine.session import Session, SessionError


def main(argv: list[str] | None = None) -> int:
    session_dir, job_id = (argv or sys.argv[1:])[:2]
    cancel = threading.Event()
    # SIGTERM = cancel at the next safe point; a hang-up must not end the job
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        session = Session(session_dir, create=False)
    except SessionError as exc:  # one line in the job's log: reconcile reports it
        print(f"{job_id}: SessionError: {exc}", file=sys.stderr, flush=True)
        return 1
    if distributed.env_rank() > 0:  # a torchrun rank other than 0: the job is rank 0's
        try:
            ok = run_follower(session, job_id, cancel)
        finally:
            distributed.shutdown()
            session.close()
        return 0 if ok else 1
    try:
        job = run_job(session, job_id, cancel=cancel)
    except SessionError as exc:  # the store refused the job's start (a full disk)
        print(f"{job_id}: SessionError: {exc}", file=sys.stderr, flush=True)
        return 1
    distributed.shutdown()
    session.close()
    return 0 if job.state == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
