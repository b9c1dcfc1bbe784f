"""A torchrun rank other than 0: the job's training steps, nothing written to the session.

Rank 0 is the job (:func:`engine.jobs.runner.run_job`); the other ranks run only the
steps that train in parallel, so that every rank takes part in the gradient all-reduce.
The DDP primitives they use are :mod:`engine.distributed`'s.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from engine import analyses
from engine.analyses.base import StepContext
from engine.distributed import env_rank
from engine.reporting import Cancelled, NullReporter
from engine.session import Session


class FollowerContext(StepContext):
    def checkpoint_dir(self, name: str) -> Path:
        # emptying a fresh run's folder is rank 0's job: two ranks racing rmtree
        # against rank 0's first checkpoint could lose it
        d = self.workdir / name
        d.mkdir(parents=True, exist_ok=True)
        return d


def run_follower(session: Session, job_id: str, cancel: threading.Event | None = None) -> bool:
    """This rank's share of job ``job_id``: the steps whose defaults take ``nproc``.

    Returns True when every step ran; a cancel or a failure is rank 0's to record.
    """
    job = session.job(job_id)
    spec = analyses.get(job.analysis)
    # only the steps that train in parallel (they take ``nproc``): the others (data,
    # evaluation, figures) are rank 0's; a DDP step waits in a barrier for what they make
    steps = [n for n in job.steps if "nproc" in spec.step(n).defaults]
    scratch = tempfile.TemporaryDirectory(prefix=f"wb-rank{env_rank()}-")
    rep = NullReporter(scratch.name, cancel=cancel)
    try:
        for name in steps:
            # session=None: tables and equations are rank 0's to store
            ctx = FollowerContext(workdir=session.job_dir(job), reporter=rep, session=None,
                                  job_id=job_id, resuming=job.resume_of is not None)
            spec.step(name).load()(ctx, dict(job.params))
    except Cancelled:
        return False
    finally:
        scratch.cleanup()
    return True
