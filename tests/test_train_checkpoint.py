"""Checkpoints: cancel + resume, weights_only loading, NaN handling, rebuild from config."""

import pytest
import torch
import torch.nn.functional as F

from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig
from engine.reporting import Cancelled, RecordingReporter
from engine.train import (
    NonFiniteLoss,
    TrainConfig,
    TrainingError,
    fit,
    list_checkpoints,
    load_checkpoint,
    load_model,
    save_model,
)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(6, 16)
        self.drop = torch.nn.Dropout(0.2)  # uses the RNG: resume must restore it
        self.b = torch.nn.Linear(16, 2)

    def forward(self, x):
        return F.softplus(self.b(self.drop(torch.tanh(self.a(x)))))


def data(n=320, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = torch.poisson(F.softplus(x[:, :2] - x[:, 2:4]), generator=g)
    return x, y


class CancelAfter(RecordingReporter):
    """Sets its cancel flag once progress reports ``k`` steps done."""

    def __init__(self, k, root):
        super().__init__(root)
        self.k = k

    def progress(self, done, total, message="", **extra):
        super().progress(done, total, message, **extra)
        if done >= self.k:
            self.cancel_event.set()


CFG = dict(steps=60, lr=1e-2, batch_size=32, val_every=10, checkpoint_every=25, log_every=1, seed=7)


def test_cancel_then_resume_continues_at_the_right_step_with_history(tmp_path):
    x, y = data()
    torch.manual_seed(123)
    ref_model = Net()
    init = {k: v.clone() for k, v in ref_model.state_dict().items()}
    ref = fit(ref_model, (x[:256], y[:256]), (x[256:], y[256:]), TrainConfig(**CFG, restore_best=False), workdir=tmp_path / "ref")

    model = Net()
    model.load_state_dict(init)
    rep = CancelAfter(17, tmp_path / "art")
    with pytest.raises(Cancelled):
        fit(model, (x[:256], y[:256]), (x[256:], y[256:]), TrainConfig(**CFG, restore_best=False), rep, tmp_path / "run")
    ckpts = list_checkpoints(tmp_path / "run")
    assert [p.name for p in ckpts] == ["step_00000017.pt"]
    saved = torch.load(ckpts[-1], weights_only=True)
    assert saved["step"] == 17 and saved["status"] == "cancelled"
    assert [s for s, _ in saved["history"]["train_loss"]] == list(range(1, 18))
    assert any(a["artifact_kind"] == "checkpoint" for a in rep.of("artifact"))

    # A fresh process would build a fresh model: its weights must not matter.
    model2 = Net()
    res = fit(model2, (x[:256], y[:256]), (x[256:], y[256:]), TrainConfig(**CFG, restore_best=False), workdir=tmp_path / "run")
    assert res.resumed_from == 17 and res.step == 60 and res.status == "finished"
    assert [s for s, _ in res.history["train_loss"]] == list(range(1, 61))
    assert [s for s, _ in res.history["val_loss"]] == [10, 20, 30, 40, 50, 60]
    # Same batches, same dropout masks, same optimizer state: identical to the uninterrupted run.
    torch.testing.assert_close(res.history["train_loss"], ref.history["train_loss"])
    for k, v in ref_model.state_dict().items():
        torch.testing.assert_close(model2.state_dict()[k], v)
    assert res.best_step == ref.best_step

    # Resuming a finished run trains nothing and reports the same result.
    again = fit(Net(), (x[:256], y[:256]), None, TrainConfig(**CFG), workdir=tmp_path / "run")
    assert again.step == 60 and again.history["train_loss"] == res.history["train_loss"]
    # ... but asking for more steps carries on.
    more = fit(Net(), (x[:256], y[:256]), None, TrainConfig(**{**CFG, "steps": 70}), workdir=tmp_path / "run")
    assert more.step == 70 and more.resumed_from == 60
    # A changed learning rate is allowed but said out loud.
    rep2 = RecordingReporter(tmp_path / "art2")
    fit(Net(), (x[:256], y[:256]), None, TrainConfig(**{**CFG, "steps": 71, "lr": 0.5}), rep2, tmp_path / "run")
    assert any(e["level"] == "warning" and "lr 0.01 -> 0.5" in e["message"] for e in rep2.of("log"))


def test_resume_false_starts_over_and_old_checkpoints_are_trimmed(tmp_path):
    x, y = data()
    cfg = TrainConfig(**{**CFG, "checkpoint_every": 5, "keep_checkpoints": 2})
    fit(Net(), (x, y), None, cfg, workdir=tmp_path)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000055.pt", "step_00000060.pt"]
    res = fit(Net(), (x, y), None, TrainConfig(**{**CFG, "steps": 5, "checkpoint_every": 5}), workdir=tmp_path, resume=False)
    assert res.resumed_from is None and res.step == 5


def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path):
    x, y = data()
    fit(Net(), (x, y), None, TrainConfig(**{**CFG, "steps": 50}), workdir=tmp_path)
    newest = list_checkpoints(tmp_path)[-1]
    newest.write_bytes(b"torn write")
    res = fit(Net(), (x, y), None, TrainConfig(**{**CFG, "steps": 50}), workdir=tmp_path)
    assert res.resumed_from == 25 and res.step == 50


