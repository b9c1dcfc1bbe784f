"""SIREN: a coordinate MLP with sine activations (Sitzmann et al., 2020).

Used as an implicit neural representation of an input field, ``(t, x, y) ->
value`` (seeds 001 and 003).  Initialisation follows the paper, which is what
makes SIRENs train at all:

* first layer ``sin(omega0 * (W x + b))`` with ``W ~ U(-1/fan_in, 1/fan_in)``,
  so that ``omega0 * W x`` spans several periods over inputs in [-1, 1];
* hidden layers ``sin(omega_hidden * (W x + b))`` with
  ``W ~ U(-sqrt(6/fan_in)/omega_hidden, +sqrt(6/fan_in)/omega_hidden)``, which
  keeps every pre-activation ~ N(0, 1)-ish (arcsine-distributed activations)
  at any depth;
* a linear output layer with the hidden-layer init (times ``out_scale``).

Inputs are expected in [-1, 1].  The spectral bandwidth grows with ``omega0``;
seed 003 notes that the learning rate has to shrink as ``omega0`` grows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class SirenConfig:
    in_features: int = 3
    hidden: int = 128
    layers: int = 3  # sine layers (the first included)
    out_features: int = 1
    omega0: float = 30.0
    omega_hidden: float = 30.0
    out_scale: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


class SineLayer(nn.Module):
    """``sin(omega * (W x + b))`` with SIREN initialisation."""

    def __init__(self, in_features: int, out_features: int, omega: float, first: bool):
        super().__init__()
        self.omega = float(omega)
        self.linear = nn.Linear(in_features, out_features)
        bound = 1.0 / in_features if first else math.sqrt(6.0 / in_features) / self.omega
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)
            # The bias keeps torch's default U(-1/sqrt(fan_in), ..): a random phase per unit.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega * self.linear(x))


class Siren(nn.Module):
    """Coordinate network ``(..., in_features) -> (..., out_features)``.

    Parameters
    ----------
    config : SirenConfig
    """

    def __init__(self, config: SirenConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or SirenConfig(**kwargs)
        c = self.config
        if c.layers < 1 or c.hidden < 1 or c.in_features < 1 or c.out_features < 1:
            raise ValueError(f"SIREN sizes must be positive, got {c}")
        if not (c.omega0 > 0 and c.omega_hidden > 0):
            raise ValueError(f"omega0 and omega_hidden must be > 0, got {c.omega0}, {c.omega_hidden}")
        layers = [SineLayer(c.in_features, c.hidden, c.omega0, first=True)]
        layers += [SineLayer(c.hidden, c.hidden, c.omega_hidden, first=False) for _ in range(c.layers - 1)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c.hidden, c.out_features)
        bound = math.sqrt(6.0 / c.hidden) / c.omega_hidden * c.out_scale
        with torch.no_grad():
            self.head.weight.uniform_(-bound, bound)
            self.head.bias.zero_()

    @classmethod
    def from_config(cls, cfg: dict) -> "Siren":
        return cls(SirenConfig(**cfg))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(coords))
