"""connectome steps called without the CLI: a small network whose W is recovered to the issue's target."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.analyses.connectome import steps as S
from engine.analyses.connectome.truth import truth as connectome_truth
from engine.analyses.base import StepContext
from engine.analyses.connectome import ANALYSIS, SIM_DEFAULTS, TRAIN_DEFAULTS
from engine.data.pde_n4 import psi

TINY = {**SIM_DEFAULTS, **TRAIN_DEFAULTS, "table": "connectome recovery", "n_neurons": 32, "grid": 4,
        "n_frames": 400, "n_runs": 4, "steps": 1400, "refine_steps": 200, "hidden": 16, "siren_hidden": 16, "batch_size": 32,
        "rollout_frames": 50, "device": "cpu", "target": "oracle", "max_types": 6, "heldout_seed": 1}


def test_small_network_recovers_W(tmp_path):
    ctx = StepContext(workdir=tmp_path)
    gen = S.generate(ctx, TINY)
    assert (tmp_path / "pde_n4.h5").exists() and gen["n_neurons"] == 32
    tr = S.train(ctx, TINY)
    assert tr["train_status"] == "finished"
    held = S.evaluate(ctx, TINY)
    assert held["target"].startswith("oracle") and 2 <= held["n_types_found"] <= 6
    out = connectome_truth(ctx, TINY)
    # chance is W_r2 <= 0 (a random or zero W*); seed 001's oracle target reaches R² > 0.9, slope 1 +- 0.1
    assert out["W_r2"] > 0.9 and abs(out["W_slope"] - 1) < 0.1, out
    assert out["types_ari"] >= 0.8 and out["phi_r2"] > 0.8, out
    assert {"phi_r2_type0", "psi_r2_type3", "heldout_deriv_r2", "n_types_true"} <= set(out)
    assert json.loads(json.dumps(out))["W_r2"] == out["W_r2"]
    # the arrays the views draw, with the documented keys and shapes
    curves = np.load(tmp_path / "functions.npz")
    assert curves["phi_learned"].shape == curves["phi_true"].shape == (4, 101)
    assert curves["embedding"].shape == (32, 2) and curves["types"].shape == (32,)
    conn = np.load(tmp_path / "connectivity.npz")
    assert conn["W_true"].shape == conn["W_learned"].shape == (32, 32)
    assert S.r2_slope(conn["W_true"][~np.eye(32, dtype=bool)],
                      conn["W_learned"][~np.eye(32, dtype=bool)])[0] == pytest.approx(out["W_r2"])
    field = np.load(tmp_path / "field.npz")
    assert field["true"].shape == field["learned_corrected"].shape == (400, 16) and field["pos"].shape == (16, 2)
    roll = np.load(tmp_path / "rollout.npz")
    assert roll["x_true"].shape == roll["x_pred"].shape == (50, 32) and roll["t"].shape == (50,)
    assert out["rollout_r2"] > 0.5, out


def test_noise_is_what_makes_W_identifiable():
    """Without process noise the activity is low-dimensional: psi(x) is ill-conditioned."""
    from engine.data.pde_n4 import PDEN4Config, simulate

    conds = []
    for noise in (0.0, 1.0):
        d = simulate(PDEN4Config(n_neurons=128, grid=8, n_frames=500, n_runs=4, gain=2.5, burn_in=0,
                                 noise=noise), device="cpu")
        p = d.params[d.types]
        P = psi(d.x.reshape(-1, 128).astype(float), p[:, 2], p[:, 3])
        sv = np.linalg.svd(P - P.mean(0), compute_uv=False)
        conds.append(sv[0] / sv[-1])
    assert conds[0] > 5 * conds[1], conds


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
    assert [s.name for s in ANALYSIS.steps] == ["generate", "train", "evaluate", "truth"]
    with pytest.raises(Exception, match="generate"):
        S.train(StepContext(workdir=tmp_path), TINY)


def _typed_gnn(n=12, seed=0):
    """A GNN that is its own truth: three types of embedding; targets are its own output."""
    import torch

    from engine.models.gnn import GNNConfig, SignalGNN

    torch.manual_seed(seed)
    model = SignalGNN(GNNConfig(n_neurons=n, hidden=16))
    types = np.repeat(np.arange(3), n // 3)
    centres = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    emb = centres[types] + 0.02 * np.random.default_rng(seed).normal(size=(n, 2))
    with torch.no_grad():
        model.graph.embedding = torch.as_tensor(emb, dtype=torch.float32)
        model.graph.W = torch.randn(n, n)
    x, t = torch.randn(3000, n), torch.zeros(3000)
    with torch.no_grad():
        y = model(x, t)
    return model, types, x, t, y


def test_a_stranded_neuron_is_moved_to_the_type_that_fits_it():
    import torch

    from engine.analyses.connectome.reassign import reassign

    model, types, x, t, y = _typed_gnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert reassign(model, x, t, y, types, max_neurons=12) == []   # all in place: nothing moves
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():   # neuron 5 (type 1) stranded between types, its column of W wrong
        a, W = model.embedding.clone(), model.W.clone()
        a[5], W[:, 5] = torch.tensor([1.0, 1.2]), -0.5 * W[:, 5]
        model.graph.embedding, model.graph.W = a, W
        stranded = float(((model(x, t) - y) ** 2).mean())
    labels = S.choose_n_clusters(model.embedding.detach().numpy(), 6, min_size=1)[1]
    assert (labels == labels[5]).sum() == 1    # alone in its cluster, as the caller clusters
    moves = reassign(model, x, t, y, labels, max_neurons=4)
    assert [m.neuron for m in moves] == [5] and moves[0].loss_moved < moves[0].loss_stay
    with torch.no_grad():
        after = float(((model(x, t) - y) ** 2).mean())
    emb = model.embedding.detach().numpy()
    assert np.linalg.norm(emb[5] - emb[[4, 6, 7]].mean(0)) < 0.1   # back among its type
    assert after < 1e-3 * stranded, (after, stranded)
