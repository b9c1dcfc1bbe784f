"""engine.distributed: DDP under torchrun on CPU (gloo, 2 ranks), rank-0 reporting, agreed cancel."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from engine import distributed
from engine.analyses.base import Analysis, Step
from engine.reporting import Cancelled, RecordingReporter
from tests.helpers.process import wait_for

STEPS, LR = 6, 0.1


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)).astype(np.float32)
    y = X @ np.array([1.5, -2.0, 0.5], dtype=np.float32) + 0.3
    return X, y[:, None]


def _train(X, y, reporter, cancel_event=None, cancel_at=None):
    """Full-batch SGD on MSE.  Under DDP each rank sees its shard and the gradients are
    averaged, which for equal shards is exactly the full-batch gradient: same weights."""
    import torch

    torch.manual_seed(0)
    model = distributed.wrap(torch.nn.Linear(3, 1))
    part = distributed.shard(len(X))
    xs, ys = torch.as_tensor(X[part]), torch.as_tensor(y[part])
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    done = 0
    for step in range(STEPS):
        if step == cancel_at:
            cancel_event.set()
        if reporter.cancelled:
            break
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(xs), ys)
        loss.backward()
        opt.step()
        done += 1
        reporter.metric("loss", loss.item(), step=step + 1, rank=distributed.info().rank)
    m = distributed.unwrap(model)
    return np.concatenate([m.weight.detach().numpy().ravel(), m.bias.detach().numpy()]), done


def _reference():
    X, y = _data()
    w, done = _train(X, y, RecordingReporter())  # a world of 1: plain training
    assert done == STEPS
    return w


def _fit(X, y, reporter, workdir=None):
    """engine.train.fit, full batch per rank, so DDP must equal one process on all the data."""
    import torch

    from engine.train import TrainConfig, fit

    torch.manual_seed(0)
    model = distributed.wrap(torch.nn.Linear(3, 1))
    part = distributed.shard(len(X))
    xs, ys = torch.as_tensor(X[part]), torch.as_tensor(y[part])
    cfg = TrainConfig(steps=STEPS, lr=LR, batch_size=len(xs), loss="mse", clip_grad=None, amp=False,
                      device=str(distributed.info().device or "cpu"), val_every=3, log_every=1,
                      restore_best=False, checkpoint_every=3)
    from engine.train import TensorBatches

    fit(model, TensorBatches(xs, ys, batch_size=len(xs), shuffle=False), (torch.as_tensor(X), torch.as_tensor(y)),
        cfg, reporter=reporter, workdir=workdir, resume=False)
    m = distributed.unwrap(model)
    return np.concatenate([m.weight.detach().numpy().ravel(), m.bias.detach().numpy()])


def _reference_untrained():
    import torch

    torch.manual_seed(0)
    m = torch.nn.Linear(3, 1)
    return np.concatenate([m.weight.detach().numpy().ravel(), m.bias.detach().numpy()])


def test_shard_and_command():
    # equal counts on every rank (else one rank waits in an all-reduce the others never join)
    assert [distributed.shard(10, r, 3) for r in range(3)] == [slice(0, 3), slice(3, 6), slice(6, 9)]
    assert distributed.shard(5) == slice(0, 5)  # outside torchrun: everything
    with pytest.raises(ValueError, match="cannot split 1 samples over 2"):
        distributed.shard(1, 0, 2)
    cmd = distributed.torchrun_command(2, "engine.jobs.worker", "S", "J")
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=2" in cmd and cmd[-4:] == ["-m", "engine.jobs.worker", "S", "J"]
    with pytest.raises(ValueError, match="nproc must be >= 2"):
        distributed.torchrun_command(1, "x")
    assert not distributed.under_torchrun() and distributed.info().world_size == 1


def test_reporter_forwards_on_rank_0_only():
    for rank in (0, 1):
        inner = RecordingReporter()
        rep = distributed.DistributedReporter(inner, distributed.DistInfo(rank=rank, world_size=2))
        rep.progress(1, 2, "x")
        rep.metric("loss", 0.5, step=1)
        rep.log("hello")
        assert len(inner.events) == (3 if rank == 0 else 0)
        assert (rep.artifact_dir() == inner.artifact_dir()) == (rank == 0)  # rank 1: private folder
        assert not rep.cancelled
        inner.cancel_event.set()
        assert rep.cancelled  # (a world of 1 in this process: the all-reduce is the flag itself)


def test_workdir_of_a_later_rank_is_a_private_copy_of_the_step_checkpoints(tmp_path, monkeypatch):
    ckdir = tmp_path / "train" / "checkpoints"
    ckdir.mkdir(parents=True)
    for name in ("step_2.pt", "step_10.pt", "step_12.pt.tmp", "notes.txt"):
        (ckdir / name).write_text(name)
    assert distributed.workdir(tmp_path / "train") == tmp_path / "train"  # rank 0: the folder itself
    monkeypatch.setattr(distributed, "info", lambda: distributed.DistInfo(rank=1, world_size=2))
    private = distributed.workdir(tmp_path / "train")
    assert private != tmp_path / "train" and private.is_dir()
    # the step files (the loop picks the one to resume from), not torn temporaries or others
    assert sorted(p.name for p in (private / "checkpoints").iterdir()) == ["step_10.pt", "step_2.pt"]
    assert (private / "checkpoints" / "step_10.pt").read_text() == "step_10.pt"
    (private / "checkpoints" / "step_10.pt").write_text("rank 1's")
    assert (ckdir / "step_10.pt").read_text() == "step_10.pt"  # rank 0's files untouched


# ---------------------------------------------------------------- a job launched through torchrun


def _ddp_step(ctx, p):
    import torch

    torch.set_num_threads(1)
    info = distributed.init()
    X, y = _data()
    w, done = _train(X, y, distributed.reporter(ctx.reporter))
    if done < STEPS:
        raise Cancelled()
    # rank 1 alone asks to cancel at step 2: every rank must stop there (none left waiting
    # in the next gradient all-reduce); this run reports nowhere
    local = RecordingReporter()
    _, stopped = _train(X, y, distributed.reporter(local), local.cancel_event,
                        cancel_at=2 if info.rank == 1 else None)
    fit_w = _fit(X, y, distributed.reporter(ctx.reporter))  # the training loop every analysis uses
    return {"world_size": info.world_size, "rank": info.rank, "backend": info.backend,
            "weights": w.tolist(), "stopped_at": stopped, "fit_weights": fit_w.tolist()}


ANALYSIS = Analysis(name="ddptest", title="DDP test", steps=(
    Step("train", "tests.test_distributed:_ddp_step", "tiny DDP regression", {"nproc": 2}),))


def test_job_with_nproc_runs_under_torchrun_and_rank0_reports(session, monkeypatch, tmp_path):
    """Two gloo ranks on CPU, launched by the job runner through torchrun like a GPU job."""
    from engine.jobs import runner

    monkeypatch.setenv("WORKBENCH_ANALYSES", "fake=tests.fake_analysis,ddptest=tests.test_distributed")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from engine import analyses

    analyses.register("ddptest", "tests.test_distributed")
    job_id = runner.start(session, "ddptest")
    job = wait_for(lambda: (j := session.job(job_id)).state not in ("queued", "running") and j,
                   timeout=120, what="the torchrun job to end")
    log = (session.artifacts / "logs" / f"{job_id}.log").read_text()
    assert job.state == "finished", (job.error, log[-2000:])
    r = job.result
    assert r["world_size"] == 2 and r["rank"] == 0 and r["backend"] == "gloo"
    ref = _reference()
    np.testing.assert_allclose(r["weights"], ref, rtol=1e-5, atol=1e-6)  # DDP == full batch
    assert not np.allclose(ref, _reference_untrained())  # and training did move the weights
    assert r["stopped_at"] == 2  # rank 1's cancel reached rank 0
    metrics = [e.payload for e in session.events(job_id, kinds=("metric",))]
    ours = [m for m in metrics if m["name"] == "loss"]
    assert len(ours) == STEPS and {m["rank"] for m in ours} == {0}  # rank 0 alone reports

    X, y = _data()
    rec = RecordingReporter()
    fit_ref = _fit(X, y, rec, workdir=tmp_path / "ref")
    np.testing.assert_allclose(r["fit_weights"], fit_ref, rtol=1e-5, atol=1e-6)  # fit under DDP too
    n_ref = sum(e["name"] == "train_loss" for e in rec.of("metric"))
    assert n_ref > 0 and sum(m["name"] == "train_loss" for m in metrics) == n_ref  # not twice
