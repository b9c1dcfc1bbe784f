"""Encoder + CfC (ncps) + softplus readout: firing rates of retinal cells from frames (seed 000).

At every time step ``t`` the encoder sees the last ``n_frames`` stimulus frames
stacked as channels and produces features ``u(t)`` (convolutions, or the difference-of-
Gaussians filters of :mod:`engine.models.dog_front`: ``RetinaCfCConfig.front``); a CfC integrates ``u(t)``
into hidden states; a linear layer with softplus maps the CfC outputs ``h(t)``
(one per cell in the seed: h0..h8) to non-negative firing rates.

The pieces are exposed separately because the SINDy step needs them:
``encode`` gives the control input ``u(t)``, ``forward`` the hidden-state
trajectory ``h(t)``, ``readout`` the rates from any ``h`` (e.g. a SINDy rollout).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from engine.models.dog_front import DoGFront

__all__ = ["RetinaCfCConfig", "RetinaCfC", "frame_windows"]


@dataclass
class RetinaCfCConfig:
    """Architecture of :class:`RetinaCfC`; plain data, saved with every checkpoint.

    Parameters
    ----------
    front : {"conv", "dog"}
        The encoder.  "conv" (checkpoints made before the option): convolutions over the
        frames, configured by the fields below.  "dog": K difference-of-Gaussians filters
        with learned centres, widths and surround weights, then temporal filters
        (:class:`engine.models.dog_front.DoGFront`); of the conv fields it uses ``pool``,
        ``encoder_features`` and ``dropout``, and it always reads frame differences.
    dog_filters, dog_temporal : int
        The "dog" front end's spatial filters K and temporal filters per spatial filter.
    n_cells : int
        Output channels (recorded cells); 9 in ``naturalscene.h5``.
    n_frames : int
        Frames of history the encoder sees at each step (stacked as channels).
    frame_size : (int, int)
        Height and width of a frame (50 x 50 in the retina data).
    channels, kernel_sizes, strides : tuple of int
        One entry per conv layer; strided convs keep the encoder cheap on CPU.
    pool : int
        Average-pool the frames by this factor before the first conv (1: none), so a
        first kernel of a given size spans ``pool`` times more pixels: a centre-surround
        field is summed linearly before the first ReLU.
    batch_norm : bool
        Batch norm after each conv.
    encoder_features : int
        Size of ``u(t)``, the encoder output fed to the CfC.
    dropout : float
        Dropout on the encoder features during training.
    surround_pool : int
        0: none.  P > 0: a second, coarse linear path beside the first conv -- average-pool
        by P, a ``surround_kernel`` conv, upsampled to the first conv's grid and added to it
        before the first batch norm and ReLU -- so a first-layer filter is a fine centre plus
        a surround spanning ``P * surround_kernel`` pixels, summed linearly before any
        rectification (the synthetic cells' DoG surrounds reach 20 px; a 5 px kernel cannot).
    surround_kernel : int
        Kernel of the coarse path.
    frame_diff : bool
        Feed the encoder the newest frame and the ``n_frames - 1`` differences between
        successive frames, each channel batch-normalised, instead of the raw frames.  The same
        information, but well conditioned: raw frames of one window are nearly equal, so the
        first conv must learn near-zero-sum temporal weights against a dominant static
        component, and the transients that drive the cells carry a small share of the variance.
    temporal_channels : int
        0: the first conv reads the ``n_frames`` frames directly.  K > 0: a linear 1x1 conv
        first mixes the frames into K temporal filters per pixel (separable space-time
        filters, ``n_frames / K`` times cheaper first conv).
    encoder_out : {"norm", "relu"}
        What follows the encoder's last linear layer.  "norm" (the default): a batch norm,
        so the features reach the CfC centred with unit scale.  "relu" (checkpoints made
        before it): on data seeds 1 and 2 most ReLU features died and the live ones sat
        near 10 with a spread under 1, so the CfC's tanh gates saturated, its state
        stopped moving and the model predicted the mean rate (whole-validation corr 0.07).
    units : int
        CfC neurons (the size of its state).
    wiring : {None, "autoncp"}
        None: fully connected CfC whose outputs are all ``units`` states.
        "autoncp": sparse NCP wiring with ``n_outputs`` motor neurons as outputs.
    n_outputs : int, optional
        Motor neurons of the NCP wiring (defaults to ``n_cells``).  Ignored without wiring.
    mode : {"default", "pure", "no_gate"}
        CfC variant (see ``ncps.torch.CfC``).
    backbone_units, backbone_layers : int
        Backbone of the fully connected CfC (ignored with a wiring).
    sparsity_level : float
        Sparsity of the AutoNCP wiring.
    wiring_seed : int
        Seed of the random AutoNCP wiring, so the same config rebuilds the same synapses.
    """

    n_cells: int = 9
    n_frames: int = 10
    front: str = "conv"
    dog_filters: int = 16
    dog_temporal: int = 2
    frame_size: tuple[int, int] = (50, 50)
    channels: tuple[int, ...] = (8, 16)
    kernel_sizes: tuple[int, ...] = (5, 3)
    strides: tuple[int, ...] = (2, 2)
    pool: int = 1
    batch_norm: bool = True
    encoder_features: int = 16
    surround_pool: int = 0
    surround_kernel: int = 5
    temporal_channels: int = 0
    frame_diff: bool = False
    dropout: float = 0.0
    encoder_out: str = "norm"
    units: int = 9
    wiring: str | None = None
    n_outputs: int | None = None
    mode: str = "default"
    backbone_units: int = 32
    backbone_layers: int = 1
    sparsity_level: float = 0.5
    wiring_seed: int = 22222

    def validate(self) -> None:
        """Raise ``ValueError`` with a one-line message on an inconsistent config."""
        if not (len(self.channels) == len(self.kernel_sizes) == len(self.strides)) or not self.channels:
            raise ValueError("channels, kernel_sizes and strides need one (equal) entry per conv layer")
        for name in ("n_cells", "n_frames", "encoder_features", "units"):
            if getattr(self, name) < 1:
                raise ValueError(f"RetinaCfCConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.mode not in ("default", "pure", "no_gate"):
            raise ValueError(f"RetinaCfCConfig.mode must be 'default', 'pure' or 'no_gate', got {self.mode!r}")
        if self.wiring not in (None, "autoncp"):
            raise ValueError(f"RetinaCfCConfig.wiring must be None or 'autoncp', got {self.wiring!r}")
        if self.wiring == "autoncp" and self.units < self.outputs + 3:
            raise ValueError(f"AutoNCP needs units >= n_outputs + 3 (got units={self.units}, n_outputs={self.outputs})")
        if self.front not in ("conv", "dog"):
            raise ValueError(f"RetinaCfCConfig.front must be 'conv' or 'dog', got {self.front!r}")
        if self.dog_filters < 1 or self.dog_temporal < 1:
            raise ValueError("RetinaCfCConfig.dog_filters and dog_temporal must be >= 1")
        if self.encoder_out not in ("norm", "relu"):
            raise ValueError(f"RetinaCfCConfig.encoder_out must be 'norm' or 'relu', got {self.encoder_out!r}")
        if self.surround_pool < 0 or self.surround_kernel < 1 or self.temporal_channels < 0:
            raise ValueError("RetinaCfCConfig.surround_pool and temporal_channels must be >= 0, surround_kernel >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"RetinaCfCConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def outputs(self) -> int:
        """Size of the CfC output ``h(t)``: the hidden states SINDy models."""
        if self.wiring is None:
            return self.units
        return self.n_outputs if self.n_outputs is not None else self.n_cells

    def to_dict(self) -> dict[str, Any]:
        """Plain data (tuples become lists) for checkpoints and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RetinaCfCConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown RetinaCfCConfig keys: {', '.join(sorted(unknown))}")
        fixed: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        fixed.setdefault("encoder_out", "relu")  # a checkpoint saved before the option had a ReLU there
        return cls(**fixed)


def frame_windows(movie: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Windows of the last ``n_frames`` frames at each step, as a view (no copy).

    Parameters
    ----------
    movie : tensor (..., L, H, W)
        Frames in time order.
    n_frames : int
        History length N.

    Returns
    -------
    tensor (..., L - N + 1, N, H, W)
        Window ``t`` holds frames ``t .. t+N-1``; it predicts the response at
        frame ``t + N - 1`` (the newest frame in the window).
    """
    if movie.dim() < 3:
        raise ValueError(f"movie must be (..., L, H, W), got shape {tuple(movie.shape)}")
    if movie.shape[-3] < n_frames:
        raise ValueError(f"movie has {movie.shape[-3]} frames, fewer than n_frames={n_frames}")
    # unfold puts the window last: (..., L-N+1, H, W, N) -> move it before H, W.
    return movie.unfold(-3, n_frames, 1).movedim(-1, -3)


class _FrameDiff(nn.Module):
    """(M, N, H, W) frames, oldest first -> the newest frame, then the N-1 successive differences."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, -1:], x[:, 1:] - x[:, :-1]], dim=1)


class _Encoder(nn.Module):
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


class RetinaCfC(nn.Module):
    """Encoder over the last N frames -> CfC -> softplus rates, one per cell.

    Parameters
    ----------
    config : RetinaCfCConfig, optional
        Architecture; defaults to ``RetinaCfCConfig()``.

    Attributes
    ----------
    encoder : nn.Module
        ``(M, N, H, W) -> (M, encoder_features)``.
    cfc : ncps.torch.CfC
        The recurrent core; its cell is stepped directly so every state is visible.
    head : nn.Linear
        ``h -> pre-softplus rates``.
    n_hidden : int
        Size of ``h(t)`` (CfC outputs).
    state_size : int
        Size of the full CfC state (``units``; equals ``n_hidden`` without wiring).
    stim_norm : (mean, std)
        The training frames' pixel statistics the stimulus is standardised with (set by
        the retina analysis, saved beside the weights).
    """

    stim_norm: tuple[float, float] = (0.0, 1.0)

    def __init__(self, config: RetinaCfCConfig | None = None):
        super().__init__()
        from ncps.torch import CfC

        cfg = config or RetinaCfCConfig()
        cfg.validate()
        self.config = cfg
        if cfg.front == "dog":
            self.encoder: nn.Module = DoGFront(cfg.n_frames, cfg.frame_size, cfg.dog_filters, cfg.dog_temporal,
                                               cfg.encoder_features, cfg.pool, cfg.dropout)
        else:
            self.encoder = _Encoder(cfg)
        if cfg.wiring == "autoncp":
            from ncps.wirings import AutoNCP

            units: Any = AutoNCP(cfg.units, cfg.outputs, sparsity_level=cfg.sparsity_level, seed=cfg.wiring_seed)
            extra: dict[str, Any] = {}
        else:
            units = cfg.units
            extra = {"backbone_units": cfg.backbone_units, "backbone_layers": cfg.backbone_layers}
        self.cfc = CfC(cfg.encoder_features, units, return_sequences=True, batch_first=True, mode=cfg.mode, **extra)
        self.n_hidden = cfg.outputs
        self.state_size = cfg.units
        self.head = nn.Linear(self.n_hidden, cfg.n_cells)

    # ---- construction from plain data

    @classmethod
    def from_config(cls, config: RetinaCfCConfig | dict[str, Any]) -> "RetinaCfC":
        """Rebuild from a config object or the dict stored in a checkpoint."""
        if isinstance(config, dict):
            config = RetinaCfCConfig.from_dict(config)
        return cls(config)

    # ---- pieces

    def _check_frames(self, frames: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """Return frames as (B, T, N, H, W) and whether the input was a single step."""
        cfg = self.config
        single = frames.dim() == 4
        if single:
            frames = frames.unsqueeze(1)
        if frames.dim() != 5 or frames.shape[2] != cfg.n_frames or tuple(frames.shape[-2:]) != tuple(cfg.frame_size):
            raise ValueError(
                f"frames must be (B, T, {cfg.n_frames}, {cfg.frame_size[0]}, {cfg.frame_size[1]}) or "
                f"(B, {cfg.n_frames}, {cfg.frame_size[0]}, {cfg.frame_size[1]}), got {tuple(frames.shape)}"
            )
        return frames, single

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Encoder features ``u(t)``: (B, T, N, H, W) -> (B, T, F), or (B, N, H, W) -> (B, F)."""
        frames, single = self._check_frames(frames)
        b, t = frames.shape[:2]
        if isinstance(self.encoder, DoGFront):
            u = self.encoder.windows(frames)
        else:  # all B*T windows in one conv pass: the encoder has no memory across steps
            u = self.encoder(frames.reshape(b * t, *frames.shape[2:])).reshape(b, t, -1)
        return u[:, 0] if single else u

    def step(self, u: torch.Tensor, state: torch.Tensor, ts: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """One CfC step: ``(u (B, F), state (B, units)) -> (h (B, n_hidden), new state)``."""
        return self.cfc.rnn_cell(u, state, ts)

    def run_cfc(self, u: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the CfC over features ``u`` (B, T, F).

        Returns
        -------
        (outputs, states)
            ``outputs`` (B, T, n_hidden) are the CfC outputs h(t) (with a wiring: the
            motor neurons, i.e. the last ``n_hidden`` state entries); ``states``
            (B, T, units) the full state after each step (the same thing without wiring).
        """
        b, t = u.shape[:2]
        # At least float32: under autocast u may be half precision, the state should not start so.
        dtype = torch.promote_types(u.dtype, torch.float32)
        state = torch.zeros(b, self.state_size, device=u.device, dtype=dtype) if h0 is None else h0
        if state.shape != (b, self.state_size):
            raise ValueError(f"h0 must be ({b}, {self.state_size}), got {tuple(state.shape)}")
        outs, states = [], []
        for i in range(t):
            out, state = self.step(u[:, i], state)
            outs.append(out)
            states.append(state)
        return torch.stack(outs, 1), torch.stack(states, 1)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Firing rates from hidden states: (..., n_hidden) -> (..., n_cells), non-negative."""
        return F.softplus(self.head(h))

    def forward(self, frames: torch.Tensor, h0: torch.Tensor | None = None, return_hidden: bool = True):
        """Predict rates at each step from the frame history.

        Parameters
        ----------
        frames : tensor (B, T, N, H, W) or (B, N, H, W)
            Windows of the last N frames per step (see :func:`frame_windows`);
            4-D input is a single step.
        h0 : tensor (B, units), optional
            Initial CfC state (zeros by default).
        return_hidden : bool
            Also return the hidden-state trajectory.

        Returns
        -------
        rates : tensor (B, T, n_cells) (or (B, n_cells) for a single step)
        hidden : tensor (B, T, n_hidden) (or (B, n_hidden)), only if ``return_hidden``
        """
        frames, single = self._check_frames(frames)
        u = self.encode(frames)
        hidden, _ = self.run_cfc(u, h0)
        rates = self.readout(hidden)
        if single:
            rates, hidden = rates[:, 0], hidden[:, 0]
        return (rates, hidden) if return_hidden else rates

    def prunable_parameters(self) -> list[tuple[nn.Module, str]]:
        """The CfC's weight matrices (what the seed pruned), as ``(module, "weight")`` pairs."""
        return [(m, "weight") for m in self.cfc.modules() if isinstance(m, nn.Linear)]

    def pruning_scores(self) -> dict[tuple[nn.Module, str], torch.Tensor]:
        """|w| with synapses absent from an NCP wiring scored +inf, so pruning never picks them."""
        scores = {}
        for module, name in self.prunable_parameters():
            w = getattr(module, name).detach().abs()
            scores[(module, name)] = w
        for cell in self.cfc.modules():
            mask = getattr(cell, "sparsity_mask", None)
            if mask is None:
                continue
            for lin_name in ("ff1", "ff2"):
                lin = getattr(cell, lin_name, None)
                if lin is not None and (lin, "weight") in scores:
                    # ncps stores the mask already transposed to the weight's (out, in) shape.
                    absent = mask.detach() == 0
                    s = scores[(lin, "weight")].clone()
                    s[absent] = float("inf")
                    scores[(lin, "weight")] = s
        return scores
