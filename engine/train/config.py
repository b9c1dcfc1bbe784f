"""How to train (:class:`TrainConfig`), what training returns (:class:`TrainResult`), the LR schedule."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.train.losses import LOSSES


def callable_name(fn) -> str:
    """``module.qualname`` of a callable: how a custom loss is recorded in plain data."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


@dataclass
class TrainConfig:
    """How to train.  Plain data: saved with every checkpoint.

    Parameters
    ----------
    steps : int
        Optimizer steps in total (counting steps done before a resume).
    epochs : int, optional
        If set, overrides ``steps`` with ``epochs * len(batches per epoch)``;
        needs sized batches.
    lr, weight_decay : float
        AdamW learning rate and decoupled weight decay.
    batch_size : int
        Used only when batches are given as a pair of tensors.
    loss : {"poisson", "mse"} or callable
        Poisson NLL with rates as input (``log_input=False``), or mean squared
        error, or ``f(pred, target) -> scalar tensor``.  ``fit(loss_fn=...)`` wins.
    clip_grad : float, optional
        Clip the global gradient norm to this value; None switches clipping off.
    val_every : int
        Validate every this many steps (and at the end).
    checkpoint_every : int
        Checkpoint every this many steps (and at the end, on cancel, on early stop).
    keep_checkpoints : int
        How many step checkpoints to keep on disk (older ones are deleted).
    patience : int, optional
        Stop after this many validations without an improvement of ``min_delta``.
    restore_best : bool
        At the end, load the weights with the best validation loss into the model.
    amp : bool
        Mixed precision on CUDA (ignored on CPU/MPS).
    amp_dtype : {"auto", "bfloat16", "float16"}
        "auto" is bfloat16 where the GPU supports it, else float16 with a GradScaler.
    device : str
        "auto" (CUDA, then MPS, then CPU) or a torch device string.
    seed : int
        Seeds torch, numpy and random at the start of a fresh run and the batch shuffle.
    log_every : int
        Report progress and the train loss every this many steps; on GPU this is
        also how often the loop waits for the device (no sync per step).
    lr_schedule : {None, "cosine"}
        None keeps ``lr``; "cosine" warms up linearly over the first 5 % of the steps,
        then decays to 5 % of ``lr`` by the last step.  The rate is a function of the
        step alone, so a resumed run follows the same schedule.
    """

    steps: int = 1000
    epochs: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    loss: str | Callable = "poisson"
    clip_grad: float | None = 1.0
    val_every: int = 100
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    amp: bool = True
    amp_dtype: str = "auto"
    device: str = "auto"
    seed: int = 0
    log_every: int = 20
    lr_schedule: str | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` with a one-line message on a bad setting."""
        for name in ("steps", "batch_size", "val_every", "checkpoint_every", "keep_checkpoints", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if self.epochs is not None and (not isinstance(self.epochs, int) or self.epochs < 1):
            raise ValueError(f"TrainConfig.epochs must be a positive integer or None, got {self.epochs!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.clip_grad is not None and not self.clip_grad > 0:
            raise ValueError(f"TrainConfig.clip_grad must be > 0 or None, got {self.clip_grad!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ValueError(f"TrainConfig.patience must be a positive integer or None, got {self.patience!r}")
        if not callable(self.loss) and self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss must be one of {sorted(LOSSES)} or a callable, got {self.loss!r}")
        if self.lr_schedule not in (None, "cosine"):
            raise ValueError(f"TrainConfig.lr_schedule must be None or 'cosine', got {self.lr_schedule!r}")
        if self.amp_dtype not in ("auto", "bfloat16", "float16"):
            raise ValueError(f"TrainConfig.amp_dtype must be 'auto', 'bfloat16' or 'float16', got {self.amp_dtype!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (a callable loss is stored by name)."""
        out = dataclasses.asdict(self)
        if callable(self.loss):
            out["loss"] = callable_name(self.loss)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Rebuild from :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass
class TrainResult:
    """What :func:`fit` returns.  ``history[name]`` is a list of ``[step, value]`` pairs.

    Attributes
    ----------
    status : str
        "finished", "early_stopped" or "exhausted" (a one-shot iterator ran dry).
    step : int
        Optimizer steps done in total.
    history : dict
        "train_loss", "val_loss", "val_corr", "grad_norm" and any ``metrics_fn`` names.
    best_step, best_val_loss : int or None, float or None
        Where validation was best (None without validation).
    device : dict
        :func:`engine.device.describe` of the device it ran on.
    checkpoint, best_checkpoint : str or None
        Paths of the last step checkpoint and of ``best.pt``.
    elapsed_s : float
        Wall time spent training, summed over resumes.
    samples_per_s : float
        Training throughput of this call.
    resumed_from : int or None
        Step of the checkpoint this call resumed from.
    """

    status: str
    step: int
    history: dict[str, list[list[float]]]
    best_step: int | None
    best_val_loss: float | None
    device: dict[str, Any]
    checkpoint: str | None
    best_checkpoint: str | None
    elapsed_s: float
    samples_per_s: float
    resumed_from: int | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def series(self, name: str):
        """``(steps, values)`` numpy arrays of one history entry."""
        import numpy as np

        rows = self.history.get(name, [])
        arr = np.asarray(rows, dtype=float).reshape(-1, 2)
        return arr[:, 0].astype(int), arr[:, 1]

    @property
    def final_train_loss(self) -> float | None:
        rows = self.history.get("train_loss")
        return rows[-1][1] if rows else None


def lr_at(config: TrainConfig, step: int, total: int) -> float:
    """Learning rate of optimizer step ``step + 1`` of ``total`` under ``config.lr_schedule``."""
    if config.lr_schedule is None:
        return config.lr
    warm = max(1, total // 20)
    if step < warm:
        return config.lr * (step + 1) / warm
    frac = (step - warm) / max(1, total - warm)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
