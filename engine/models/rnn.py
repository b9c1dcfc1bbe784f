"""Bidirectional RNN that predicts one population of neurons from another (seed 004).

The seed's ``Net``: an ``nn.RNN`` (tanh, one layer) reads the spikes of the
input neurons; the forward and backward hidden states are *averaged* (not
concatenated) so that both directions must agree on one latent trajectory; a
linear readout and ``softplus(beta=10)`` give non-negative rates for the output
neurons (softplus and not ReLU: a zero rate where a spike occurred is an
infinite Poisson loss).

Tensors are time-major, ``(time, trials, neurons)``, as in the seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class RNNConfig:
    """Sizes of :class:`BiRNN`.

    Parameters
    ----------
    n_in : int
        Input neurons (the seed's ``NN1``).
    n_out : int
        Predicted neurons (the seed's ``NN2``).
    hidden : int
        Latent size (the seed's ``ncomp``).
    bidirectional : bool
        Average a forward and a backward pass (the seed's default).
    softplus_beta : float
        Sharpness of the output softplus (10 in the seed).
    """

    n_in: int
    n_out: int
    hidden: int = 10
    bidirectional: bool = True
    softplus_beta: float = 10.0

    def __post_init__(self) -> None:
        for name in ("n_in", "n_out", "hidden"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"RNNConfig.{name} must be a positive integer, got {v!r}")
        if not self.softplus_beta > 0:
            raise ValueError(f"RNNConfig.softplus_beta must be > 0, got {self.softplus_beta!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class BiRNN(nn.Module):
    """The seed's ``Net``.

    ``forward(x)`` with ``x`` of shape ``(time, trials, n_in)`` returns
    ``(rates, latents)``: ``(time, trials, n_out)`` and ``(time, trials, hidden)``.

    Attributes
    ----------
    rnn : nn.RNN
    fc : nn.Linear
        Readout ``hidden -> n_out``.
    """

    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = config
        self.rnn = nn.RNN(
            config.n_in, config.hidden, num_layers=1, dropout=0, bidirectional=config.bidirectional, nonlinearity="tanh"
        )
        self.fc = nn.Linear(config.hidden, config.n_out)

    @classmethod
    def from_config(cls, cfg: dict | RNNConfig) -> "BiRNN":
        return cls(cfg if isinstance(cfg, RNNConfig) else RNNConfig(**cfg))

    def init_bias(self, mean_rate: torch.Tensor) -> None:
        """Start the readout bias at a mean rate so initial predictions are near it (as the seed does)."""
        mean_rate = torch.as_tensor(mean_rate, dtype=self.fc.bias.dtype)
        if mean_rate.shape != self.fc.bias.shape:
            raise ValueError(f"mean_rate has shape {tuple(mean_rate.shape)}, bias has {tuple(self.fc.bias.shape)}")
        with torch.no_grad():
            self.fc.bias.copy_(mean_rate)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[-1] != self.config.n_in:
            raise ValueError(f"expected input (time, trials, {self.config.n_in}), got {tuple(x.shape)}")
        y = self.rnn(x)[0]
        h = self.config.hidden
        # Average the two directions so they are pushed to share one latent path.
        q = (y[:, :, :h] + y[:, :, h:]) / 2 if self.config.bidirectional else y
        z = F.softplus(self.fc(q), beta=self.config.softplus_beta)
        return z, q


class Readout(nn.Module):
    """Linear + softplus readout from fixed latents to rates (held-in neurons after training).

    ``forward(q)`` maps ``(..., hidden)`` to ``(..., n_out)`` rates.
    """

    def __init__(self, hidden: int, n_out: int, softplus_beta: float = 10.0):
        super().__init__()
        self.config = {"hidden": hidden, "n_out": n_out, "softplus_beta": softplus_beta}
        self.fc = nn.Linear(hidden, n_out)

    @classmethod
    def from_config(cls, cfg: dict) -> "Readout":
        return cls(**cfg)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.fc(q), beta=self.config["softplus_beta"])


def seed_poisson_loss(rates: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """The seed's cost: ``mean(rate - spikes * log(rate))`` (no ``log k!``, no epsilon).

    softplus keeps rates > 0, so the log is finite unless the rate underflows.
    """
    return (rates - spikes * torch.log(rates)).mean()
