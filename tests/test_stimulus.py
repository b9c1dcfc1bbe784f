"""stimulus: scale/offset degeneracy handled by the corrected R²; a tiny GNN + SIREN run."""

from __future__ import annotations

import numpy as np
import pytest

from engine.analyses import stimulus_steps as S
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


def test_tiny_stimulus_run(tmp_path):
    p = {**STIM_DEFAULTS, **TRAIN_DEFAULTS, "table": "stimulus recovery", "n_neurons": 24, "grid": 3,
         "n_frames": 300, "n_runs": 8, "burn_in": 0, "steps": 500, "refine_steps": 50, "hidden": 32,
         "siren_hidden": 32, "device": "cpu"}
    ctx = StepContext(workdir=tmp_path)
    S.generate(ctx, p)
    from engine.analyses.connectome_steps import train

    train(ctx, p)
    out = S.evaluate(ctx, p)
    assert {"r2_raw", "r2_corrected", "a", "b", "W_r2", "W_slope"} <= set(out)
    assert out["r2_corrected"] >= out["r2_raw"]
    field = np.load(tmp_path / "field.npz")
    assert field["true"].shape == field["learned"].shape == (299, 9)
    assert ANALYSIS.defaults()["noise"] == 0.05
