"""CNN core + per-neuron spatial readout (seed 002; Walker et al. 2019, neuralpredictors).

The core is the seed's ``Stacked2dCore``: ``layers`` blocks of conv -> average
pooling -> batch norm -> ELU, whose outputs are concatenated along channels (the
first layer's near-linear features stay visible to the readout).  Each neuron
reads the core at one location with its own feature weights:

``gaussian``
    neuralpredictors' ``Gaussian2d``: a learned position ``mu`` and width
    ``sigma``; during training the location is sampled from N(mu, sigma) (which
    lets the position move by gradient from far away), at evaluation the mean is used.
``point``
    ``mu`` only (a bilinear read at one point).

The output ``elu(x) + 1`` is a positive rate for the Poisson loss.  The model has a
``config`` and ``from_config`` so :func:`engine.train.fit` checkpoints rebuild it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CnnReadoutConfig", "CnnReadout", "laplace_l2"]


@dataclass
class CnnReadoutConfig:
    """Architecture and regularisation of :class:`CnnReadout`.

    Parameters
    ----------
    n_neurons : int
    height, width : int
        Input image size (one channel).
    hidden_channels, layers : int
        Channels per core layer and number of layers.
    input_kernel, hidden_kernel : int
        Kernel sizes (odd; "same" padding).
    pooling, hidden_pooling : int
        Average-pooling factor after the first / later layers (1 = none).
    batch_norm : bool
    readout : {"gaussian", "point"}
    init_sigma : float
        Initial readout width in normalised coordinates ([-1, 1] spans the image).
    gamma_input : float
        Weight of the Laplacian smoothness penalty on the first conv's kernels.
    gamma_readout : float
        Weight of the L1 penalty on readout feature weights.
    input_mean, input_std : float
        Pixel statistics of the training images; the model standardises its input.
    """

    n_neurons: int
    height: int = 32
    width: int = 32
    hidden_channels: int = 16
    layers: int = 2
    input_kernel: int = 9
    hidden_kernel: int = 5
    pooling: int = 1
    hidden_pooling: int = 1
    batch_norm: bool = True
    readout: str = "gaussian"
    init_sigma: float = 0.2
    gamma_input: float = 1.0
    gamma_readout: float = 0.01
    input_mean: float = 0.5
    input_std: float = 0.2

    def validate(self) -> None:
        for name in ("n_neurons", "height", "width", "hidden_channels", "layers", "pooling", "hidden_pooling"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"CnnReadoutConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("input_kernel", "hidden_kernel"):
            k = getattr(self, name)
            if k < 1 or k % 2 == 0:
                raise ValueError(f"CnnReadoutConfig.{name} must be a positive odd integer, got {k!r}")
        if self.readout not in ("gaussian", "point"):
            raise ValueError(f"CnnReadoutConfig.readout must be 'gaussian' or 'point', got {self.readout!r}")
        if not self.input_std > 0:
            raise ValueError(f"CnnReadoutConfig.input_std must be > 0, got {self.input_std!r}")

    def to_dict(self) -> dict:
        return asdict(self)


_LAPLACE = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])


def laplace_l2(weight: torch.Tensor) -> torch.Tensor:
    """Mean squared Laplacian of conv kernels (out, in, k, k): penalises rough filters."""
    o, i, kh, kw = weight.shape
    lap = _LAPLACE.to(weight)[None, None]
    return F.conv2d(weight.reshape(o * i, 1, kh, kw), lap, padding=1).pow(2).sum() / weight.pow(2).sum().clamp_min(1e-8)


class CnnReadout(nn.Module):
    """Stacked 2-D conv core and one spatial readout per neuron.

    ``forward(images)`` takes (batch, height, width) or (batch, 1, height, width)
    pixel values and returns positive rates (batch, n_neurons).
    """

    def __init__(self, config: CnnReadoutConfig):
        super().__init__()
        config.validate()
        self.config = config
        c = config
        blocks = []
        in_ch = 1
        for layer in range(c.layers):
            k = c.input_kernel if layer == 0 else c.hidden_kernel
            parts: list[nn.Module] = [nn.Conv2d(in_ch, c.hidden_channels, k, padding=k // 2, bias=not c.batch_norm)]
            pool = c.pooling if layer == 0 else c.hidden_pooling
            if pool > 1:
                parts.append(nn.AvgPool2d(pool))
            if c.batch_norm:
                parts.append(nn.BatchNorm2d(c.hidden_channels))
            parts.append(nn.ELU())
            blocks.append(nn.Sequential(*parts))
            in_ch = c.hidden_channels
        self.core = nn.ModuleList(blocks)
        n, feats = c.n_neurons, c.hidden_channels * c.layers
        self.mu = nn.Parameter(torch.empty(n, 2).uniform_(-0.1, 0.1))
        self.log_sigma = nn.Parameter(torch.full((n,), float(torch.log(torch.tensor(c.init_sigma)))))
        self.features = nn.Parameter(torch.full((n, feats), 1.0 / feats))
        self.bias = nn.Parameter(torch.zeros(n))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)

    @classmethod
    def from_config(cls, config) -> "CnnReadout":
        return cls(CnnReadoutConfig(**config) if isinstance(config, dict) else config)

    def core_features(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenated core outputs (batch, layers*channels, h', w') of standardised input."""
        if x.dim() == 3:
            x = x.unsqueeze(1)
        x = (x - self.config.input_mean) / self.config.input_std
        outs = []
        for block in self.core:
            x = block(x)
            outs.append(x)
        size = outs[0].shape[-2:]
        # later layers may be pooled further: bring them to the first layer's grid
        outs = [o if o.shape[-2:] == size else F.interpolate(o, size=size, mode="bilinear", align_corners=False)
                for o in outs]
        return torch.cat(outs, dim=1)

    def positions(self) -> torch.Tensor:
        """Readout centres (n_neurons, 2) as (x, y) in [-1, 1] image coordinates."""
        return self.mu.clamp(-1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.core_features(x)
        b = feats.shape[0]
        mu = self.positions()
        grid = mu.unsqueeze(0).expand(b, -1, -1)
        if self.training and self.config.readout == "gaussian":
            grid = grid + torch.randn_like(grid) * self.log_sigma.exp()[None, :, None]
            grid = grid.clamp(-1, 1)
        sampled = F.grid_sample(feats, grid.unsqueeze(2), mode="bilinear", align_corners=False)  # (b, c, n, 1)
        out = torch.einsum("bcn,nc->bn", sampled.squeeze(-1), self.features) + self.bias
        return F.elu(out) + 1.0

    def input_conv(self) -> nn.Conv2d:
        """The first layer's convolution (the first in the core's module order)."""
        return next(m for m in self.core.modules() if isinstance(m, nn.Conv2d))

    def regularizer(self) -> torch.Tensor:
        """Smooth first-layer kernels + sparse readout weights."""
        c = self.config
        reg = c.gamma_readout * self.features.abs().mean()
        if c.gamma_input:
            reg = reg + c.gamma_input * 1e-2 * laplace_l2(self.input_conv().weight)
        return reg
