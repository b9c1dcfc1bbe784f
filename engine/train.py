"""The one training loop shared by every analysis (retina CfC, RNN, GNN, CNN).

``fit`` trains any ``torch.nn.Module`` on batches supplied by the caller and
takes care of what every analysis needs the same way: the device, mixed
precision on CUDA, gradient clipping, Poisson/MSE losses, validation with
per-channel correlation, early stopping, crash-safe checkpoints that resume
with the history intact, cancel at every step, and a clear error when the
loss blows up.

Batches
-------
``train_batches`` and ``val_batches`` may each be

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
item is the predictions (e.g. ``(rates, hidden)``).  The loss compares
predictions and targets; correlation is computed per output channel = the last
dimension of the predictions.

Checkpoints
-----------
``workdir/checkpoints/step_XXXXXXXX.pt`` (the last ``keep_checkpoints``) and
``workdir/checkpoints/best.pt`` (best validation loss).  They hold only tensors
and plain containers so ``torch.load(path, weights_only=True)`` reads them.
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import importlib
import math
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from engine.atomic import clean_orphans, write_with
from engine.device import describe, memory_stats, pick_device
from engine.reporting import Cancelled, NullReporter, Reporter

CHECKPOINT_FORMAT = "workbench-train-checkpoint"
CHECKPOINT_VERSION = 1
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "NonFiniteLoss",
    "TensorBatches",
    "fit",
    "time_split",
    "load_checkpoint",
    "list_checkpoints",
    "save_model",
    "pearson_per_channel",
    "poisson_loss",
    "mse_loss",
]


class TrainingError(RuntimeError):
    """Base class of errors raised by the training loop."""


class NonFiniteLoss(TrainingError):
    """The loss became NaN or infinite; ``step`` is where, ``last_good_step`` the last checkpoint."""

    def __init__(self, message: str, step: int, last_good_step: int | None):
        super().__init__(message)
        self.step = step
        self.last_good_step = last_good_step


# --------------------------------------------------------------------------- config


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
        if not callable(self.loss) and self.loss not in _LOSSES:
            raise ValueError(f"TrainConfig.loss must be one of {sorted(_LOSSES)} or a callable, got {self.loss!r}")
        if self.lr_schedule not in (None, "cosine"):
            raise ValueError(f"TrainConfig.lr_schedule must be None or 'cosine', got {self.lr_schedule!r}")
        if self.amp_dtype not in ("auto", "bfloat16", "float16"):
            raise ValueError(f"TrainConfig.amp_dtype must be 'auto', 'bfloat16' or 'float16', got {self.amp_dtype!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (a callable loss is stored by name)."""
        out = dataclasses.asdict(self)
        if callable(self.loss):
            out["loss"] = _callable_name(self.loss)
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


# --------------------------------------------------------------------------- losses & metrics


