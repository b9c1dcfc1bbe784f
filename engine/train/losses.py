"""Losses, the streaming per-channel correlation, and the buffer of losses awaiting a sync."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F

from engine.errors import NonFiniteLoss


def poisson_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Poisson negative log-likelihood of ``target`` counts/rates given predicted rates."""
    return F.poisson_nll_loss(pred, target, log_input=False, full=False, eps=1e-8)


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return F.mse_loss(pred, target)


LOSSES: dict[str, Callable] = {"poisson": poisson_loss, "mse": mse_loss}


class CorrAccumulator:
    """Streaming per-channel Pearson correlation (sums kept on the device, float64)."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None

    def add(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.dim() == 0:
            return
        c = pred.shape[-1] if pred.dim() > 1 else 1
        x = pred.detach().reshape(-1, c).double()
        y = target.detach().reshape(-1, c).double()
        part = torch.stack(
            [
                torch.full((c,), float(x.shape[0]), dtype=torch.float64, device=x.device),
                x.sum(0),
                y.sum(0),
                (x * x).sum(0),
                (y * y).sum(0),
                (x * y).sum(0),
            ]
        )
        self.sums = part if self.sums is None else self.sums + part

    def result(self) -> torch.Tensor:
        """Per-channel correlation (NaN where a channel is constant)."""
        if self.sums is None:
            return torch.tensor([])
        n, sx, sy, sxx, syy, sxy = self.sums.cpu()
        cov = sxy - sx * sy / n
        vx = sxx - sx * sx / n
        vy = syy - sy * sy / n
        denom = torch.sqrt(vx * vy)
        return torch.where(denom > 1e-12 * n, cov / denom.clamp_min(1e-300), torch.full_like(cov, float("nan")))


def pearson_per_channel(pred, target) -> Any:
    """Pearson correlation per output channel (last dimension); NaN for a constant channel.

    Accepts tensors or arrays of the same shape; returns a numpy array of length C.
    """
    acc = CorrAccumulator()
    acc.add(torch.as_tensor(pred), torch.as_tensor(target))
    return acc.result().numpy()


class LossBuffer:
    """Losses and gradient norms of the steps since the last device sync.

    On a GPU, reading a loss waits for the device; the loop keeps them here and
    checks them for NaN/inf in one go at each flush (every ``log_every`` steps)."""

    def __init__(self, first_step: int) -> None:
        self.losses: list[torch.Tensor] = []
        self.norms: list[torch.Tensor] = []
        self.first_step = first_step

    def add(self, loss: torch.Tensor, norm: torch.Tensor | None) -> None:
        self.losses.append(loss.detach())
        if norm is not None:
            self.norms.append(norm)

    def last_is_finite(self) -> bool:
        """Syncs: for the CPU, where reading a value costs nothing."""
        return math.isfinite(self.losses[-1].item())

    def flush(self, next_step: int, last_good_step: int | None) -> tuple[float, float | None] | None:
        """Mean loss and gradient norm of the pending steps (None if none are pending).

        Raises :class:`NonFiniteLoss` naming the first bad step and the last good checkpoint.
        """
        if not self.losses:
            return None
        values = torch.stack(self.losses).float().cpu()
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            at = self.first_step + int(bad[0])
            kind = "NaN" if math.isnan(values[int(bad[0])]) else "infinite"
            where = f"step {last_good_step}" if last_good_step is not None else "none"
            raise NonFiniteLoss(
                f"loss became {kind} at step {at}; last good checkpoint: {where}; try a lower learning rate",
                step=at,
                last_good_step=last_good_step,
            )
        norm = float(torch.stack(self.norms).float().mean().cpu()) if self.norms else None
        self.losses.clear()
        self.norms.clear()
        self.first_step = next_step
        return float(values.mean()), norm