def test_nan_loss_names_the_step_and_keeps_last_good_checkpoint(tmp_path):
    x, y = data()
    calls = {"n": 0}

    def loss_nan_at_step_5(pred, target):
        calls["n"] += 1
        loss = F.poisson_nll_loss(pred, target, log_input=False)
        return loss * float("nan") if calls["n"] == 5 else loss

    cfg = TrainConfig(**{**CFG, "checkpoint_every": 2, "log_every": 3})
    with pytest.raises(NonFiniteLoss, match=r"loss became NaN at step 5; last good checkpoint: step 4; try a lower learning rate") as info:
        fit(Net(), (x, y), None, cfg, workdir=tmp_path, loss_fn=loss_nan_at_step_5)
    assert isinstance(info.value, TrainingError)
    assert info.value.step == 5 and info.value.last_good_step == 4
    assert [p.name for p in list_checkpoints(tmp_path)][-1] == "step_00000004.pt"
    good = torch.load(list_checkpoints(tmp_path)[-1], weights_only=True)
    assert all(torch.isfinite(v).all() for v in good["model_state"].values())


def test_huge_learning_rate_blows_up_with_a_clear_error(tmp_path):
    # AdamW moves each weight by about lr per step: squared errors of 1e30-sized outputs overflow.
    x, y = data()
    cfg = TrainConfig(**{**CFG, "lr": 1e30, "clip_grad": None, "loss": "mse"})
    with pytest.raises(NonFiniteLoss, match=r"loss became (NaN|infinite) at step \d+; last good checkpoint: (step \d+|none)"):
        fit(Net(), (x, y), None, cfg, workdir=tmp_path)


