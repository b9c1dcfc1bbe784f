"""The lds analysis on an NLB-style NWB file: NLB's splits, a submission nlb_tools scores as we do."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytest.importorskip("pynwb")

from engine.analyses.lds import ANALYSIS as LDS, steps as lds  # noqa: E402
from engine.analyses.base import StepContext  # noqa: E402
from engine.data import nlb  # noqa: E402
from engine.data.lds_gen import LDSConfig, simulate  # noqa: E402


@pytest.fixture()
def one_thread():
    """A tiny RNN on a busy 2-core machine: torch's second thread only spins (0.26 s a step vs 0.01 s)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_lds_trains_and_scores_on_an_nlb_file(tmp_path, one_thread):
    d = simulate(LDSConfig(seed=3, trials=24, neurons=36, steps=30, latents=3))
    heldout = np.zeros(36, bool)
    heldout[::3] = True  # 12 held out, 24 held in: not the seed's halves
    splits = ["train"] * 18 + ["val"] * 6
    path = nlb.write_nlb_nwb(tmp_path / "dataset.nwb", d.spikes, heldout, splits, behavior=d.latents[:, :, :2])
    p = LDS.defaults()
    p.update(data=str(path), hidden=3, iterations=20, readout_iterations=5, bias_init="target", log_every=10,
             device="cpu", nlb_dataset="mc_rtt", behavior="hand_vel")
    ctx = StepContext(workdir=tmp_path / "job")
    trained = LDS.step("train").load()(ctx, dict(p))
    assert trained["n_train_trials"] == 18 and trained["val_cost_last"] is not None
    out = LDS.step("evaluate").load()(ctx, dict(p))
    assert out["eval_trials"] == "test"
    with h5py.File(out["nlb_submission"], "r") as f:
        g = f["mc_rtt"]
        assert g["train_rates_heldout"].shape == (18, 30, 12) and g["eval_rates_heldin"].shape == (6, 30, 24)
    with np.load(ctx.workdir / lds.PRED_FILE) as f:  # the rates are the model's, for the held-out neurons
        assert f["rates_heldout"].shape == (30, 24, 12)
    assert np.isnan(out["co_bps_true_rates"])  # a real file has no truth to score
    if "nlb_co_bps" not in out:
        pytest.skip("nlb_tools not installed: the submission was written but not scored")
    assert abs(out["nlb_co_bps"] - out["co_bps"]) < 1e-9
    assert -1.0 < out["nlb_vel_r2"] < 1.0  # the latents decoded from the model's rates, not a zero stand-in


def test_on_a_recording_nothing_is_generated_and_the_truth_step_says_why_it_has_nothing(tmp_path):
    """A whole run on a recording finishes: generate does not make synthetic data the steps
    would then mix with the file, and truth (nothing to score against) is skipped, not failed."""
    d = simulate(LDSConfig(seed=3, trials=8, neurons=12, steps=20, latents=2))
    heldout = np.zeros(12, bool)
    heldout[::3] = True
    path = nlb.write_nlb_nwb(tmp_path / "dataset.nwb", d.spikes, heldout, ["train"] * 6 + ["val"] * 2)
    p = {**LDS.defaults(), "data": str(path)}
    ctx = StepContext(workdir=tmp_path / "job")
    gen = LDS.step("generate").load()(ctx, dict(p))
    assert gen == {"data": str(path), "generated": False} and not (ctx.workdir / lds.DATA_FILE).exists()
    out = LDS.step("truth").load()(ctx, dict(p))
    assert out["truth"] == "skipped" and "recording" in out["truth_skipped"]
