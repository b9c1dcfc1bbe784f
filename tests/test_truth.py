"""Truth metrics on cases with a known answer, the type-count choice, realistic derivative targets,
and the rule that no truth array enters a fit or a selection (issue 18)."""

from __future__ import annotations

import dataclasses
import shutil

import h5py
import numpy as np
import pytest
import torch

from engine.analyses.connectome import steps as S
from engine.analyses.base import ParamError, StepContext
from engine.analyses.connectome import SIM_DEFAULTS, TRAIN_DEFAULTS
from engine.analyses.connectome.targets import derivative_targets, label
from engine.data.pde_n4 import PDEN4Config, phi, psi, simulate
from engine.truth import adjusted_rand, r2_per_row, r2_slope, support_vs_truth


def test_truth_metrics_known_answers():
    rng = np.random.default_rng(0)
    w = rng.normal(size=400)
    r2, slope = r2_slope(w, 0.5 * w)
    assert slope == pytest.approx(0.5) and r2 == pytest.approx(0.75, abs=0.02)
    types = np.repeat(np.arange(4), 10)
    assert adjusted_rand((types + 1) % 4, types) == pytest.approx(1.0)     # same partition, other names
    assert adjusted_rand(np.zeros(40, int), types) == pytest.approx(0.0)   # one cluster: chance
    rows = np.vstack([w[:50], w[50:100]])
    assert r2_per_row(rows, np.vstack([rows[0], np.zeros(50)])) == pytest.approx(
        [1.0, 1 - (rows[1] ** 2).sum() / ((rows[1] - rows[1].mean()) ** 2).sum()])
    truth = np.diag([-0.1, -0.2, -0.05])
    found = truth + np.array([[0, 0.01, 0], [0, 0, 0], [0.02, 0.03, 0]])
    found[2, 2] = 0.0
    s = support_vs_truth(found, truth)
    assert s["found"].tolist() == [1, 1, 0] and s["missed"].tolist() == [0, 0, 1]
    assert s["extra"].tolist() == [1, 0, 2] and s["exact"].tolist() == [False, True, False]


@pytest.mark.parametrize("k_true", [3, 4])
def test_number_of_types_is_chosen_by_silhouette(k_true):
    rng = np.random.default_rng(k_true)
    centres = np.array([[0, 0], [4, 0], [0, 4], [4, 4]])[:k_true]
    types = np.repeat(np.arange(k_true), 30)
    emb = centres[types] + 0.3 * rng.normal(size=(len(types), 2))
    k, labels, scores = S.choose_n_clusters(emb, k_max=8)
    assert k == k_true and set(scores) == set(range(2, 9))
    assert adjusted_rand(labels, types) == pytest.approx(1.0)


def test_forward_difference_targets():
    """Without noise the forward difference is the Euler step's dxdt; with noise it stays unbiased."""
    cfg = PDEN4Config(n_neurons=16, grid=2, n_frames=300, n_runs=2, gain=2.5, burn_in=0, noise=0.0)
    d = simulate(cfg, device="cpu")
    keep, y = derivative_targets(d.x, cfg.dt, "diff", 1)
    assert keep[:, :-1].all() and not keep[:, -1].any()
    np.testing.assert_allclose(y[:, :-1], d.dxdt[:, :-1], atol=2e-3, rtol=1e-3)
    keep3, y3 = derivative_targets(d.x, cfg.dt, "diff", 3)
    assert keep3[:, -3:].sum() == 0 and np.allclose(y3[:, 0], (d.x[:, 3] - d.x[:, 0]) / (3 * cfg.dt))
    assert derivative_targets(d.x, cfg.dt, "oracle", 1, dxdt=d.dxdt)[1] is not None
    with pytest.raises(ParamError, match="target"):
        derivative_targets(d.x, cfg.dt, "smooth", 1)
    with pytest.raises(ParamError, match="dxdt"):
        derivative_targets(d.x, cfg.dt, "oracle", 1)
    assert "oracle" in label("oracle") and "realistic" in label("diff", 2)


