"""stimulus: scale/offset degeneracy handled by the corrected R²; a tiny GNN + SIREN run."""

from __future__ import annotations

import numpy as np
import pytest

from engine.analyses.stimulus import steps as S
from engine.analyses.base import StepContext
from engine.analyses.connectome import TRAIN_DEFAULTS
from engine.analyses.stimulus import ANALYSIS, STIM_DEFAULTS
from engine.data.pde_n4 import PDEN4Config, simulate
from engine.metrics import corrected_r2


def test_corrected_r2_undoes_scale_and_offset_of_the_stimulus():
    d = simulate(PDEN4Config(n_neurons=36, grid=6, n_frames=500, n_runs=1, input="additive", noise=0.05),
                 device="cpu")
    stim = d.field
    pred = -0.4 * stim + 1.3  # what a degenerate SIREN + phi* may learn: sign, scale and offset off
    fit = corrected_r2(stim, pred)
    assert fit.r2_raw < 0
    assert fit.r2_corrected == pytest.approx(1.0, abs=1e-9)
    assert fit.a == pytest.approx(-2.5) and fit.b == pytest.approx(3.25)
    noisy = pred + np.random.default_rng(0).normal(0, 0.1 * pred.std(), pred.shape)
    assert 0.95 < corrected_r2(stim, noisy).r2_corrected < 1.0


def test_small_stimulus_run_recovers_the_stimulus(tmp_path):
    p = {**STIM_DEFAULTS, **TRAIN_DEFAULTS, "table": "stimulus recovery", "n_neurons": 32, "grid": 4,
         "n_frames": 400, "n_runs": 4, "steps": 1400, "refine_steps": 200, "hidden": 16, "siren_hidden": 16, "batch_size": 32,
         "rollout_frames": 50, "device": "cpu", "target": "oracle", "max_types": 6, "heldout_seed": 1}
    ctx = StepContext(workdir=tmp_path)
    S.generate(ctx, p)
    from engine.analyses.connectome.steps import train

    train(ctx, p)
    S.evaluate(ctx, p)
    out = S.truth(ctx, p)
    assert out["target"].startswith("oracle")
    assert {"r2_raw", "r2_corrected", "a", "b", "W_r2", "W_slope"} <= set(out)
    # chance is 0; the target is a corrected R² > 0.8
    assert out["r2_corrected"] > 0.8 and out["r2_corrected"] >= out["r2_raw"], out
    field = np.load(tmp_path / "field.npz")
    assert field["true"].shape == field["learned"].shape == (400, 16)
    fit = corrected_r2(field["true"], field["learned"])
    assert fit.r2_corrected == pytest.approx(out["r2_corrected"])
    np.testing.assert_allclose(field["learned_corrected"], fit.a * field["learned"] + fit.b, rtol=1e-5, atol=1e-6)
    assert ANALYSIS.defaults()["noise"] == 1.0
