"""engine.train.fit learns, validates, reports, stops early and refuses bad input."""

import math

import pytest
import torch
import torch.nn.functional as F

from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig, frame_windows
from engine.reporting import RecordingReporter
from engine.train import TensorBatches, TrainConfig, fit, pearson_per_channel, time_split


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models step faster on one thread than fighting over two busy cores.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class SoftplusGLM(torch.nn.Module):
    """rates = softplus(x W + b); returns (rates, None) like models with hidden states."""

    def __init__(self, d_in=8, d_out=3):
        super().__init__()
        self.lin = torch.nn.Linear(d_in, d_out)

    def forward(self, x):
        return F.softplus(self.lin(x)), None


def poisson_glm_data(n=1500, d_in=8, d_out=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g)
    w = torch.randn(d_in, d_out, generator=g) * 0.6
    rate = F.softplus(x @ w)
    return x, torch.poisson(rate, generator=g), rate


def test_poisson_fit_reduces_loss_and_correlates_far_above_chance(tmp_path):
    torch.manual_seed(0)
    x, y, rate = poisson_glm_data()
    tr, va = time_split(len(x), 0.2)
    rep = RecordingReporter(tmp_path / "art")
    cfg = TrainConfig(steps=300, lr=2e-2, batch_size=64, val_every=100, checkpoint_every=150, log_every=25)
    res = fit(SoftplusGLM(), (x[tr], y[tr]), (x[va], y[va]), cfg, rep, tmp_path / "run")
    steps, losses = res.series("train_loss")
    assert res.status == "finished" and res.step == 300 and steps[-1] == 300
    assert losses[-1] < 0.8 * losses[0]
    # The ceiling is corr(rate, counts); a constant predictor would sit at 0.
    ceiling = pearson_per_channel(rate[va], y[va]).mean()
    _, corr = res.series("val_corr")
    assert corr[-1] > 0.85 * ceiling and corr[-1] > 0.4
    assert res.device["type"] == "cpu"
    # Reporter got progress with ETA/throughput, the metrics and a device log line.
    prog = rep.of("progress")
    assert prog[-1]["done"] == 300 and prog[-1]["total"] == 300
    assert all("eta_s" in p and p["samples_per_s"] > 0 for p in prog)
    names = {m["name"] for m in rep.of("metric")}
    assert {"train_loss", "val_loss", "val_corr", "grad_norm"} <= names
    assert any("training on cpu" in e["message"] for e in rep.of("log"))


def test_mse_and_callable_batches_and_metrics_fn(tmp_path):
    torch.manual_seed(1)
    x = torch.randn(512, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]])
    model = torch.nn.Linear(4, 1)
    seen_epochs = []

    def batches(epoch):
        seen_epochs.append(epoch)
        return TensorBatches(x, y, 128, seed=3)(epoch)

    cfg = TrainConfig(steps=200, lr=5e-2, loss="mse", val_every=200, log_every=50, clip_grad=None)
    res = fit(model, batches, [(x, y)], cfg, workdir=tmp_path, metrics_fn=lambda p, t: {"mae": (p - t).abs().mean()})
    assert seen_epochs[:3] == [0, 1, 2] and len(seen_epochs) == 50  # 4 batches per epoch
    assert res.history["val_loss"][-1][1] < 1e-3
    assert res.history["mae"][-1][1] < 0.03
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[1.0, -2.0, 0.5, 0.0]]), atol=0.02, rtol=0)


def test_epochs_override_steps(tmp_path):
    x, y, _ = poisson_glm_data(n=100)
    res = fit(SoftplusGLM(), (x, y), None, TrainConfig(epochs=3, batch_size=25, steps=999), workdir=tmp_path)
    assert res.step == 12 and res.best_step is None


def test_early_stopping_after_patience(tmp_path):
    torch.manual_seed(0)
    x, y, _ = poisson_glm_data(n=400)
    # min_delta that no improvement can beat: every validation after the first is "bad".
    cfg = TrainConfig(steps=1000, val_every=10, patience=2, min_delta=1e9, log_every=10, restore_best=True)
    model = SoftplusGLM()
    res = fit(model, (x, y), (x, y), cfg, workdir=tmp_path)
    assert res.status == "early_stopped" and res.step == 30
    assert res.best_step == 10
    # restore_best put the step-10 weights back.
    best = torch.load(res.best_checkpoint, weights_only=True)
    torch.testing.assert_close(model.state_dict()["lin.weight"], best["model_state"]["lin.weight"])
    assert best["step"] == 10