def test_realistic_targets_recover_W_on_a_small_network():
    """Least squares on the forward differences of a noisy 16-neuron network (functions known)
    recovers W with slope 1: the noise is independent of the frame it follows.  A backward
    difference pairs each frame with the noise that moved it and is biased."""
    cfg = PDEN4Config(n_neurons=16, grid=0, n_frames=2500, n_runs=4, gain=2.5, burn_in=0, noise=1.0, seed=3)
    d = simulate(cfg, device="cpu")
    p = d.params[d.types]
    keep, y = derivative_targets(d.x, cfg.dt, "diff", 1)
    x = d.x[keep].astype(float)
    res = y[keep] - phi(x, p[:, 0], p[:, 1])
    P = cfg.gain * psi(x, p[:, 2], p[:, 3])
    W_hat = np.linalg.lstsq(P, res, rcond=None)[0].T
    off = ~np.eye(16, dtype=bool)
    r2, slope = r2_slope(d.W[off], W_hat[off])
    assert r2 > 0.85 and abs(slope - 1) < 0.1, (r2, slope)
    xb = d.x[:, 1:].reshape(-1, 16).astype(float)  # backward: (x[k] - x[k-1]) / dt paired with x[k]
    yb = ((d.x[:, 1:] - d.x[:, :-1]) / cfg.dt).reshape(-1, 16) - phi(xb, p[:, 0], p[:, 1])
    Wb = np.linalg.lstsq(cfg.gain * psi(xb, p[:, 2], p[:, 3]), yb, rcond=None)[0].T
    assert r2_slope(d.W[off], Wb[off])[0] < r2 - 0.2


def test_fresh_run_keeps_the_network_and_changes_the_run():
    cfg = PDEN4Config(n_neurons=16, grid=2, n_frames=50, n_runs=1, burn_in=0, noise=1.0)
    a, b = simulate(cfg, device="cpu"), simulate(cfg, device="cpu", run_seed=1)
    assert np.array_equal(a.W, b.W) and np.array_equal(a.types, b.types) and np.array_equal(a.field, b.field)
    assert not np.allclose(a.x, b.x)
    m = simulate(dataclasses.replace(cfg, measurement_noise=0.5), device="cpu")
    assert np.array_equal(m.dxdt, a.dxdt) and 0.4 < float((m.x - a.x).std()) < 0.6


SHUFFLE = {**SIM_DEFAULTS, **TRAIN_DEFAULTS, "n_neurons": 16, "grid": 2, "n_frames": 120, "n_runs": 2,
           "steps": 40, "refine_steps": 10, "hidden": 8, "siren_hidden": 8, "batch_size": 32, "device": "cpu", "max_types": 4,
           "heldout_seed": 1, "rollout_frames": 20}


def _shuffle_truth(path):
    rng = np.random.default_rng(1)
    with h5py.File(path, "r+") as f:
        for key in ("W", "types", "dxdt", "field", "params"):
            a = f[key][...]
            f[key][...] = rng.permutation(a.reshape(-1)).reshape(a.shape) * (2.0 if a.dtype.kind == "f" else 1)


def test_no_truth_array_enters_fit_or_selection(tmp_path):
    """Shuffling W, types, dxdt, field and params in the stored file leaves the trained model
    and the chosen types unchanged (the realistic target reads the activity alone)."""
    a, b = StepContext(workdir=tmp_path / "a"), StepContext(workdir=tmp_path / "b")
    S.generate(a, SHUFFLE)
    shutil.copy(a.workdir / S.DATA_FILE, b.workdir / S.DATA_FILE)
    _shuffle_truth(b.workdir / S.DATA_FILE)
    assert not np.array_equal(S.load(a).W, S.load(b).W)
    for ctx in (a, b):
        S.train(ctx, SHUFFLE)
        S.evaluate(ctx, SHUFFLE)
    ma, mb = (torch.load(c.workdir / S.MODEL_FILE, weights_only=True)["model_state"] for c in (a, b))
    assert ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma)
    ca, cb = (np.load(c.workdir / S.CLUSTERS_FILE)["labels"] for c in (a, b))
    assert np.array_equal(ca, cb)
    # the oracle target does read the stored dxdt: the same check then sees a different model
    o = {**SHUFFLE, "target": "oracle"}
    for ctx in (a, b):
        S.train(ctx, o)
    oa, ob = (torch.load(c.workdir / S.MODEL_FILE, weights_only=True)["model_state"] for c in (a, b))
    assert not all(torch.equal(oa[k], ob[k]) for k in oa)


def test_a_lone_neuron_is_not_a_type():
    """Seed 1's case: four tight types and one neuron stranded between them.  Silhouette
    alone scores five clusters best (the stray alone); a one-neuron cluster is passed over."""
    rng = np.random.default_rng(1)
    centres = np.array([[0.85, 0.25], [0.30, 0.83], [1.30, 1.23], [0.0, 0.12]])
    types = np.repeat(np.arange(4), 8)
    emb = np.vstack([centres[types] + 0.03 * rng.normal(size=(32, 2)), [[1.59, 0.17]]])
    k1, labels1, scores = S.choose_n_clusters(emb, k_max=8, min_size=1)
    assert k1 == 5 and np.bincount(labels1).min() == 1 and scores[5] > scores[4]
    k, labels, _ = S.choose_n_clusters(emb, k_max=8)
    assert k == 4 and adjusted_rand(labels[:32], types) == pytest.approx(1.0)
