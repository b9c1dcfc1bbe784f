"""The whole seed-000 pipeline in one command, at small sizes."""

from __future__ import annotations

import json

from engine.session import Session
from tests.helpers.process import cli


def test_retina_end_to_end_json_matches_the_session(session_root):
    proc = cli("run", "retina", "--session", "ret", "--headless", "--json",
               "--set", "frames=1200", "--set", "test_frames=400", "--set", "iterations=6",
               "--set", "samples=600", "--set", "max_test_frames=400", "--set", "seq_len=12",
               "--set", "n_frames=6", "--set", "sweep_amounts=0.3,0.9", "--set", "sweep_finetune=3",
               "--set", "sweep_samples=600", "--set", "val_batches=2", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    models = {"CfC", "CfC-pruned", "SINDy", "SINDy-pruned", "SINDy free-run", "SINDy-pruned free-run"}
    baselines = {"zeros", "train mean", "LN"}
    assert set(out["mae"]) == models | baselines | {"noise-free rate"}
    assert {k for k, r in out["role"].items() if r == "baseline"} == baselines
    assert out["role"]["noise-free rate"] == "ceiling"
    assert out["noise_from"] == "repeats"  # the generator writes test/repeats, as the real file has
    assert out["best_model"] in models and out["rank_by"] == "bits_per_spike"
    # every row is scored on the same frames: the zeros row's MAE is the target's mean
    assert out["test_frames_scored"] == 400 - 6 + 1
    assert out["pruned"] == 20
    s = Session.open("ret", session_root, create=False)
    table = s.tables("retina MAE")[-1]["frame"]
    for model, mae in out["mae"].items():  # the JSON and what the Results pane shows agree
        assert abs(table.loc[model, "mae"] - mae) < 1e-9
    assert abs(out["mae"]["zeros"] - table.loc["noise-free rate", "mae"]) > 0  # distinct rows
    assert table.loc["SINDy free-run", "windows"] == 1 and table.loc["SINDy", "windows"] == -(-395 // 50)
    # the pruning sweep: the dense model, then each amount without and with fine-tuning
    sweep = {r["model"]: r for r in out["prune_sweep"]}
    assert list(sweep) == ["CfC", "CfC-p30", "CfC-p30-ft3", "CfC-p90", "CfC-p90-ft3"]
    assert sweep["CfC"]["sparsity"] == 0 and abs(sweep["CfC-p90"]["sparsity"] - 0.9) < 0.01
    assert abs(sweep["CfC-p30-ft3"]["sparsity"] - 0.3) < 0.01  # fine-tuning keeps the mask
    assert all(r["sindy_terms"] is not None for k, r in sweep.items() if k != "CfC")
    assert len(s.tables("retina pruning")[-1]["frame"]) == 5
    names = {e["name"] for e in s.equations()}
    assert {"retina CfC", "retina CfC-pruned", "retina CfC-p90-ft3"} <= names
    assert all("sweep" in e["data"] for e in s.equations())
    # the free run over the SINDy fit's held-out tail against the CfC's own rates: a figure to read
    assert -1.0 <= out["sindy_tail_corr_CfC"] <= 1.0
    # the default controls are the CfC's own steps from its mean state, and the equations say so
    cfc_eqs = s.equations("retina CfC")[-1]["data"]
    assert "each state's one-step change in the CfC itself" in json.dumps(cfc_eqs)


def test_a_step_before_generate_says_which_step_to_run(tmp_path):
    import pytest

    from engine.analyses import StepContext
    from engine.analyses.retina import ANALYSIS

    ctx = StepContext(workdir=tmp_path)
    for step in ("train", "sindy", "evaluate"):
        with pytest.raises(FileNotFoundError, match="run the 'generate' step first"):
            ANALYSIS.step(step).load()(ctx, ANALYSIS.defaults())