def lr_at(config: TrainConfig, step: int, total: int) -> float:
    """Learning rate of optimizer step ``step + 1`` of ``total`` under ``config.lr_schedule``."""
    if config.lr_schedule is None:
        return config.lr
    warm = max(1, total // 20)
    if step < warm:
        return config.lr * (step + 1) / warm
    frac = (step - warm) / max(1, total - warm)
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def poisson_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Poisson negative log-likelihood of ``target`` counts/rates given predicted rates."""
    return F.poisson_nll_loss(pred, target, log_input=False, full=False, eps=1e-8)


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return F.mse_loss(pred, target)


_LOSSES: dict[str, Callable] = {"poisson": poisson_loss, "mse": mse_loss}


class _CorrAccumulator:
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
        corr = torch.where(denom > 1e-12 * n, cov / denom.clamp_min(1e-300), torch.full_like(cov, float("nan")))
        return corr


def pearson_per_channel(pred, target) -> "Any":
    """Pearson correlation per output channel (last dimension); NaN for a constant channel.

    Accepts tensors or arrays of the same shape; returns a numpy array of length C.
    """
    acc = _CorrAccumulator()
    acc.add(torch.as_tensor(pred), torch.as_tensor(target))
    return acc.result().numpy()


# --------------------------------------------------------------------------- batches


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


class _Batches:
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


def _to_device(obj, device: torch.device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _call_model(model, inputs):
    if isinstance(inputs, dict):
        out = model(**inputs)
    elif isinstance(inputs, (list, tuple)):
        out = model(*inputs)
    else:
        out = model(inputs)
    return out[0] if isinstance(out, (tuple, list)) else out


def _batch_size(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return int(obj.shape[0]) if obj.dim() else 1
    if isinstance(obj, (list, tuple)):
        for o in obj:
            return _batch_size(o)
    if isinstance(obj, dict):
        for o in obj.values():
            return _batch_size(o)
    return 1


# --------------------------------------------------------------------------- checkpoints


def _callable_name(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _model_identity(model) -> tuple[dict | None, str | None]:
    """The model's config dict and class path, if it exposes them (``model.config``)."""
    cfg = getattr(model, "config", None)
    if cfg is None:
        return None, None
    if hasattr(cfg, "to_dict"):
        cfg = cfg.to_dict()
    elif dataclasses.is_dataclass(cfg):
        cfg = dataclasses.asdict(cfg)
    if not isinstance(cfg, dict):
        return None, None
    cls = type(model)
    return cfg, f"{cls.__module__}:{cls.__qualname__}"


def _rng_state() -> dict[str, Any]:
    import numpy as np

    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype("int64")), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": _py_state_to_plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py_state_to_plain(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _set_rng_state(state: dict[str, Any]) -> None:
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


def _cpu_state_dict(module_or_opt) -> Any:
    """State dict with tensors copied to CPU, so the checkpoint loads anywhere."""
    return _map_tensors(module_or_opt.state_dict(), lambda t: t.detach().to("cpu", copy=True))


def _map_tensors(obj, fn):
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map_tensors(v, fn)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_map_tensors(v, fn) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_map_tensors(v, fn) for v in obj)
    return obj


def list_checkpoints(workdir: str | Path) -> list[Path]:
    """Step checkpoints in ``workdir/checkpoints`` (or ``workdir`` itself), oldest first."""
    root = Path(workdir)
    ckdir = root / "checkpoints" if (root / "checkpoints").is_dir() else root
    if not ckdir.is_dir():
        return []
    found = []
    for p in ckdir.iterdir():
        m = _STEP_FILE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def _prunable(found: list[Path], written: Path, keep: int) -> list[Path]:
    """Step checkpoints to delete after writing ``written``: never it (a resumed run may
    write a lower step number than files left from before), then the newest ``keep - 1``
    older ones stay; files of later steps are left from an abandoned run (torn, or
    unreadable: the resume fell back past them) and go."""
    step = _step_of(written)
    older = [p for p in found if p != written and _step_of(p) < step]
    later = [p for p in found if p != written and _step_of(p) >= step]
    return older[: max(0, len(older) - (keep - 1))] + later


def _step_of(path: Path) -> int:
    m = _STEP_FILE.match(path.name)
    return int(m.group(1)) if m else -1


def _read_payload(path: Path) -> dict[str, Any]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{path} is not a workbench training checkpoint")
    return payload


