"""The one model-file format: every registered model round-trips; bad files fail in one clear line."""

import pytest
import torch

from engine.errors import TrainingError
from engine.models import registry
from engine.train import MODEL_FORMAT, load_checkpoint, load_model, save_model


def _mlp():
    from engine.models.mlp import MLP, MLPConfig

    return MLP(MLPConfig(n_in=2, hidden=8, n_out=2)), torch.randn(5, 2)


def _retina_cfc():
    from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig

    cfg = RetinaCfCConfig(n_cells=2, n_frames=3, frame_size=(10, 10), channels=(3,), kernel_sizes=(3,), strides=(2,),
                          encoder_features=4, units=10, wiring="autoncp")
    return RetinaCfC(cfg), torch.rand(2, 4, 3, 10, 10)


def _signal_gnn():
    from engine.models.gnn import GNNConfig, SignalGNN

    return SignalGNN(GNNConfig(n_neurons=6, hidden=8, mlp_layers=2)), None


def _siren():
    from engine.models.siren import Siren, SirenConfig

    return Siren(SirenConfig(in_features=3, hidden=8, layers=2)), torch.rand(4, 3)


def _cnn_readout():
    from engine.models.cnn_readout import CnnReadout, CnnReadoutConfig

    cfg = CnnReadoutConfig(n_neurons=3, height=8, width=8, hidden_channels=4, input_kernel=3, hidden_kernel=3)
    return CnnReadout(cfg), torch.rand(2, 1, 8, 8)


def _birnn():
    from engine.models.rnn import BiRNN, RNNConfig

    return BiRNN(RNNConfig(n_in=3, n_out=2, hidden=4)), torch.rand(6, 2, 3)


def _rnn_readout():
    from engine.models.rnn import Readout

    return Readout(4, 2), torch.rand(3, 4)


