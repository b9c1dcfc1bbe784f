"""The retina CfC's architecture as plain data (saved with every checkpoint)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["RetinaCfCConfig"]


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
