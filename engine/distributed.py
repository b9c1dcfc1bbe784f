"""Multi-GPU (or multi-process CPU) training with DistributedDataParallel under torchrun.

A job whose parameters say ``nproc=N`` (N > 1) is launched by the job runner as

    python -m torch.distributed.run --standalone --nproc-per-node N -m engine.jobs.worker SESSION JOB

Every rank runs the same steps.  Rank 0 is the job: it writes the job's state, heartbeat
and events, so the TUI follows it like any other job.  The other ranks run the steps with
a reporter that says nothing (:func:`engine.jobs.follower.run_follower`).  A step that trains in parallel does::

    info = distributed.init()                  # no-op (world of 1) outside torchrun
    rep = distributed.reporter(ctx.reporter)   # rank 0 reports; cancel is agreed by all ranks
    model = distributed.wrap(model.to(info.device))
    part = distributed.shard(n_samples)        # this rank's contiguous slice of the time axis

``engine.train.fit`` runs unchanged on the wrapped model with that reporter (pass
``TrainConfig(device=str(info.device))`` and ``workdir=distributed.workdir(path)``): rank 0
writes the checkpoints and events, the other ranks checkpoint to a private temporary
folder.  Ranks > 0 run only the steps whose defaults have ``nproc``; such a step calls
:func:`barrier` after init, so the others wait for rank 0's earlier steps (data) first.

On a GPU server each rank takes ``cuda:LOCAL_RANK`` and the NCCL backend; on CPU, gloo.
Cancel (SIGTERM to the job's process) reaches rank 0; ``reporter.cancelled`` is an
all-reduce of every rank's flag, so all ranks stop at the same safe point instead of one
of them waiting for the others forever in the next gradient all-reduce.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None  # "nccl" / "gloo" once initialised
    device: Any = None  # torch.device for this rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_rank() -> int:
    """This process's rank from torchrun's environment (0 outside torchrun)."""
    return int(os.environ.get("RANK", "0"))


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "LOCAL_RANK" in os.environ


def torchrun_command(nproc: int, module: str, *args: str) -> list[str]:
    """The command that runs ``python -m module args`` on ``nproc`` local ranks.

    ``--standalone`` picks a free rendezvous port on this host, so several jobs never clash.
    """
    if int(nproc) < 2:
        raise ValueError(f"nproc must be >= 2 for torchrun, got {nproc}")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={int(nproc)}", "-m", module, *args]


_INFO: DistInfo | None = None


def init(backend: str | None = None) -> DistInfo:
    """Join the process group torchrun set up (idempotent); a world of 1 outside torchrun."""
    global _INFO
    import torch
    import torch.distributed as dist

    if _INFO is not None:
        return _INFO
    if not under_torchrun():
        from engine.device import pick_device  # the one device helper

        _INFO = DistInfo(device=pick_device("auto"))
        return _INFO
    local_rank = int(os.environ["LOCAL_RANK"])
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"rank {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                               "set nproc to at most the number of GPUs")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    _INFO = DistInfo(rank=dist.get_rank(), local_rank=local_rank, world_size=dist.get_world_size(),
                     backend=backend, device=device)
    return _INFO


def info() -> DistInfo:
    return _INFO or DistInfo()


def shutdown() -> None:
    """Leave the process group (the worker does it when the job ends)."""
    global _INFO
    if _INFO is not None and _INFO.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    _INFO = None


def wrap(model, **kw: Any):
    """``model`` in DistributedDataParallel when there is more than one rank, else as is."""
    i = info()
    if not i.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    if i.device is not None and i.device.type == "cuda":
        kw.setdefault("device_ids", [i.local_rank])
        kw.setdefault("output_device", i.local_rank)
    return DDP(model, **kw)


def unwrap(model):
    """The plain module inside a DDP wrapper (for checkpoints and evaluation)."""
    return getattr(model, "module", model)


def shard(n: int, rank: int | None = None, world_size: int | None = None) -> slice:
    """This rank's contiguous part of ``range(n)``: ``n // world_size`` samples each.

    Time is split in blocks, not strided, so each rank trains on whole stretches of the
    recording.  Every rank gets the same count (the last ``n % world_size`` samples are
    left out, as DistributedSampler pads instead): ranks with different batch counts would
    leave one waiting in a gradient all-reduce that the others never join.  Give every
    rank the *whole* validation set, so that early stopping decides alike everywhere.
    """
    i = info()
    rank = i.rank if rank is None else rank
    world_size = i.world_size if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    if n < world_size:
        raise ValueError(f"cannot split {n} samples over {world_size} ranks")
    k = n // world_size
    return slice(rank * k, (rank + 1) * k)


def check_nproc(nproc: Any, reporter=None) -> DistInfo:
    """Join the ranks for a step that asks for ``nproc``; a clear error for a bad value, and
    a warning when the step runs in a single process anyway (the job was not launched through
    torchrun: ``--headless`` in the foreground, say)."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be a whole number >= 1 (processes, one per GPU), got {nproc!r}")
    i = init()
    if nproc > 1 and not i.distributed and reporter is not None:
        reporter.log(f"nproc={nproc} but this job runs in one process (start it detached, "
                     "e.g. --detach, so that torchrun launches the ranks); training on one", level="warning")
    return i


