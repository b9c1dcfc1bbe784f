"""A parametric centre-surround front end for the retina CfC (``RetinaCfCConfig.front = "dog"``).

Each of K spatial filters is a difference of Gaussians -- a centre, a surround
``k`` times wider, a surround weight -- with a learned position: five numbers
instead of the thousands of pixel weights of a conv kernel.  That is the classic
description of a ganglion cell's receptive field (Rodieck 1965; Enroth-Cugell &
Robson 1966), and the prior is what the data lack: with Poisson spikes and a few
hundred scene changes, a pixel filter is mostly noise (the conv front end stops
near 0.74 of the noise ceiling, the generator's own LNP family fitted pixel-wise
at 0.67-0.72; benchmarks/bench_retina_limit.py).

Caveat, said where it matters: the synthetic generator's filters *are* DoGs, so
on synthetic data this prior is exact; on a real recording it is a hypothesis to
compare against ``front = "conv"`` on validation data.

Every frame is projected onto the K filters before anything else, so the rest
works on (N, K) numbers per window: the frame differences, their per-lag batch
norm and D temporal filters per DoG (linear, as in the LN model), then both
polarities rectified (ON and OFF halves: a centre-surround cell of either sign
responds to a change of either sign) and a linear layer to the CfC's features.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from engine.models.conv_front import frame_differences

__all__ = ["DoGFront"]

SURROUND_RATIO = 2.5  # initial surround / centre width (cat X cells: 2-5)
CENTRE_PX = 2.5  # initial centre sigma in frame pixels
SURROUND_WEIGHT = 0.5  # initial surround weight (sigmoid of 0)
GRID_SPAN = (0.3, 0.7)  # initial centres: a square grid over this share of the frame


class DoGFront(nn.Module):
    """(M, N, H, W) standardised frames, oldest first -> (M, features).

    Parameters
    ----------
    n_frames, frame_size : int, (int, int)
        The window N and the frame's (H, W).
    filters, temporal : int
        K spatial filters, and D temporal filters for each.
    features : int
        Output size (the CfC's input).
    pool : int
        Average-pool the frames first (the filters are still placed in frame pixels).
    dropout : float
        Dropout on the output during training.

    Positions are stored in units of half the frame's larger side: Adam moves every
    parameter by about the learning rate per step, so a centre in pixels would move
    a fraction of a pixel in a whole run (measured: under 1 px in 2400 steps, and the
    filters stayed on their starting grid); in these units it crosses a receptive
    field in a few hundred steps.
    """

    yy: torch.Tensor  # buffers: the pixel grid
    xx: torch.Tensor

    def __init__(self, n_frames: int, frame_size: tuple[int, int], filters: int = 16, temporal: int = 2,
                 features: int = 16, pool: int = 1, dropout: float = 0.0):
        super().__init__()
        k, d, n, p = filters, temporal, n_frames, pool
        h, w = frame_size
        self.pool = nn.AvgPool2d(p) if p > 1 else nn.Identity()
        self.unit = max(h, w) / 2.0  # pixels of the full frame per position unit
        g = math.ceil(math.sqrt(k))
        lin = torch.linspace(*GRID_SPAN, g) if g > 1 else torch.tensor([0.5])
        cy, cx = torch.meshgrid(lin * h, lin * w, indexing="ij")
        self.cy = nn.Parameter(cy.flatten()[:k] / self.unit)
        self.cx = nn.Parameter(cx.flatten()[:k] / self.unit)
        self.log_centre = nn.Parameter(torch.full((k,), math.log(CENTRE_PX)))
        self.log_ratio = nn.Parameter(torch.full((k,), math.log(SURROUND_RATIO)))
        self.surround = nn.Parameter(torch.full((k,), math.log(SURROUND_WEIGHT / (1 - SURROUND_WEIGHT))))
        # the pooled grid's pixel centres, in full-frame pixels
        yy, xx = torch.meshgrid(torch.arange(h // p) * p + (p - 1) / 2, torch.arange(w // p) * p + (p - 1) / 2,
                                indexing="ij")
        self.register_buffer("yy", yy.flatten().float(), persistent=False)
        self.register_buffer("xx", xx.flatten().float(), persistent=False)
        self.lag_norm = nn.BatchNorm1d(n * k, affine=False)
        self.temporal = nn.Parameter(torch.randn(k, d, n) / math.sqrt(n))
        self.norm = nn.BatchNorm1d(k * d)
        self.fc = nn.Linear(2 * k * d, features)
        self.out = nn.BatchNorm1d(features)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    def filters(self) -> torch.Tensor:
        """The K spatial filters on the (pooled) pixel grid, (K, pixels); each Gaussian sums to 1."""
        r2 = (self.yy[None] - self.unit * self.cy[:, None]) ** 2 + (self.xx[None] - self.unit * self.cx[:, None]) ** 2
        sc = self.log_centre.exp()[:, None]
        ss = sc * self.log_ratio.exp()[:, None]
        centre = torch.exp(-r2 / (2 * sc**2))
        surround = torch.exp(-r2 / (2 * ss**2))
        return (centre / centre.sum(1, keepdim=True)
                - torch.sigmoid(self.surround)[:, None] * surround / surround.sum(1, keepdim=True))

    def centres(self) -> torch.Tensor:
        """(K, 2) filter centres (row, column) in full-frame pixels."""
        return self.unit * torch.stack([self.cy, self.cx], 1).detach()

    def _project(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., H, W) frames -> (..., K) filter outputs."""
        lead = frames.shape[:-2]
        pooled = self.pool(frames.reshape(-1, 1, *frames.shape[-2:]))
        return (pooled.flatten(1) @ self.filters().T).reshape(*lead, -1)

    def _features(self, z: torch.Tensor) -> torch.Tensor:
        """(M, N, K) projected windows -> (M, features)."""
        z = frame_differences(z)  # newest frame, then the changes
        z = self.lag_norm(z.flatten(1)).view_as(z)
        y = self.norm(torch.einsum("mnk,kdn->mkd", z, self.temporal).flatten(1))
        return self.dropout(self.out(self.fc(torch.cat([F.relu(y), F.relu(-y)], 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (M, N, H, W) -> (M, features)
        return self._features(self._project(x))

    def windows(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, N, H, W) -> (B, T, features), projecting each distinct frame once.

        Windows made by :func:`~engine.models.retina_cfc.frame_windows` share N - 1
        frames with their neighbour; such a view has equal strides along T and N (window
        t, lag n sits at frame t + n), so the movie under it is recovered without a copy
        and projected once: N times less work than projecting every window, and no copy of
        the windows (the whole cost of a training step before).  Other inputs are
        projected window by window; the result is the same.
        """
        b, t, n, h, w = frames.shape
        if t > 1 and n > 1 and frames.stride(1) == frames.stride(2):
            st = frames.stride()
            movie = frames.as_strided((b, t + n - 1, h, w), (st[0], st[1], st[3], st[4]))
            z = self._project(movie).unfold(1, n, 1).movedim(-1, 2)  # (B, T, N, K)
        else:
            z = self._project(frames)
        return self._features(z.reshape(b * t, n, -1)).reshape(b, t, -1)
