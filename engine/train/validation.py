"""One pass over the validation batches: loss, mean per-channel correlation, extra metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from engine.train.batches import Batches, batch_size_of, call_model, to_device
from engine.train.losses import CorrAccumulator


@dataclass
class Validation:
    """What one validation measured; ``extra`` holds the ``metrics_fn`` values."""

    loss: float
    corr: float
    extra: dict[str, float] = field(default_factory=dict)


def _full_precision(pred):
    if isinstance(pred, torch.Tensor) and pred.dtype in (torch.float16, torch.bfloat16):
        return pred.float()  # losses in float32: rates near 0 underflow in half precision
    return pred


def compute_loss(loss_fn: Callable, pred, target) -> torch.Tensor:
    return loss_fn(_full_precision(pred), target)


@torch.no_grad()
def validate(model: torch.nn.Module, val: Batches, device: torch.device, autocast: Callable,
             loss_fn: Callable, metrics_fn: Callable | None) -> Validation:
    """Sample-weighted mean loss and mean finite per-channel correlation over ``val``."""
    model.eval()
    total, count = None, 0
    corr = CorrAccumulator()
    preds, targets = [], []
    try:
        for inputs, target in val.epoch(0):
            inputs, target = to_device(inputs, device), to_device(target, device)
            with autocast():
                pred = call_model(model, inputs)
            pred = _full_precision(pred)
            n = batch_size_of(target)
            loss = loss_fn(pred, target).detach() * n
            total = loss if total is None else total + loss
            count += n
            corr.add(pred, target)
            if metrics_fn is not None:
                preds.append(pred.cpu())
                targets.append(target.cpu() if isinstance(target, torch.Tensor) else target)
    finally:
        model.train()
    if count == 0 or total is None:
        raise ValueError("validation batches are empty")
    per_channel = corr.result()
    finite = per_channel[torch.isfinite(per_channel)]
    extra = {}
    if metrics_fn is not None:
        extra = {k: float(v) for k, v in (metrics_fn(torch.cat(preds), torch.cat(targets)) or {}).items()}
    return Validation(float(total) / count, float(finite.mean()) if len(finite) else float("nan"), extra)