def test_retina_cfc_learns_a_lagged_response(tmp_path):
    """Cells fire a few frames after the scene brightness jumps; the CfC must learn the lag."""
    g = torch.Generator().manual_seed(1)
    n_seq, length, n_frames, lag = 48, 12, 4, 3
    # Piecewise-constant scenes: brightness changes at random times.
    level = torch.rand(n_seq, length + n_frames - 1, generator=g)
    hold = torch.rand(n_seq, length + n_frames - 1, generator=g) < 0.7
    for t in range(1, level.shape[1]):
        level[:, t] = torch.where(hold[:, t], level[:, t - 1], level[:, t])
    movie = level[:, :, None, None].expand(-1, -1, 10, 10).contiguous()
    movie = movie + 0.05 * torch.randn(movie.shape, generator=g)
    frames = frame_windows(movie, n_frames).contiguous()  # (S, L, N, 10, 10)
    change = (level[:, 1:] - level[:, :-1]).abs()
    change = torch.cat([torch.zeros(n_seq, 1), change], 1)[:, n_frames - 1 :]  # aligned with windows
    delayed = torch.cat([torch.zeros(n_seq, lag), change[:, :-lag]], 1)  # beyond the encoder's window
    target = torch.stack([3 * delayed, 3 * change], -1) + 0.05  # cell 0 lags, cell 1 does not
    cfg = RetinaCfCConfig(n_cells=2, n_frames=n_frames, frame_size=(10, 10), channels=(4,), kernel_sizes=(3,), strides=(2,),
                          encoder_features=6, units=8, backbone_units=16)
    torch.manual_seed(1)
    model = RetinaCfC(cfg)
    tcfg = TrainConfig(steps=300, lr=1e-2, batch_size=8, loss="mse", val_every=150, log_every=50, checkpoint_every=300)
    res = fit(model, (frames[:40], target[:40]), (frames[40:], target[40:]), tcfg, workdir=tmp_path)
    _, corr = res.series("val_corr")
    assert corr[-1] > 0.6, corr
    # The lagged cell needs the CfC's memory: check its correlation on its own.
    model.eval()
    with torch.no_grad():
        pred = model(frames[40:])[0]
    per_cell = pearson_per_channel(pred, target[40:])
    assert per_cell[0] > 0.5, per_cell


def test_bad_config_and_empty_batches_raise(tmp_path):
    with pytest.raises(ValueError, match="lr"):
        fit(SoftplusGLM(), [], None, TrainConfig(lr=-1), workdir=tmp_path)
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="huber").validate()
    with pytest.raises(ValueError, match="empty"):
        fit(SoftplusGLM(), [], None, TrainConfig(steps=3), workdir=tmp_path)
    with pytest.raises(ValueError, match="re-iterable"):
        x, y, _ = poisson_glm_data(n=10)
        fit(SoftplusGLM(), (x, y), iter([(x, y)]), TrainConfig(steps=3), workdir=tmp_path)


def test_one_shot_iterator_stops_when_exhausted(tmp_path):
    x, y, _ = poisson_glm_data(n=40)
    gen = ((x[i : i + 10], y[i : i + 10]) for i in range(0, 40, 10))
    res = fit(SoftplusGLM(), gen, None, TrainConfig(steps=100, log_every=2), workdir=tmp_path)
    assert res.status == "exhausted" and res.step == 4


def test_time_split_is_ordered_with_gap():
    tr, va = time_split(100, 0.2, gap=5)
    assert (tr.start, tr.stop, va.start, va.stop) == (0, 75, 80, 100)
    with pytest.raises(ValueError):
        time_split(10, 1.5)
    with pytest.raises(ValueError, match="nothing left"):
        time_split(10, 0.5, gap=5)


def test_pearson_per_channel_matches_numpy():
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    b[:, 3] = 1.0  # constant channel -> NaN
    got = pearson_per_channel(a, b)
    for c in range(3):
        assert math.isclose(got[c], np.corrcoef(a[:, c], b[:, c])[0, 1], rel_tol=1e-9)
    assert math.isnan(got[3])
