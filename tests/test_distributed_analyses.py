"""A real analysis (lds) trained under DDP: 2 gloo ranks on CPU, launched by the job runner."""

from __future__ import annotations

import numpy as np
import pytest

from engine.analyses.lds import ANALYSIS as LDS, steps as lds
from engine.analyses.base import StepContext
from engine.reporting import RecordingReporter
from tests.helpers.process import wait_for

SMALL = {"trials": 40, "neurons": 60, "steps": 60, "latents": 3, "hidden": 3, "iterations": 60,
         "heldout_trials": 10, "readout_iterations": 30, "log_every": 10, "device": "cpu"}


def _reference(tmp_path):
    """The same run in one process on all 30 training trials (nproc=1)."""
    import torch

    torch.set_num_threads(1)
    p = {**LDS.defaults(), **SMALL}
    rec = RecordingReporter(tmp_path)
    ctx = StepContext(workdir=tmp_path, reporter=rec)
    lds.generate(ctx, p)
    return lds.train(ctx, p), rec, ctx, p


def test_lds_trains_under_torchrun_like_one_process(session, monkeypatch, tmp_path):
    from engine.jobs import runner
    from engine.models.rnn import BiRNN
    from engine.train import load_checkpoint

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    job_id = runner.start(session, "lds", ["generate", "train", "evaluate"], {**SMALL, "nproc": 2})
    ref, rec, ctx, p = _reference(tmp_path)  # while the job runs
    job = wait_for(lambda: (j := session.job(job_id)).state not in ("queued", "running") and j,
                   timeout=120, what="the 2-rank lds job to end")
    log = (session.artifacts / "logs" / f"{job_id}.log").read_text()
    assert job.state == "finished", (job.error, log[-3000:])
    r = job.result
    assert r["train_ranks"] == 2 and "co_bps" in r  # rank 0 went on to evaluate alone

    # 2 ranks x 15 trials, gradients averaged = the full-batch gradient of one process
    assert r["cost_first"] == pytest.approx(ref["cost_first"], rel=1e-6)
    assert r["cost_last"] == pytest.approx(ref["cost_last"], rel=1e-4)
    assert r["cost_last"] < r["cost_first"] - 0.01  # and it did learn
    assert r["readout_cost_last"] == pytest.approx(ref["readout_cost_last"], rel=1e-4)

    # rank 0 reported, once: as many losses as one process logs, one start line
    events = session.events(job_id)
    losses = [e.payload for e in events if e.kind == "metric" and e.payload["name"] == "train_loss"]
    assert [m["step"] for m in losses] == [e["step"] for e in rec.of("metric") if e["name"] == "train_loss"]
    starts = [e for e in events if e.kind == "log" and "training BiRNN" in e.payload["message"]]
    assert len(starts) == 1 and "2 ranks (gloo) of 15 trials" in starts[0].payload["message"]

    # the model file is the plain BiRNN (no DDP wrapper in it), with the trained weights
    model, payload = load_checkpoint(session.job_dir(job_id) / lds.TRAIN_DIR)
    ref_model, _ = load_checkpoint(tmp_path / lds.TRAIN_DIR)
    assert isinstance(model, BiRNN) and payload["step"] == SMALL["iterations"]
    for (k, v), (k2, v2) in zip(model.state_dict().items(), ref_model.state_dict().items()):
        assert k == k2 and np.allclose(v.numpy(), v2.numpy(), rtol=1e-3, atol=1e-5), k

    # in one process nproc=2 cannot take effect: a warning, not a silent single-rank run
    # (the finished run is resumed, so this is quick); a bad value is a clear error
    more = RecordingReporter(tmp_path)
    lds.train(StepContext(workdir=tmp_path, reporter=more), {**p, "nproc": 2})
    assert any("nproc=2 but this job runs in one process" in e["message"] for e in more.of("log"))
    with pytest.raises(ValueError, match="nproc must be a whole number >= 1"):
        lds.train(ctx, {**p, "nproc": 0})