BUILDERS = {"mlp": _mlp, "retina_cfc": _retina_cfc, "signal_gnn": _signal_gnn, "siren": _siren,
            "cnn_readout": _cnn_readout, "birnn": _birnn, "rnn_readout": _rnn_readout}


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def test_every_registered_model_has_a_round_trip_below():
    assert set(registry.names()) == set(BUILDERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_round_trip_rebuilds_the_same_model_from_the_file_alone(tmp_path, name):
    torch.manual_seed(0)
    model, x = BUILDERS[name]()
    model.eval()
    path = save_model(model, tmp_path / f"{name}.pt", extra={"trained_on": "synthetic", "norm": [0.5, 2.0]})
    raw = torch.load(path, weights_only=True)  # plain data only: nothing to unpickle
    assert (raw["format"], raw["model"], raw["kind"]) == (MODEL_FORMAT, name, "model")
    back, extra = load_model(path)
    assert type(back) is type(model) and extra == {"trained_on": "synthetic", "norm": [0.5, 2.0]}
    assert not back.training
    assert registry.config_of(back) == registry.config_of(model)
    theirs, ours = back.state_dict(), model.state_dict()
    assert theirs.keys() == ours.keys()
    for k in ours:
        torch.testing.assert_close(theirs[k], ours[k])
    if x is not None:
        with torch.no_grad():
            torch.testing.assert_close(_first(back(x)), _first(model(x)))


def test_the_saved_architecture_wins_over_todays_parameters(tmp_path):
    # the demo trained with hidden=8; whatever hidden is set to now, the file rebuilds hidden=8
    from engine.models.mlp import MLP, MLPConfig

    save_model(MLP(MLPConfig(hidden=8)), tmp_path / "mlp.pt")
    back, _ = load_model(tmp_path / "mlp.pt")
    assert back.config.hidden == 8 and back[0].weight.shape == (8, 2)


def _resave(src, dst, **changes):
    payload = torch.load(src, weights_only=True)
    payload.update(changes)
    torch.save(payload, dst)
    return dst


def test_a_class_not_in_the_registry_is_refused_by_name(tmp_path, monkeypatch):
    src = save_model(_siren()[0], tmp_path / "siren.pt")
    path = _resave(src, tmp_path / "evil.pt", model="os_system")
    with pytest.raises(TrainingError, match=r"evil\.pt holds a model of class 'os_system', which this workbench "
                                            r"does not know \(registered: .*siren"):
        load_model(path)
    # the old format's module:qualname is looked up in the registry too, never imported
    import importlib

    imported, real = [], importlib.import_module
    monkeypatch.setattr(importlib, "import_module", lambda name, *a: imported.append(name) or real(name, *a))
    old = _resave(src, tmp_path / "old.pt", format="workbench-train-checkpoint", model=None,
                  model_class="os:system")
    with pytest.raises(TrainingError, match="'os:system', which this workbench does not know"):
        load_model(old)
    assert "os" not in imported


def test_a_truncated_or_foreign_file_is_a_clear_error(tmp_path):
    path = save_model(_mlp()[0], tmp_path / "mlp.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TrainingError, match=r"mlp\.pt cannot be read as a model file \(truncated or not one\?\)"):
        load_model(path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(TrainingError, match="is not a workbench model file"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nowhere.pt")


def test_a_newer_version_and_weights_that_do_not_fit_are_refused(tmp_path):
    src = save_model(_mlp()[0], tmp_path / "mlp.pt")
    with pytest.raises(TrainingError, match="model-file version 99, newer than this workbench reads"):
        load_model(_resave(src, tmp_path / "new.pt", version=99))
    with pytest.raises(TrainingError, match="the weights do not fit the model"):
        load_model(_resave(src, tmp_path / "bad.pt", model_config={"n_in": 2, "hidden": 9, "n_out": 2, "layers": 2}))


def test_saving_what_cannot_be_rebuilt_or_read_back_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="Sequential as a model file: its class is not registered"):
        save_model(torch.nn.Sequential(torch.nn.Linear(2, 2)), tmp_path / "x.pt")
    with pytest.raises(TypeError, match=r"extra\['when'\] is a object"):
        save_model(_mlp()[0], tmp_path / "x.pt", extra={"when": object()})
    assert not (tmp_path / "x.pt").exists()


class Tiny(torch.nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.config = {"width": width}
        self.lin = torch.nn.Linear(width, 1)

    @classmethod
    def from_config(cls, cfg):
        return cls(**cfg)


def test_code_can_register_its_own_model_and_names_are_not_taken_twice(tmp_path):
    registry.register("tiny_test_model", Tiny)
    try:
        save_model(Tiny(3), tmp_path / "tiny.pt", extra={"step": 7})
        back, extra = load_model(tmp_path / "tiny.pt")
        assert isinstance(back, Tiny) and back.lin.in_features == 3 and extra == {"step": 7}
        _, payload = load_checkpoint(tmp_path / "tiny.pt")
        assert payload["step"] == 7
        with pytest.raises(ValueError, match="taken by"):
            registry.register("siren", Tiny)
        with pytest.raises(ValueError, match="taken by"):
            registry.register("tiny_test_model", Readout2)
    finally:
        registry._ADDED.pop("tiny_test_model", None)


class Readout2(Tiny):
    pass


def test_demo_evaluates_its_trained_mlp_after_hidden_was_changed(tmp_path):
    # the bug this format fixes: evaluate rebuilt the MLP from today's `hidden` setting
    from engine.analyses import get
    from engine.analyses.base import StepContext
    from engine.analyses.demo import steps

    p = {**get("demo").defaults(), "trajectories": 8, "timesteps": 40, "neurons": 3, "iterations": 3,
         "batch_size": 64, "hidden": 8, "horizon": 10, "device": "cpu"}
    ctx = StepContext(workdir=tmp_path)
    steps.generate(ctx, p)
    steps.train(ctx, p)
    back, _ = load_model(tmp_path / "mlp.pt")
    assert back.config.hidden == 8
    out = steps.evaluate(ctx, {**p, "hidden": 32})
    assert out["mae"]["MLP"] is not None


def test_a_file_holding_another_model_than_expected_is_refused(tmp_path):
    from engine.errors import TrainingError
    from engine.models.gnn import SignalGNN
    from engine.models.mlp import MLP, MLPConfig
    from engine.train import load_model, save_model

    path = save_model(MLP.from_config(MLPConfig(hidden=4)), tmp_path / "gnn.pt")
    assert isinstance(load_model(path, expect=MLP)[0], MLP)
    with pytest.raises(TrainingError, match="gnn.pt: holds a MLP, not a SignalGNN"):
        load_model(path, expect=SignalGNN)
