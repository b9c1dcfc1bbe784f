"""SIREN initialisation statistics (Sitzmann et al. 2020)."""

from __future__ import annotations

import math

import pytest
import torch

from engine.models.siren import Siren, SirenConfig


def test_weight_bounds():
    torch.manual_seed(0)
    net = Siren(SirenConfig(in_features=3, hidden=256, layers=4, omega0=30.0))
    first = net.body[0].linear.weight
    assert first.abs().max() <= 1 / 3 and first.abs().max() > 0.9 / 3
    bound = math.sqrt(6 / 256) / 30
    for layer in net.body[1:]:
        w = layer.linear.weight
        assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
        assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # uniform


def test_activation_statistics_stay_stable_with_depth():
    torch.manual_seed(0)
    net = Siren(SirenConfig(in_features=3, hidden=256, layers=5, omega0=30.0))
    x = torch.rand(4096, 3) * 2 - 1
    h = x
    with torch.no_grad():
        for layer in net.body:
            pre = layer.omega * (h @ layer.linear.weight.T)  # the bias only adds a random phase
            h = layer(h)
            if layer is not net.body[0]:
                # the SIREN result: pre-activations ~ N(0, 1)-ish, activations arcsine (std 1/sqrt 2)
                assert pre.std().item() == pytest.approx(1.0, abs=0.2)
            assert h.std().item() == pytest.approx(1 / math.sqrt(2), abs=0.06)
            assert abs(h.mean().item()) < 0.1


def test_fits_a_1d_signal_quickly():
    torch.manual_seed(0)
    net = Siren(SirenConfig(in_features=1, hidden=64, layers=3, omega0=30.0))
    x = torch.linspace(-1, 1, 256)[:, None]
    y = torch.sin(6 * math.pi * x) * torch.exp(-x**2)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    for _ in range(300):
        loss = ((net(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * y.var().item()


def test_bad_config():
    with pytest.raises(ValueError, match="omega0"):
        Siren(SirenConfig(omega0=0))