def _latest_readable(workdir: Path, errors: list | None = None) -> tuple[Path, dict[str, Any]] | None:
    """Newest step checkpoint that loads; a torn or corrupt newest file falls back to older."""
    for path in reversed(list_checkpoints(workdir)):
        try:
            return path, _read_payload(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: try the previous one
            if errors is not None:
                errors.append(f"{path.name}: {str(exc).splitlines()[0][:200]}")
    return None


def load_checkpoint(path_or_workdir: str | Path, model_factory: Callable[[dict], torch.nn.Module] | None = None):
    """Load a checkpoint and rebuild its model.

    Parameters
    ----------
    path_or_workdir : path
        A checkpoint file, or a workdir / checkpoints folder (its newest step
        checkpoint is used).
    model_factory : callable, optional
        ``f(model_config_dict) -> nn.Module``.  Without it the model class
        recorded in the checkpoint (which must live in ``engine.``) is rebuilt
        with ``cls.from_config(model_config)``.

    Returns
    -------
    (model, payload)
        The model on CPU in eval mode with the saved weights, and the whole
        checkpoint dict (step, history, train_config, device, ...).
    """
    path = Path(path_or_workdir)
    if path.is_dir():
        errors: list[str] = []
        found = _latest_readable(path, errors)
        if found is None:
            detail = f" ({'; '.join(errors)})" if errors else ""
            raise FileNotFoundError(f"no readable checkpoint under {path}{detail}")
        path, payload = found
    else:
        if not path.exists():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        payload = _read_payload(path)
    cfg = payload.get("model_config")
    if model_factory is not None:
        model = model_factory(cfg)
    else:
        cls_path = payload.get("model_class")
        if not cls_path or cfg is None:
            raise TrainingError(f"{path} records no model class/config; pass model_factory")
        module, _, qualname = cls_path.partition(":")
        if not module.startswith("engine."):
            raise TrainingError(f"refusing to import model class {cls_path!r} from a checkpoint (not in engine.)")
        cls = getattr(importlib.import_module(module), qualname)
        model = cls.from_config(cfg)
    model.load_state_dict(payload["model_state"])
    model.eval()
    return model, payload


def save_model(model: torch.nn.Module, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write a model-only checkpoint (e.g. after pruning) that :func:`load_checkpoint` reads."""
    cfg, cls = _model_identity(model)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "kind": "model",
        "step": int((extra or {}).get("step", 0)),
        "model_state": _cpu_state_dict(model),
        "model_config": cfg,
        "model_class": cls,
        "torch_version": str(torch.__version__),
        **(extra or {}),
    }
    return write_with(path, lambda tmp: torch.save(payload, tmp))


# --------------------------------------------------------------------------- the loop


class _Loop:
    """State of one ``fit`` call; split out of ``fit`` to keep each piece readable."""

    def __init__(self, model, train_batches, val_batches, config: TrainConfig, reporter, workdir, loss_fn, metrics_fn):
        config.validate()
        self.model = model
        # under DDP, checkpoints hold the plain module (no "module." keys, its config), so
        # they load with load_checkpoint and resume with any number of ranks
        self.core = getattr(model, "module", model)
        self.config = config
        self.reporter = reporter if reporter is not None else NullReporter()
        self.workdir = Path(workdir) if workdir is not None else Path(self.reporter.artifact_dir()) / "train"
        self.ckdir = self.workdir / "checkpoints"
        self.loss_fn = loss_fn or (config.loss if callable(config.loss) else _LOSSES[config.loss])
        self.metrics_fn = metrics_fn
        self.train = _Batches(train_batches, config.batch_size, config.seed, shuffle=True)
        self.val = None if val_batches is None else _Batches(val_batches, config.batch_size, config.seed, shuffle=False)
        if self.val is not None and self.val.one_shot:
            raise ValueError("val_batches must be re-iterable (a list, a DataLoader or a callable), not an iterator")

        self.device = pick_device(config.device)
        self.device_info = describe(self.device)
        self.model.to(self.device)
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
        )
        self.amp_dtype = None
        if config.amp and self.device.type == "cuda":
            want = config.amp_dtype
            if want == "auto":
                want = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
            self.amp_dtype = getattr(torch, want)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

        per_epoch = self.train.per_epoch()
        if config.epochs is not None:
            if not per_epoch:
                raise ValueError("TrainConfig.epochs needs batches with a length; give steps instead")
            self.total = config.epochs * per_epoch
        else:
            self.total = config.steps

        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.history: dict[str, list[list[float]]] = {}
        self.best_step: int | None = None
        self.best_val: float | None = None
        self.best_state: dict | None = None
        self.bad_rounds = 0
        self.elapsed_before = 0.0
        self.last_ckpt: Path | None = None
        self.last_good_step: int | None = None
        self.resumed_from: int | None = None
        self.status = "running"

    # ---- persistence

    def payload(self, status: str) -> dict[str, Any]:
        cfg, cls = _model_identity(self.core)
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "kind": "train",
            "status": status,
            "step": self.step,
            "total_steps": self.total,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "model_state": _cpu_state_dict(self.core),
            "optimizer_state": _cpu_state_dict(self.optimizer),
            "scaler_state": self.scaler.state_dict(),
            "train_config": self.config.to_dict(),
            "model_config": cfg,
            "model_class": cls,
            "history": self.history,
            "best": {"step": self.best_step, "val_loss": self.best_val, "bad_rounds": self.bad_rounds},
            # The best weights travel with every checkpoint: best.pt may be newer than
            # the checkpoint a resume starts from.
            "best_state": self.best_state,
            "rng": _rng_state(),
            "device": self.device_info,
            "elapsed_s": self.elapsed_before + (time.perf_counter() - self.t_start),
            "torch_version": str(torch.__version__),
        }

    def checkpoint(self, status: str = "running") -> Path:
        path = self.ckdir / f"step_{self.step:08d}.pt"
        payload = self.payload(status)
        write_with(path, lambda tmp: torch.save(payload, tmp))
        self.last_ckpt, self.last_good_step = path, self.step
        for old in _prunable(list_checkpoints(self.workdir), path, self.config.keep_checkpoints):
            with contextlib.suppress(OSError):
                old.unlink()
        self.reporter.artifact("checkpoint", path, kind="checkpoint")
        return path

    def save_best(self, state: dict | None = None) -> None:
        # Kept in memory for restore_best, on disk for whoever wants the best model.
        self.best_state = state if state is not None else _cpu_state_dict(self.core)
        cfg, cls = _model_identity(self.core)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "kind": "best",
            "step": self.step,
            "val_loss": self.best_val,
            "model_state": self.best_state,
            "model_config": cfg,
            "model_class": cls,
            "train_config": self.config.to_dict(),
            "device": self.device_info,
        }
        write_with(self.ckdir / "best.pt", lambda tmp: torch.save(payload, tmp))

    def try_resume(self) -> dict[str, Any] | None:
        # temp files of checkpoint writes killed half way: nothing writes here now
        clean_orphans(self.ckdir, recursive=False)
        errors: list[str] = []
        found = _latest_readable(self.workdir, errors)
        if found is None:
            if errors:  # there were checkpoints, none loads: say so before starting over
                self.reporter.log(
                    f"no readable checkpoint in {self.ckdir} ({'; '.join(errors)[:400]}): "
                    "training starts again from step 0", level="warning")
            return None
        path, p = found
        try:
            self.core.load_state_dict(p["model_state"])
            self.optimizer.load_state_dict(p["optimizer_state"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0][:160]
            raise TrainingError(
                f"checkpoint {path} does not fit this model ({first}); use another workdir or resume=False"
            ) from exc
        with contextlib.suppress(Exception):
            self.scaler.load_state_dict(p["scaler_state"])
        self.step, self.epoch, self.batch_in_epoch = p["step"], p["epoch"], p["batch_in_epoch"]
        self.history = p["history"]
        best = p.get("best") or {}
        self.best_step, self.best_val, self.bad_rounds = best.get("step"), best.get("val_loss"), best.get("bad_rounds", 0)
        self.best_state = p.get("best_state")
        if self.best_state is not None:
            # best.pt may come from steps after this checkpoint that will be redone.
            self.save_best(self.best_state)
        # Settings that change what is learned (not how long) should match the run resumed.
        saved_cfg = p.get("train_config", {})
        now_cfg = self.config.to_dict()
        changed = [
            k for k in ("lr", "weight_decay", "batch_size", "loss", "clip_grad", "seed", "amp", "amp_dtype")
            if k in saved_cfg and saved_cfg[k] != now_cfg.get(k)
        ]
        if changed:
            diffs = ", ".join(f"{k} {saved_cfg[k]!r} -> {now_cfg[k]!r}" for k in changed)
            self.reporter.log(f"resuming {path.name} with changed settings: {diffs}", level="warning")
        self.elapsed_before = float(p.get("elapsed_s", 0.0))
        _set_rng_state(p.get("rng", {}))
        self.last_ckpt, self.last_good_step, self.resumed_from = path, self.step, self.step
        self.reporter.log(f"resumed from {path.name} at step {self.step} (was on {p.get('device', {}).get('device')})")
        return p

    # ---- pieces of a step

    def record(self, name: str, value: float, step: int) -> None:
        self.history.setdefault(name, []).append([int(step), float(value)])
        self.reporter.metric(name, value, step=step)

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def compute_loss(self, pred, target):
        if isinstance(pred, torch.Tensor) and pred.dtype in (torch.float16, torch.bfloat16):
            pred = pred.float()  # losses in float32: rates near 0 underflow in half precision
        return self.loss_fn(pred, target)

    def flush(self, losses: list, norms: list, first_step: int) -> None:
        """Wait for the device once, check the pending losses, log their mean."""
        if not losses:
            return
        values = torch.stack(losses).float().cpu()
        bad = (~torch.isfinite(values)).nonzero()
        if len(bad):
            at = first_step + int(bad[0])
            kind = "NaN" if math.isnan(values[int(bad[0])]) else "infinite"
            last = self.last_good_step
            where = f"step {last}" if last is not None else "none"
            raise NonFiniteLoss(
                f"loss became {kind} at step {at}; last good checkpoint: {where}; try a lower learning rate",
                step=at,
                last_good_step=last,
            )
        self.record("train_loss", float(values.mean()), self.step)
        if norms:
            self.record("grad_norm", float(torch.stack(norms).float().mean().cpu()), self.step)
        losses.clear()
        norms.clear()

    @torch.no_grad()
    def validate(self) -> tuple[float, float] | None:
        if self.val is None:
            return None
        self.model.eval()
        total, count = None, 0
        corr = _CorrAccumulator()
        preds, targets = [], []
        try:
            for inputs, target in self.val.epoch(0):
                inputs, target = _to_device(inputs, self.device), _to_device(target, self.device)
                with self.autocast():
                    pred = _call_model(self.model, inputs)
                pred = pred.float() if pred.dtype in (torch.float16, torch.bfloat16) else pred
                n = _batch_size(target)
                loss = self.compute_loss(pred, target).detach() * n
                total = loss if total is None else total + loss
                count += n
                corr.add(pred, target)
                if self.metrics_fn is not None:
                    preds.append(pred.cpu())
                    targets.append(target.cpu() if isinstance(target, torch.Tensor) else target)
        finally:
            self.model.train()
        if count == 0:
            raise ValueError("validation batches are empty")
        val_loss = float(total) / count
        per_channel = corr.result()
        finite = per_channel[torch.isfinite(per_channel)]
        val_corr = float(finite.mean()) if len(finite) else float("nan")
        self.record("val_loss", val_loss, self.step)
        self.record("val_corr", val_corr, self.step)
        if self.metrics_fn is not None:
            extra = self.metrics_fn(torch.cat(preds), torch.cat(targets)) or {}
            for name, value in extra.items():
                self.record(name, float(value), self.step)
        return val_loss, val_corr

    def after_validation(self, val_loss: float) -> bool:
        """Update best/patience; True when early stopping says stop."""
        if not math.isfinite(val_loss):
            return False
        if self.best_val is None or val_loss < self.best_val - self.config.min_delta:
            self.best_val, self.best_step, self.bad_rounds = val_loss, self.step, 0
            self.save_best()
            return False
        self.bad_rounds += 1
        return self.config.patience is not None and self.bad_rounds >= self.config.patience

    # ---- main

    def run(self, resume: bool) -> TrainResult:
        cfg = self.config
        self.t_start = time.perf_counter()
        payload = self.try_resume() if resume else None
        if payload is None:
            torch.manual_seed(cfg.seed)
            import numpy as np

            np.random.seed(cfg.seed % 2**32)
            random.seed(cfg.seed)
        elif payload.get("status") in ("early_stopped", "exhausted") or (
            payload.get("status") == "finished" and self.step >= self.total
        ):
            # Nothing left to do: a finished run asked to resume just reports itself
            # (a finished run given more steps carries on).
            self.status = payload["status"]
            self.finish_weights()
            return self.result(samples=0, t0=time.perf_counter())
        self.reporter.log(
            f"training on {self.device_info['device']} ({self.device_info.get('name', '')})"
            + (f", amp {str(self.amp_dtype).removeprefix('torch.')}" if self.amp_dtype else "")
            + f", {self.total} steps"
        )
        self.model.train()
        sync_every = cfg.log_every
        losses: list[torch.Tensor] = []
        norms: list[torch.Tensor] = []
        pending_from = self.step + 1
        samples = 0
        t0 = time.perf_counter()
        t_log, s_log, n_log = t0, self.step, 0
        t_run, s_run = t0, self.step  # the ETA's rate: whole run, validation and checkpoints included
        params = [p for p in self.model.parameters() if p.requires_grad]
        clip = cfg.clip_grad
        batches = self.train.epoch(self.epoch)
        # Replay the part of the epoch already used before the interruption.
        for _ in range(self.batch_in_epoch):
            if next(batches, None) is None:
                break
        self.status = "finished"
        while self.step < self.total:
            if self.reporter.cancelled:
                self.flush(losses, norms, pending_from)
                path = self.checkpoint("cancelled")
                self.reporter.log(f"cancelled at step {self.step}; checkpoint {path.name}")
                raise Cancelled(f"training cancelled at step {self.step}")
            batch = next(batches, None)
            if batch is None:
                if self.train.one_shot:
                    self.status = "exhausted"
                    self.reporter.log(f"training batches ran out at step {self.step}")
                    break
                if self.batch_in_epoch == 0:
                    raise ValueError("training batches are empty")
                self.epoch += 1
                self.batch_in_epoch = 0
                batches = self.train.epoch(self.epoch)
                continue
            inputs, target = batch
            inputs, target = _to_device(inputs, self.device), _to_device(target, self.device)

            if cfg.lr_schedule is not None:
                for group in self.optimizer.param_groups:
                    group["lr"] = lr_at(cfg, self.step, self.total)
            try:
                self.optimizer.zero_grad(set_to_none=True)
                with self.autocast():
                    pred = _call_model(self.model, inputs)
                loss = self.compute_loss(pred, target)
                self.scaler.scale(loss).backward()
                if clip is not None:
                    self.scaler.unscale_(self.optimizer)
                    norms.append(torch.nn.utils.clip_grad_norm_(params, clip))
                self.scaler.step(self.optimizer)
                self.scaler.update()
            except torch.OutOfMemoryError:
                n = _batch_size(target)
                where = f"step {last}" if (last := self.last_good_step) is not None else "none"
                raise TrainingError(
                    f"out of {self.device.type} memory at step {self.step + 1} with batch size {n}; "
                    f"lower batch_size (e.g. batch_size={max(1, n // 2)}); last good checkpoint: {where}"
                ) from None

            losses.append(loss.detach())
            self.step += 1
            self.batch_in_epoch += 1
            n = _batch_size(target)
            samples += n
            n_log += n

            # A NaN on CPU is checked at once (no sync cost); on GPU at the next flush.
            if self.device.type == "cpu" and not math.isfinite(losses[-1].item()):
                self.flush(losses, norms, pending_from)
            at_log = self.step % sync_every == 0 or self.step == self.total
            at_val = self.val is not None and (self.step % cfg.val_every == 0 or self.step == self.total)
            at_ckpt = self.step % cfg.checkpoint_every == 0
            if at_log or at_val or at_ckpt:
                self.flush(losses, norms, pending_from)
                pending_from = self.step + 1
            if at_log:
                now = time.perf_counter()
                rate = (self.step - s_log) / max(now - t_log, 1e-9)
                sps = n_log / max(now - t_log, 1e-9)
                # the rate of the last interval alone made the ETA jump (13 s, 9 min, 24 s...)
                # whenever a validation or another process took the CPU; the run's mean does not
                mean_rate = (self.step - s_run) / max(now - t_run, 1e-9)
                eta = (self.total - self.step) / mean_rate if mean_rate > 0 else None
                last_loss = self.history["train_loss"][-1][1]
                self.reporter.progress(
                    self.step, self.total, f"step {self.step}/{self.total} loss {last_loss:.4g}",
                    eta_s=eta, samples_per_s=sps, steps_per_s=rate, loss=last_loss,
                )
                for name, value in memory_stats(self.device).items():
                    self.reporter.metric(name, value, step=self.step)
                t_log, s_log, n_log = now, self.step, 0
            stop = False
            if at_val:
                val_loss, _ = self.validate()
                stop = self.after_validation(val_loss)
            if stop:
                self.status = "early_stopped"
                self.reporter.log(f"early stop at step {self.step}: no val improvement in {cfg.patience} validations")
                break
            if at_ckpt and self.step < self.total:
                self.checkpoint("running")
        self.flush(losses, norms, pending_from)
        self.checkpoint(self.status)
        self.finish_weights()
        return self.result(samples, t0)

    def finish_weights(self) -> None:
        if self.config.restore_best and self.best_state is not None:
            self.core.load_state_dict(self.best_state)
            self.model.to(self.device)

    def result(self, samples: int, t0: float) -> TrainResult:
        took = time.perf_counter() - t0
        return TrainResult(
            status=self.status,
            step=self.step,
            history=self.history,
            best_step=self.best_step,
            best_val_loss=self.best_val,
            device=self.device_info,
            checkpoint=str(self.last_ckpt) if self.last_ckpt else None,
            best_checkpoint=str(self.ckdir / "best.pt") if (self.ckdir / "best.pt").exists() else None,
            elapsed_s=self.elapsed_before + (time.perf_counter() - self.t_start),
            samples_per_s=samples / took if took > 0 else 0.0,
            resumed_from=self.resumed_from,
            config=self.config.to_dict(),
        )


def fit(
    model: torch.nn.Module,
    train_batches,
    val_batches=None,
    config: TrainConfig | None = None,
    reporter: Reporter | None = None,
    workdir: str | Path | None = None,
    resume: bool = True,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    metrics_fn: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None = None,
) -> TrainResult:
    """Train ``model`` in place with AdamW; the one loop every analysis uses.

    Parameters
    ----------
    model : torch.nn.Module
        ``model(inputs)`` returns predictions or ``(predictions, ...)``.  If it
        has a ``config`` (dataclass or ``to_dict()``) and a ``from_config``
        classmethod, checkpoints can rebuild it without a factory.
    train_batches, val_batches
        See the module docstring: ``(inputs, targets)`` tensors, a callable of
        the epoch, an iterable, or an iterator.  ``val_batches`` may be None.
    config : TrainConfig
        Defaults to ``TrainConfig()``.
    reporter : Reporter
        Receives progress (``eta_s``, ``samples_per_s``), metrics (train_loss,
        grad_norm, val_loss, val_corr, GPU memory), logs and checkpoint
        artifacts; ``reporter.cancelled`` is checked before every step.
    workdir : path
        Checkpoints go to ``workdir/checkpoints``; defaults to
        ``reporter.artifact_dir()/train``.
    resume : bool
        Continue from the newest readable checkpoint in ``workdir`` (history,
        optimizer, RNG and position in the epoch included).
    loss_fn : callable, optional
        ``f(pred, target) -> scalar tensor``; overrides ``config.loss``.
    metrics_fn : callable, optional
        ``f(all_val_pred, all_val_target) -> {name: float}`` (CPU tensors),
        recorded at every validation.

    Returns
    -------
    TrainResult

    Raises
    ------
    Cancelled
        When the reporter asked to stop; a checkpoint was written first.
    NonFiniteLoss
        When the loss became NaN/inf; the last checkpoint is untouched.
    ValueError
        On a bad config or empty batches.
    """
    loop = _Loop(model, train_batches, val_batches, config or TrainConfig(), reporter, workdir, loss_fn, metrics_fn)
    return loop.run(resume)
