"""The retina table: every row on the same frames, baselines and ceiling apart, diverged
rollouts counted and filled (engine.analyses.retina.scoring), the LR schedule and the encoder
fix that made the CfC learn on every data seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.analyses.retina.scoring import score, sindy_rollout


def _rows(target, truth):
    T, C = target.shape
    return {
        "good": {"pred": truth + 0.01, "role": "model"},
        "flat": {"pred": np.full((T, C), 0.3), "role": "model"},
        "zeros": {"pred": np.zeros((T, C)), "role": "baseline"},
        "noise-free rate": {"pred": truth, "role": "ceiling"},
    }


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    truth = np.maximum(rng.normal(0, 0.3, (400, 3)), 0)
    target = rng.poisson(truth).astype(float)
    return target, truth


def test_metrics_by_hand_and_flags(data):
    target, truth = data
    fallback = target.mean(0)
    table = score(_rows(target, truth), target, truth, fallback, ["a", "b", "c"])
    # MAE of the zeros row is the target's mean; of the good row, by hand
    assert table.loc["zeros", "mae"] == pytest.approx(target.mean())
    assert table.loc["good", "mae"] == pytest.approx(np.abs(truth + 0.01 - target).mean())
    assert table.loc["good", "mae:b"] == pytest.approx(np.abs(truth[:, 1] + 0.01 - target[:, 1]).mean())
    # a constant prediction has no correlation; FEV from the noise-free rate's noise variance
    assert math.isnan(table.loc["flat", "corr"])
    noise = ((target - truth) ** 2).mean(0)
    mse = ((truth + 0.01 - target) ** 2).mean(0)
    fev = 1 - (mse - noise) / (target.var(0) - noise)
    assert table.loc["good", "fev"] == pytest.approx(fev.mean())
    # worse than zeros by MAE is said; the best row is a model, never a baseline or the ceiling
    assert bool(table.loc["flat", "worse_than_zeros"]) and not bool(table.loc["zeros", "worse_than_zeros"])
    assert table.index[table["best"]].tolist() == ["good"]
    assert set(table["rank_by"]) == {"bits_per_spike"}
    assert table.loc["noise-free rate", "role"] == "ceiling"


def test_a_diverged_stretch_is_filled_counted_and_scored_on_the_same_frames(data):
    target, truth = data
    pred = truth.copy()
    pred[300:] = np.nan  # diverged at frame 300
    fallback = np.array([0.1, 0.2, 0.3])
    rows = {"roll": {"pred": pred, "role": "model", "windows": 4, "diverged": 1}}
    table = score(rows, target, truth, fallback, ["a", "b", "c"])
    filled = np.concatenate([truth[:300], np.broadcast_to(fallback, (100, 3))])
    assert table.loc["roll", "mae"] == pytest.approx(np.abs(filled - target).mean())
    assert table.loc["roll", "diverged_frac"] == pytest.approx(0.25)
    assert table.loc["roll", "diverged_windows"] == 1 and table.loc["roll", "windows"] == 4


class _Decay:
    """A one-state map x[k+1] = a x[k]; diverges (NaN) when |a| > 1 after 3 steps."""

    discrete_time = True

    def __init__(self, a):
        self.a = a

    def simulate(self, x0, t, u=None, max_wall_time=None):
        from types import SimpleNamespace

        H = len(t)
        xs = x0[:, None, :] * self.a ** np.arange(H)[None, :, None]
        diverged = np.zeros(len(x0), bool)
        if abs(self.a) > 1:
            xs[:, 3:] = np.nan
            diverged[:] = True
        return SimpleNamespace(x=xs, diverged=diverged, divergence_time=np.full(len(x0), 3.0))


def test_rollouts_reset_every_n_frames_or_run_free():
    states = np.arange(1, 11, dtype=float)[:, None]
    u = np.zeros((10, 1))
    readout = lambda h: np.asarray(h) * 2.0  # noqa: E731
    reset = sindy_rollout(_Decay(0.5), states, u, readout, 4, 0.01)
    assert reset.windows == 3 and reset.diverged == 0
    # each window restarts at the CfC state: frame 4 is 2 * states[4], frame 5 half of it
    assert reset.pred[4, 0] == pytest.approx(10.0) and reset.pred[5, 0] == pytest.approx(5.0)
    free = sindy_rollout(_Decay(0.5), states, u, readout, None, 0.01)
    assert free.windows == 1 and free.pred[9, 0] == pytest.approx(2 * 0.5 ** 9)
    bad = sindy_rollout(_Decay(2.0), states, u, readout, 4, 0.01)
    assert bad.diverged == 3 and np.isnan(bad.pred[3:4]).all() and np.isfinite(bad.pred[:3]).all()


def test_cosine_schedule_warms_up_then_decays():
    from engine.train import TrainConfig, lr_at

    cfg = TrainConfig(lr=1e-2, lr_schedule="cosine")
    lrs = [lr_at(cfg, s, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(2e-3) and lrs[4] == pytest.approx(1e-2)  # 5 warm-up steps
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert lrs[-1] == pytest.approx(1e-2 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * 94 / 95))))
    assert lr_at(TrainConfig(lr=1e-2), 50, 100) == 1e-2
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step").validate()


def test_encoder_features_reach_the_cfc_centred_and_alive():
    """The root cause on data seeds 1-2: ReLU features died or sat near 10; the batch norm
    keeps every feature moving with unit scale, and old checkpoints keep their ReLU."""
    import torch

    from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig

    torch.manual_seed(0)
    model = RetinaCfC(RetinaCfCConfig(n_frames=4, frame_size=(20, 20), encoder_features=8))
    u = model.encoder(torch.randn(256, 4, 20, 20) * 3 + 5)  # offset, scaled input
    assert torch.all(u.std(0) > 0.5) and torch.all(u.mean(0).abs() < 0.1)
    old = RetinaCfCConfig.from_dict({"n_frames": 4, "frame_size": [20, 20]})
    assert old.encoder_out == "relu"
    assert isinstance(RetinaCfC(old).encoder.out, torch.nn.ReLU)


def test_pruning_figure_draws_the_curves_from_the_sweep(tmp_path):
    import json

    from engine.analyses.retina.views import pruning

    rows = [{"model": "CfC", "amount": 0.0, "finetune": 0, "sparsity": 0.0, "test_corr": 0.5, "sindy_terms": None},
            {"model": "CfC-p50", "amount": 0.5, "finetune": 0, "sparsity": 0.5, "test_corr": 0.3, "sindy_terms": 40},
            {"model": "CfC-p50-ft9", "amount": 0.5, "finetune": 9, "sparsity": 0.5, "test_corr": 0.45,
             "sindy_terms": 35},
            {"model": "CfC-p90", "amount": 0.9, "finetune": 0, "sparsity": 0.9, "test_corr": 0.1, "sindy_terms": 20}]
    (tmp_path / "prune_sweep.json").write_text(json.dumps({"rows": rows}))
    fig = pruning(tmp_path, 0, None)
    corr, terms = fig.panels
    plain, tuned = corr.series
    assert plain.x.tolist() == [0.0, 0.5, 0.9] and plain.y.tolist() == [0.5, 0.3, 0.1]
    assert tuned.x.tolist() == [0.0, 0.5] and tuned.y.tolist() == [0.5, 0.45]
    assert [s.label for s in terms.series] == ["pruned"]  # one fine-tuned point makes no curve
    assert "lowest 0.100 at 90% (CfC-p90)" in fig.caption
