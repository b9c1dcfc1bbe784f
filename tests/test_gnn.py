"""SignalGNN: shapes, constraints, per-group learning rates, checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

from engine.models.gnn import GNNConfig, SignalGNN, set_lr_scale


def _model(**kw):
    torch.manual_seed(0)
    return SignalGNN(GNNConfig(**{"n_neurons": 16, "grid": 3, "input": "modulate", "hidden": 16,
                                  "siren_hidden": 16, **kw}))


def test_forward_shapes_and_constraints():
    m = _model()
    x, t = torch.randn(5, 16), torch.rand(5) * 2 - 1
    assert m(x, t).shape == (5, 16)
    assert torch.all(torch.diag(m.W_masked()) == 0)
    zero = m.psi_of(torch.zeros(3, 16), m.embedding)
    assert torch.allclose(zero, torch.zeros_like(zero), atol=1e-6)  # psi*(a, 0) = 0
    assert m.omega(t).shape == (5, 9)
    add = _model(input="additive")
    assert add(x, t).shape == (5, 16)
    # the stimulus adds to the update: with W* = 0 the output is phi*(a, x) + I* on the grid neurons
    with torch.no_grad():
        add.graph.parametrizations.W.original.zero_()  # W is re-parametrised (lr scale)
        expect = add.phi_of(x, add.embedding)
        expect[:, :9] += add.omega(t)
    assert torch.allclose(add(x, t), expect, atol=1e-6)
    through = _model(input="additive", input_through_phi=True)  # seed 003 literal: I* is an input of phi*
    assert through.phi[0].in_features == 4 and add.phi[0].in_features == 3
    assert through(x, t).shape == (5, 16)
    with pytest.raises(ValueError, match="input"):
        GNNConfig(n_neurons=16, input="multiply")


def test_lr_scale_multiplies_the_adam_step_and_keeps_values():
    m = _model(lr_scales=(1, 1, 1, 1))
    before = m.W.detach().clone()
    set_lr_scale([(m.graph, "W")], 10.0)
    assert torch.allclose(m.W, before)  # re-parametrised, same values
    other = _model(lr_scales=(1, 1, 1, 1))
    x, t, y = torch.randn(8, 16), torch.zeros(8), torch.randn(8, 16)
    steps = []
    for model in (other, m):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss = ((model(x, t) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps.append((model.W.detach() - before).abs().mean().item())
    assert steps[1] / steps[0] == pytest.approx(10.0, rel=0.01)


def test_checkpoint_round_trip(tmp_path):
    from engine.train import load_checkpoint, save_model

    m = _model(lr_scales=(2.0, 1.0, 1.0, 0.1))
    m.apply_lr_scales((0.1, 0.05, 0.05, 0.1))
    save_model(m, tmp_path / "gnn.pt")
    back, _ = load_checkpoint(tmp_path / "gnn.pt")
    x, t = torch.randn(4, 16), torch.rand(4)
    assert type(back) is SignalGNN
    assert torch.allclose(back(x, t), m(x, t), atol=1e-6)
