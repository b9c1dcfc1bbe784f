"""Faults, part 4: diverging maths.

* A training loss that turns NaN, and a (simulated) CUDA out-of-memory, end the job through
  the job runner as ``failed`` with one line that names the step (and the batch size to
  lower); the metric events and the last good checkpoint before it are kept and load.
* SINDy rollouts that blow up are marked with the time of divergence, the others in the batch
  carry on, and a rollout never hangs (``max_wall_time``; pytest timeouts on every test).
* Ill-conditioned libraries (duplicated, constant and badly scaled states) do not crash the
  fit, give finite coefficients, and their rollouts stay bounded in time.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine import analyses
from engine.jobs import runner

analyses.register("fault", "tests.fault_analysis")


def _train_losses(session, job_id) -> list[int]:
    return [e.payload["step"] for e in session.events(job_id, kinds=("metric",))
            if e.payload["name"] == "train_loss"]


@pytest.mark.timeout(120)
def test_nan_loss_fails_the_job_with_its_step_and_keeps_the_checkpoint(session):
    import torch

    job_id = runner.submit(session, "fault", ["train"], {"steps": 30, "nan_at": 7})
    job = runner.run_job(session, job_id)
    assert job.state == "failed"
    assert "\n" not in job.error
    assert job.error.startswith("NonFiniteLoss: loss became NaN at step 7;"), job.error
    assert "last good checkpoint: step 6" in job.error
    assert _train_losses(session, job_id) == [1, 2, 3, 4, 5, 6]  # the curve up to the NaN is kept
    ckdir = session.job_dir(job_id) / "train" / "checkpoints"
    payload = torch.load(ckdir / "step_00000006.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in payload["model_state"].values())
    assert not (ckdir / "step_00000007.pt").exists()


@pytest.mark.timeout(120)
def test_out_of_memory_names_the_batch_size_to_lower(session):
    job_id = runner.submit(session, "fault", ["train"], {"steps": 30, "oom_at": 5, "batch_size": 32})
    job = runner.run_job(session, job_id)
    assert job.state == "failed" and "\n" not in job.error
    assert "out of" in job.error and "memory at step 5 with batch size 32" in job.error, job.error
    assert "batch_size=16" in job.error and "last good checkpoint: step 4" in job.error
    assert _train_losses(session, job_id) == [1, 2, 3, 4]


def _blowup_model():
    """x' = x²: from x0 > 0 it reaches infinity at t = 1/x0; from x0 < 0 it decays."""
    from engine.sindy.model import Sindy

    return Sindy.from_coefficients(np.array([[0.0, 0.0, 1.0]]), degree=2)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("method", ["rk4", "adaptive"])
def test_diverging_rollout_is_marked_with_its_time(method):
    model = _blowup_model()
    x0 = np.array([[1.0], [-1.0], [0.5]])  # blows up at t=1; decays; would blow up at t=2
    t = np.linspace(0.0, 1.5, 151)
    t0 = time.perf_counter()
    res = model.simulate(x0, t, method=method)
    assert time.perf_counter() - t0 < 10
    assert res.diverged.tolist() == [True, False, False]
    assert 0.98 <= res.divergence_time[0] <= 1.02, res.divergence_time
    assert np.isnan(res.divergence_time[1:]).all()
    after = t > res.divergence_time[0]
    assert np.isnan(res.x[0, after]).all() and np.isfinite(res.x[0, t < 0.95]).all()
    assert np.isfinite(res.x[1:]).all()  # the others carried on to the end
    np.testing.assert_allclose(res.x[1, :, 0], -1.0 / (1.0 + t), rtol=1e-3)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("method", ["rk4", "adaptive"])
def test_a_long_rollout_stops_at_the_wall_clock_limit(method):
    model = _blowup_model()
    t = np.linspace(0.0, 1e4, 2_000_001)
    t0 = time.perf_counter()
    res = model.simulate(np.array([-1.0]), t, method=method, max_wall_time=0.3)
    assert time.perf_counter() - t0 < 8
    assert res.timed_out and res.completed_time < t[-1]


@pytest.mark.timeout(60)
def test_ill_conditioned_libraries_do_not_crash_the_fit():
    from engine.sindy.model import Sindy

    tt = np.linspace(0, 10, 2000)
    s, c = np.sin(tt), np.cos(tt)
    cases = {
        "duplicated state": np.stack([s, s, c], 1),
        "constant state": np.stack([s, c, np.full_like(s, 3.0)], 1),
        "scales 1e-4..1e4": np.stack([1e4 * s, 1e-4 * c], 1),
        "nearly collinear": np.stack([s, s + 1e-9 * c], 1),
    }
    for name, x in cases.items():
        model = Sindy(degree=3, threshold=0.05).fit(x, t=tt[1] - tt[0])
        assert np.isfinite(model.coef_).all(), name
        res = model.simulate(x[0], tt[:200], max_wall_time=5)
        assert res.x.shape == (200, x.shape[1]), name
        assert res.diverged.all() or np.isfinite(res.x).all(), name  # diverged is marked, not hidden
