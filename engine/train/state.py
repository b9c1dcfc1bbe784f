"""Where a training run stands: everything a checkpoint must carry to resume it exactly."""

from __future__ import annotations

import contextlib
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class TrainState:
    """The loop's counters, history and best-so-far; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    history: dict[str, list[list[float]]] = field(default_factory=dict)
    best_step: int | None = None
    best_val: float | None = None
    best_state: dict | None = None
    bad_rounds: int = 0
    elapsed_before: float = 0.0
    last_ckpt: Path | None = None
    last_good_step: int | None = None
    resumed_from: int | None = None
    status: str = "running"

    def improved(self, val_loss: float, min_delta: float, patience: int | None) -> tuple[bool, bool]:
        """Book a validation loss: ``(a new best, early stopping says stop)``."""
        if not math.isfinite(val_loss):
            return False, False
        if self.best_val is None or val_loss < self.best_val - min_delta:
            self.best_val, self.best_step, self.bad_rounds = val_loss, self.step, 0
            return True, False
        self.bad_rounds += 1
        return False, patience is not None and self.bad_rounds >= patience


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and random: the start of a fresh (not resumed) run."""
    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG the loop touches, as tensors and plain data (weights_only loads it)."""
    import numpy as np

    np_state: Any = np.random.get_state()  # the legacy tuple
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype("int64")), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [version, list(internal), gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy" in state:
        name, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((name, keys.numpy().astype("uint32"), pos, has_gauss, gauss))
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(state["cuda"])
