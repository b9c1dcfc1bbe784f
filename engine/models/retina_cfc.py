"""Encoder + CfC (ncps) + softplus readout: firing rates of retinal cells from frames (seed 000).

At every time step ``t`` the encoder sees the last ``n_frames`` stimulus frames
stacked as channels and produces features ``u(t)`` (``RetinaCfCConfig.front``: the
convolutions of :mod:`engine.models.conv_front` or the difference-of-Gaussians filters of
:mod:`engine.models.dog_front`); a CfC integrates ``u(t)`` into hidden states; a linear layer
with softplus maps the CfC outputs ``h(t)`` (one per cell in the seed: h0..h8) to non-negative
firing rates.  The architecture is plain data in :mod:`engine.models.retina_config`.

The pieces are exposed separately because the SINDy step needs them:
``encode`` gives the control input ``u(t)``, ``forward`` the hidden-state
trajectory ``h(t)``, ``readout`` the rates from any ``h`` (e.g. a SINDy rollout).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from engine.models.conv_front import ConvFront
from engine.models.dog_front import DoGFront
from engine.models.retina_config import RetinaCfCConfig

__all__ = ["RetinaCfCConfig", "RetinaCfC", "frame_windows"]


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
            self.encoder: ConvFront | DoGFront = DoGFront(cfg.n_frames, cfg.frame_size, cfg.dog_filters, cfg.dog_temporal,
                                               cfg.encoder_features, cfg.pool, cfg.dropout)
        else:
            self.encoder = ConvFront(cfg)
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
        u = self.encoder.windows(frames)  # each front end batches the windows its own way
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
