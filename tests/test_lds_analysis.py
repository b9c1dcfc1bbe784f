"""The lds analysis: model, steps end to end on a small system, resume, SINDy, registry."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine import analyses
from engine.analyses.lds import ANALYSIS as LDS, steps as lds
from engine.analyses.base import StepContext
from engine.data.lds_gen import LDSConfig, simulate
from engine.metrics import poisson_loss
from engine.models.rnn import BiRNN, RNNConfig, seed_poisson_loss
from engine.reporting import Cancelled, NullReporter, RecordingReporter

SMALL = {"trials": 40, "neurons": 60, "steps": 60, "latents": 3, "hidden": 3, "iterations": 150,
         "heldout_trials": 10, "readout_iterations": 60, "log_every": 10, "device": "cpu"}


def _params(**over):
    p = LDS.defaults()
    p.update(SMALL)
    p.update(over)
    return p


# ----------------------------------------------------------------- model


def test_birnn_averages_directions_and_gives_positive_rates():
    torch.manual_seed(0)
    net = BiRNN(RNNConfig(n_in=5, n_out=7, hidden=3))
    x = torch.poisson(torch.full((11, 4, 5), 0.5))
    z, q = net(x)
    assert z.shape == (11, 4, 7) and q.shape == (11, 4, 3)
    assert torch.all(z > 0)
    y = net.rnn(x)[0]
    torch.testing.assert_close(q, (y[..., :3] + y[..., 3:]) / 2)
    torch.testing.assert_close(z, torch.nn.functional.softplus(net.fc(q), beta=10))
    with pytest.raises(ValueError, match="expected input"):
        net(x[..., :4])
    clone = BiRNN.from_config(net.config.to_dict())
    assert clone.config == net.config


def test_seed_loss_matches_numpy_metric():
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.05, 2, size=(6, 3, 4))
    spikes = rng.poisson(rates).astype(float)
    got = float(seed_poisson_loss(torch.from_numpy(rates), torch.from_numpy(spikes)))
    assert got == pytest.approx(poisson_loss(spikes, rates), rel=1e-12)


def test_neuron_split_is_the_seeds():
    heldin, heldout = lds.split_neurons(400)
    assert (heldout.start, heldout.stop) == (0, 200)  # x0 = x[:, :, :200] is predicted
    assert (heldin.start, heldin.stop) == (200, 400)  # x1 = x[:, :, 200:] is the input
    tr, te = lds.split_trials(100, 20)
    assert (tr.stop, te.start, te.stop) == (80, 80, 100)
    with pytest.raises(ValueError, match="heldout_trials"):
        lds.split_trials(10, 10)


# ----------------------------------------------------------------- steps end to end


@pytest.fixture(scope="module")
def run_small(tmp_path_factory):
    wd = tmp_path_factory.mktemp("lds")
    rep = RecordingReporter(artifact_root=wd / "art")
    ctx = StepContext(wd, rep)
    p = _params()
    out = {}
    for step in LDS.steps:
        out.update(step.load()(ctx, dict(p)))
    return wd, rep, out, p


def test_steps_produce_the_json_contract(run_small):
    wd, rep, out, _ = run_small
    assert {"cost_first", "cost_last", "co_bps", "bits_per_spike_heldin"} <= set(out)
    json.dumps(out)  # JSON-able
    assert (wd / "lds.h5").exists() and (wd / lds.PRED_FILE).exists()
    assert list((wd / "rnn" / "checkpoints").glob("step_*.pt"))
    assert rep.of("progress") and any(e["name"] == "train_loss" for e in rep.of("metric"))


def test_training_learns_the_latents(run_small):
    wd, _, out, _ = run_small
    assert out["cost_last"] < out["cost_first"] - 0.02
    # held-out neurons are predicted better than their mean rate, on unseen trials
    assert out["co_bps"] > 0.0
    assert out["co_bps"] < out["co_bps_true_rates"]  # the true rates are the ceiling
    assert out["bits_per_spike_heldin"] > 0.0
    assert out["corr_rates_heldout"] > 0.4
    curve = json.loads((wd / "rnn" / "cost_curve.json").read_text())
    assert curve["step"][-1] == 150 and curve["train_loss"][-1] < curve["train_loss"][0]


def test_predictions_file_matches_metrics(run_small):
    wd, _, out, p = run_small
    from engine.metrics import co_bps
    from engine.data.lds_gen import read_h5

    npz = np.load(wd / lds.PRED_FILE)
    data = read_h5(wd / "lds.h5")
    heldin, heldout = lds.split_neurons(p["neurons"])
    te = npz["test_trials"]
    assert npz["rates_heldout"].shape == (p["steps"], p["trials"], p["neurons"] // 2)
    assert list(npz["heldout"]) == list(range(p["neurons"] // 2))
    s = data.spikes[:, te][:, :, heldout]
    assert co_bps(s, npz["rates_heldout"][:, te].astype(float)) == pytest.approx(out["co_bps"], abs=1e-4)


def test_train_resumes_finished_run_without_retraining(run_small):
    wd, _, out, p = run_small
    ctx = StepContext(wd, RecordingReporter(artifact_root=wd / "art2"))
    again = lds.train(ctx, dict(p))
    assert again["cost_first"] == out["cost_first"]
    assert again["cost_last"] == pytest.approx(out["cost_last"], rel=1e-6)
    # settings changed -> a fresh run, not a stale resume
    changed = lds.train(StepContext(wd, NullReporter()), dict(p, iterations=20))
    assert changed["train_iterations"] == 20


def test_cancel_checkpoints_and_raises(tmp_path):
    rep = NullReporter(tmp_path / "art")
    ctx = StepContext(tmp_path, rep)
    p = _params()
    lds.generate(ctx, p)
    rep.cancel_event.set()
    with pytest.raises(Cancelled):
        lds.train(ctx, p)
    assert list((tmp_path / "rnn" / "checkpoints").glob("step_*.pt"))


def test_evaluate_without_training_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="generate"):
        lds.evaluate(StepContext(tmp_path), _params())


# ----------------------------------------------------------------- SINDy on the latents


def test_sindy_recovers_a0_minus_identity():
    data = simulate(LDSConfig(seed=3, trials=100, neurons=2, steps=200, latents=4))
    fit = lds.fit_latent_dynamics(data.latents, threshold=0.02)
    truth = data.A0 - np.eye(4)
    np.testing.assert_allclose(fit["coef"], truth, atol=0.015)
    # the true A0 is diagonal; the fit must not invent couplings
    assert np.all(fit["coef"][~np.eye(4, dtype=bool)] == 0)


# ----------------------------------------------------------------- registry and import hygiene


def test_registered_and_cheap_to_import():
    spec = analyses.get("lds")
    assert [s.name for s in spec.steps][:3] == ["generate", "train", "evaluate"]
    d = spec.defaults()
    assert (d["seed"], d["trials"], d["neurons"], d["steps"], d["latents"]) == (42, 100, 400, 250, 10)
    assert (d["iterations"], d["lr"]) == (1000, 0.005)
    code = "import sys, engine.analyses.lds, engine.metrics; print(sorted(m for m in ('torch','textual','rich','plotext') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_views_draw_a_trial_of_spikes_rates_and_latents(run_small):
    from engine.views import load_figure

    wd, _, _, p = run_small
    views = {v.name: v for v in LDS.views}
    fig = load_figure(views["raster"], wd, index=p["trials"] - 1)
    truth, model = fig.panels
    assert fig.index == p["trials"] - 1 and "test trial" in fig.title
    assert truth.image.shape == model.image.shape == (p["neurons"] // 2, p["steps"])
    assert truth.vmax == model.vmax  # one colour scale: the two heatmaps compare by eye
    npz = np.load(wd / lds.PRED_FILE)
    np.testing.assert_allclose(model.image, npz["rates_heldout"][:, p["trials"] - 1].T)
    spikes = load_figure(views["raster"], wd, index=0, option="spikes vs predicted")
    assert spikes.option == "spikes vs predicted" and spikes.panels[0].image.sum() > 0
    lat = load_figure(views["latents"], wd, index=0)
    r2 = float(lat.caption.rsplit("R² ", 1)[1])
    assert 0.3 < r2 <= 1.0  # the trained RNN's state carries the latents
