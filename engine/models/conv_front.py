"""The retina CfC's convolutional encoder (``RetinaCfCConfig.front = "conv"``): the last N frames
(or the newest and its N-1 differences) through strided convolutions to the CfC's features."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from engine.models.retina_config import RetinaCfCConfig

__all__ = ["ConvFront", "frame_differences"]


def frame_differences(x: torch.Tensor) -> torch.Tensor:
    """(M, N, ...) windows, oldest first -> the newest frame, then the N-1 successive differences."""
    return torch.cat([x[:, -1:], x[:, 1:] - x[:, :-1]], dim=1)


class _FrameDiff(nn.Module):
    """:func:`frame_differences` as a layer of the conv front end's ``pre`` stack."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return frame_differences(x)


class ConvFront(nn.Module):
    """(M, N, H, W) standardised frames, oldest first -> (M, encoder_features)."""

    def __init__(self, cfg: RetinaCfCConfig):
        super().__init__()
        c_in = cfg.n_frames
        h, w = cfg.frame_size
        pre: list[nn.Module] = []
        if cfg.pool > 1:
            # first: pooling commutes with the differences, and the rest then runs on pool^2
            # times fewer pixels (a training step 4x faster at pool 2)
            pre.append(nn.AvgPool2d(cfg.pool))
            h, w = h // cfg.pool, w // cfg.pool
        if cfg.frame_diff:
            pre += [_FrameDiff(), nn.BatchNorm2d(c_in, affine=False)]
        if cfg.temporal_channels:
            pre.append(nn.Conv2d(c_in, cfg.temporal_channels, 1, bias=False))  # linear: no ReLU after
            c_in = cfg.temporal_channels
        self.pre = nn.Sequential(*pre)
        # the first conv alone, so the coarse surround path can be added to it before its ReLU
        c0, k0, s0 = cfg.channels[0], cfg.kernel_sizes[0], cfg.strides[0]
        self.first = nn.Conv2d(c_in, c0, k0, stride=s0, bias=not cfg.batch_norm)
        self.coarse: nn.Module | None = None
        if cfg.surround_pool:
            if h // cfg.surround_pool < 1:
                raise ValueError(f"surround_pool {cfg.surround_pool} is larger than the {h}x{w} frame")
            self.coarse = nn.Sequential(nn.AvgPool2d(cfg.surround_pool),
                                        nn.Conv2d(c_in, c0, cfg.surround_kernel, padding=cfg.surround_kernel // 2,
                                                  bias=False))
        layers: list[nn.Module] = []
        h, w = (h - k0) // s0 + 1, (w - k0) // s0 + 1
        if h < 1 or w < 1:
            raise ValueError(f"conv stack shrinks a {cfg.frame_size} frame to nothing; use smaller kernels/strides")
        if cfg.batch_norm:
            layers.append(nn.BatchNorm2d(c0))
        layers.append(nn.ReLU())
        c_in = c0
        for c_out, k, s in zip(cfg.channels[1:], cfg.kernel_sizes[1:], cfg.strides[1:]):
            layers.append(nn.Conv2d(c_in, c_out, k, stride=s, bias=not cfg.batch_norm))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU())
            h, w = (h - k) // s + 1, (w - k) // s + 1
            if h < 1 or w < 1:
                raise ValueError(f"conv stack shrinks a {cfg.frame_size} frame to nothing; use smaller kernels/strides")
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in * h * w, cfg.encoder_features)
        self.out: nn.Module = nn.BatchNorm1d(cfg.encoder_features) if cfg.encoder_out == "norm" else nn.ReLU()
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (M, N, H, W) -> (M, F)
        x = self.pre(x)
        z = self.first(x)
        if self.coarse is not None:
            z = z + F.interpolate(self.coarse(x), size=z.shape[-2:], mode="bilinear", align_corners=False)
        return self.dropout(self.out(self.fc(self.convs(z).flatten(1))))

    def windows(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, N, H, W) -> (B, T, encoder_features): all B*T windows in one conv pass (the
        encoder has no memory across steps)."""
        b, t = frames.shape[:2]
        return self(frames.reshape(b * t, *frames.shape[2:])).reshape(b, t, -1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a pooled frame_diff encoder saved before the pool came first kept its batch norm at
        # pre.1; in eval mode (running statistics) both orders give the same features
        pooled_diff = len(self.pre) > 1 and isinstance(self.pre[0], nn.AvgPool2d) and isinstance(self.pre[1], _FrameDiff)
        if pooled_diff and prefix + "pre.1.running_mean" in state_dict:
            for key in [k for k in state_dict if k.startswith(prefix + "pre.1.")]:
                state_dict[prefix + "pre.2." + key[len(prefix + "pre.1."):]] = state_dict.pop(key)
        # checkpoints from before the split kept the first conv in ``convs`` (after the pool,
        # if any): renumber them to ``first`` and the layers after it
        c = prefix + "convs."
        if prefix + "first.weight" not in state_dict:
            first = next((i for i in (0, 1) if state_dict.get(f"{c}{i}.weight", torch.zeros(0)).dim() == 4), None)
            if first is not None:
                for key in [k for k in state_dict if k.startswith(c)]:
                    idx, rest = key[len(c):].split(".", 1)
                    new = prefix + "first." + rest if int(idx) == first else f"{c}{int(idx) - first - 1}.{rest}"
                    state_dict[new] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
