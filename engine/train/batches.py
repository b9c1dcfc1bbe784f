"""Where training batches come from: tensors, a callable of the epoch, an iterable, an iterator.

``train_batches`` and ``val_batches`` given to :func:`engine.train.fit` may each be

* a pair of tensors ``(inputs, targets)`` with samples along dim 0: split into
  shuffled mini-batches of ``TrainConfig.batch_size`` (see :class:`TensorBatches`);
* a callable ``f(epoch) -> iterable of (inputs, targets)``: called at the start
  of every epoch.  Make it deterministic in ``epoch`` and a resumed run sees
  exactly the batches it would have seen (the loop skips those already used);
* a re-iterable (list, ``DataLoader``): iterated again every epoch;
* a one-shot iterator (generator): training stops when it runs dry.

Each batch is ``(inputs, targets)``.  ``inputs`` is a tensor (``model(inputs)``),
a tuple/list (``model(*inputs)``) or a dict (``model(**inputs)``); tensors inside
are moved to the device.  The model returns predictions, or a tuple whose first
item is the predictions (e.g. ``(rates, hidden)``).
"""

from __future__ import annotations

import collections.abc
from typing import Iterator

import torch


class TensorBatches:
    """Mini-batches over tensors with samples along dim 0; shuffled per epoch, reproducibly.

    Calling it with an epoch number yields ``(inputs, targets)`` batches; the
    order depends only on ``seed`` and ``epoch`` so a resumed run can replay it.
    """

    def __init__(self, inputs, targets, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        inputs = torch.as_tensor(inputs)
        targets = torch.as_tensor(targets)
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(f"inputs and targets differ in length: {inputs.shape[0]} vs {targets.shape[0]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.inputs, self.targets = inputs, targets
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last

    def __len__(self) -> int:
        n = self.inputs.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __call__(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.inputs.shape[0]
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(n, generator=gen)
        else:
            order = None
        for i in range(len(self)):
            sl = slice(i * self.batch_size, min(n, (i + 1) * self.batch_size))
            if order is None:
                yield self.inputs[sl], self.targets[sl]
            else:
                idx = order[sl]
                yield self.inputs[idx], self.targets[idx]

    def __iter__(self):
        return self(0)


def time_split(n: int, val_fraction: float = 0.2, gap: int = 0) -> tuple[slice, slice]:
    """Split ``n`` time steps into a leading train block and a trailing validation block.

    Parameters
    ----------
    n : int
        Number of time steps.
    val_fraction : float
        Fraction of steps (0 < f < 1) given to validation, taken from the end.
    gap : int
        Steps dropped between the two blocks so that windows of history (e.g.
        the last N frames) never straddle train and validation.

    Returns
    -------
    (slice, slice)
        ``train`` and ``val`` slices into the time axis.
    """
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"time_split needs an integer n >= 2, got {n!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction!r}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap!r}")
    n_val = max(1, int(round(n * val_fraction)))
    n_train = n - n_val - gap
    if n_train < 1:
        raise ValueError(f"nothing left to train on: n={n}, val_fraction={val_fraction}, gap={gap}")
    return slice(0, n_train), slice(n_train + gap, n)


class Batches:
    """Uniform view over the accepted batch sources (see module docstring)."""

    def __init__(self, source, batch_size: int, seed: int, shuffle: bool):
        if isinstance(source, tuple) and len(source) == 2 and all(isinstance(s, torch.Tensor) for s in source):
            source = TensorBatches(source[0], source[1], batch_size, shuffle=shuffle, seed=seed)
        self.source = source
        # Not iter(source) is source: that would start a DataLoader's workers.
        self.one_shot = not callable(source) and isinstance(source, collections.abc.Iterator)

    def epoch(self, epoch: int) -> Iterator:
        if callable(self.source):
            return iter(self.source(epoch))
        if self.one_shot:
            return self.source
        return iter(self.source)

    def per_epoch(self) -> int | None:
        try:
            return len(self.source)
        except TypeError:
            return None


def to_device(obj, device: torch.device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def call_model(model, inputs):
    if isinstance(inputs, dict):
        out = model(**inputs)
    elif isinstance(inputs, (list, tuple)):
        out = model(*inputs)
    else:
        out = model(inputs)
    return out[0] if isinstance(out, (tuple, list)) else out


def batch_size_of(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return int(obj.shape[0]) if obj.dim() else 1
    if isinstance(obj, (list, tuple)):
        for o in obj:
            return batch_size_of(o)
    if isinstance(obj, dict):
        for o in obj.values():
            return batch_size_of(o)
    return 1