def barrier() -> None:
    """Wait until every rank gets here (no-op in a world of 1)."""
    if info().distributed:
        import torch.distributed as dist

        dist.barrier()


def workdir(path: Path) -> Path:
    """Where this rank's training loop keeps its checkpoints.

    Rank 0: ``path`` itself.  Other ranks: a private folder holding copies of the step
    checkpoints under ``path`` (all of them: a torn newest one falls back alike), so that every rank resumes from the same step (a rank
    that started over would run more steps than the others and wait forever in an
    all-reduce) while only rank 0 writes in ``path``.  Call it after a :func:`barrier` that
    follows rank 0's clean-up of ``path``.
    """
    path = Path(path)
    if info().is_main:
        return path
    private = Path(tempfile.mkdtemp(prefix=f"wb-rank{info().rank}-train-"))
    atexit.register(shutil.rmtree, private, True)
    (private / "checkpoints").mkdir()
    # every step file the training loop wrote (it picks the one to resume from itself);
    # the name pattern is engine.train's, which this module sits below and cannot import
    for ck in sorted((path / "checkpoints").glob("step_*.pt")):
        shutil.copy2(ck, private / "checkpoints" / ck.name)
    return private


def any_rank(flag: bool) -> bool:
    """True on every rank if it is true on any (a collective: every rank must call it)."""
    i = info()
    if not i.distributed:
        return bool(flag)
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=i.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


class DistributedReporter:
    """Rank 0 forwards everything to the job's reporter; other ranks stay silent.

    ``cancelled`` is agreed by all ranks (see :func:`any_rank`), so it must be read at the
    same points on every rank, which holds when all ranks run the same loop.
    Other ranks write their checkpoints to a private folder, never over rank 0's.
    """

    def __init__(self, inner, dist_info: DistInfo | None = None):
        self.inner = inner
        self.info = dist_info or info()
        self._private: Path | None = None

    def _main(self) -> bool:
        return self.info.is_main

    def progress(self, done: int, total: int, message: str = "", **extra: Any) -> None:
        if self._main():
            self.inner.progress(done, total, message, **extra)

    def metric(self, name: str, value: float, step: int | None = None, **extra: Any) -> None:
        if self._main():
            self.inner.metric(name, value, step, **extra)

    def log(self, message: str, level: str = "info") -> None:
        if self._main():
            self.inner.log(message, level)

    def artifact(self, name: str, path: Path, kind: str = "file") -> None:
        if self._main():
            self.inner.artifact(name, path, kind)

    def artifact_dir(self) -> Path:
        if self._main():
            return self.inner.artifact_dir()
        if self._private is None:
            self._private = Path(tempfile.mkdtemp(prefix=f"wb-rank{self.info.rank}-"))
            weakref.finalize(self, shutil.rmtree, self._private, True)
        return self._private

    @property
    def cancelled(self) -> bool:
        return any_rank(self.inner.cancelled)


def reporter(inner) -> DistributedReporter | Any:
    """The reporter a step should use while training under torchrun (``inner`` outside it)."""
    return DistributedReporter(inner) if info().distributed else inner


__all__ = ["DistInfo", "DistributedReporter", "any_rank", "barrier", "check_nproc", "env_rank", "info", "init", "reporter",
           "shard", "shutdown", "torchrun_command", "under_torchrun", "unwrap", "workdir", "wrap"]
