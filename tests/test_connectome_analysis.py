"""connectome steps called without the CLI: a tiny network whose W is clearly recovered."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.analyses import connectome_steps as S
from engine.analyses.base import StepContext
from engine.analyses.connectome import ANALYSIS, SIM_DEFAULTS, TRAIN_DEFAULTS

TINY = {**SIM_DEFAULTS, **TRAIN_DEFAULTS, "table": "connectome recovery", "n_neurons": 24, "grid": 0,
        "n_frames": 300, "n_runs": 8, "burn_in": 0, "steps": 3000, "refine_steps": 0, "batch_size": 32,
        "hidden": 32, "device": "cpu"}


@pytest.mark.slow  # ~20 s alone, minutes on a loaded 2-core machine (3000 optimizer steps)
def test_tiny_network_recovers_W(tmp_path):
    ctx = StepContext(workdir=tmp_path)
    gen = S.generate(ctx, TINY)
    assert (tmp_path / "pde_n4.h5").exists() and gen["n_neurons"] == 24
    tr = S.train(ctx, TINY)
    assert tr["train_status"] == "finished"
    out = S.evaluate(ctx, TINY)
    # chance is W_r2 <= 0 (a random or zero W*); the tiny run gets well above it
    assert out["W_r2"] > 0.6, out
    assert 0.6 < out["W_slope"] < 1.4, out
    assert out["clustering_accuracy"] >= 0.75 and out["phi_r2"] > 0.8, out
    curves = np.load(tmp_path / "functions.npz")
    assert curves["phi_learned"].shape == curves["phi_true"].shape == (4, 101)
    assert json.loads(json.dumps(out))["W_r2"] == out["W_r2"]


def test_metric_helpers():
    rng = np.random.default_rng(0)
    w = rng.normal(size=500)
    r2, slope = S.r2_slope(w, 0.5 * w)
    assert slope == pytest.approx(0.5) and r2 == pytest.approx(0.75, abs=0.01)
    types = np.repeat(np.arange(4), 25)
    centres = np.array([[0, 0], [3, 0], [0, 3], [3, 3]])
    emb = centres[(types + 1) % 4] + 0.1 * rng.normal(size=(100, 2))  # permuted cluster labels
    assert S.clustering_accuracy(emb, types) == 1.0
    g = S.gauge_fixed_W(np.ones((2, 2)), [1.0, 2.0], [3.0, 1.0])
    assert g.tolist() == [[3.0, 6.0], [1.0, 2.0]]


def test_declaration_and_missing_inputs(tmp_path):
    assert [s.name for s in ANALYSIS.steps] == ["generate", "train", "evaluate"]
    with pytest.raises(Exception, match="generate"):
        S.train(StepContext(workdir=tmp_path), TINY)