def test_retina_checkpoint_loads_weights_only_and_rebuilds_without_factory(tmp_path):
    cfg = RetinaCfCConfig(n_cells=2, n_frames=3, frame_size=(10, 10), channels=(3,), kernel_sizes=(3,), strides=(2,),
                          encoder_features=4, units=10, wiring="autoncp")
    torch.manual_seed(0)
    model = RetinaCfC(cfg)
    frames, target = torch.rand(8, 5, 3, 10, 10), torch.rand(8, 5, 2)
    fit(model, (frames, target), (frames, target), TrainConfig(steps=4, batch_size=4, val_every=2, log_every=2), workdir=tmp_path)
    path = list_checkpoints(tmp_path)[-1]
    raw = torch.load(path, weights_only=True)  # only tensors and plain containers inside
    assert raw["model_config"]["wiring"] == "autoncp" and raw["device"]["type"] == "cpu"
    assert set(raw) >= {"model_state", "optimizer_state", "scaler_state", "step", "train_config", "history", "rng"}
    clone, payload = load_checkpoint(tmp_path)
    assert isinstance(clone, RetinaCfC) and payload["step"] == 4
    model.eval()
    model.load_state_dict(raw["model_state"])
    torch.testing.assert_close(clone(frames)[0], model(frames)[0])
    # save_model writes the same format for a model outside training (e.g. after pruning).
    save_model(model, tmp_path / "pruned.pt", extra={"note": "pruned"})
    again, extra = load_model(tmp_path / "pruned.pt")
    assert extra == {"note": "pruned"}
    torch.testing.assert_close(again(frames)[0], model(frames)[0])
    # one format: load_model reads a training checkpoint, load_checkpoint a model file
    from_ckpt, _ = load_model(path)
    torch.testing.assert_close(from_ckpt(frames)[0], clone(frames)[0])
    _, p2 = load_checkpoint(tmp_path / "pruned.pt")
    assert p2["kind"] == "model" and p2["extra"] == {"note": "pruned"}
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nowhere")


def test_resuming_into_a_different_model_is_a_clear_error(tmp_path):
    x, y = data()
    fit(Net(), (x, y), None, TrainConfig(**{**CFG, "steps": 5}), workdir=tmp_path)
    other = torch.nn.Sequential(torch.nn.Linear(6, 2), torch.nn.Softplus())
    with pytest.raises(TrainingError, match="does not fit this model"):
        fit(other, (x, y), None, TrainConfig(**CFG), workdir=tmp_path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp_dtype", ["float16", "bfloat16"])
def test_amp_on_cuda_trains_and_checkpoints_the_scaler(tmp_path, amp_dtype):
    x, y = data()
    rep = RecordingReporter(tmp_path / "art")
    res = fit(Net(), (x, y), (x, y), TrainConfig(**{**CFG, "amp_dtype": amp_dtype}), rep, tmp_path / "run")
    assert res.device["type"] == "cuda" and res.step == 60
    assert res.history["train_loss"][-1][1] < res.history["train_loss"][0][1]
    assert any(m["name"] == "gpu_mem_mib" for m in rep.of("metric"))
    saved = torch.load(list_checkpoints(tmp_path / "run")[-1], weights_only=True)
    assert saved["scaler_state"] or amp_dtype == "bfloat16"
    clone, _ = load_checkpoint(tmp_path / "run", lambda cfg: Net())
    assert next(clone.parameters()).device.type == "cpu"


# -- issue 22 #17 ---------------------------------------------------------------------


def test_a_resume_with_no_readable_checkpoint_warns_and_keeps_what_it_writes(tmp_path):
    x, y = data()
    ckdir = tmp_path / "checkpoints"
    ckdir.mkdir()
    (ckdir / "step_00000900.pt").write_bytes(b"torn write")  # the only checkpoint: unreadable
    orphan = ckdir / ".step_00000950.pt.k2j4x8ab.tmp"  # a write killed half way
    orphan.write_bytes(b"\0" * 4096)
    rep = CancelAfter(7, tmp_path / "art")
    cfg = TrainConfig(**{**CFG, "keep_checkpoints": 1})
    with pytest.raises(Cancelled):
        fit(Net(), (x, y), None, cfg, rep, tmp_path)
    warns = [e["message"] for e in rep.of("log") if e["level"] == "warning"]
    assert any("no readable checkpoint" in m and "step_00000900.pt" in m and "step 0" in m for m in warns)
    assert not orphan.exists()
    # the checkpoint written at the cancel is the one kept, although its step number is lower
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000007.pt"]
    res = fit(Net(), (x, y), None, TrainConfig(**{**CFG, "steps": 10}), workdir=tmp_path)
    assert res.resumed_from == 7 and res.step == 10
