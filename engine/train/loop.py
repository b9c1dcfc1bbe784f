"""The one training loop shared by every analysis (retina CfC, RNN, GNN, CNN).

``fit`` trains any ``torch.nn.Module`` on batches supplied by the caller (see
:mod:`engine.train.batches`) and takes care of what every analysis needs the same way:
the device, mixed precision on CUDA, gradient clipping, Poisson/MSE losses, validation
with per-channel correlation, early stopping, crash-safe checkpoints that resume with
the history intact (:mod:`engine.train.checkpoint`), cancel at every step, and a clear
error when the loss blows up or the device runs out of memory.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from engine.device import describe, pick_device
from engine.errors import TrainingError
from engine.reporting import Cancelled, NullReporter, Reporter
from engine.train.batches import Batches, batch_size_of, call_model, to_device
from engine.train.checkpoint import Checkpointer
from engine.train.config import TrainConfig, TrainResult, lr_at
from engine.train.losses import LOSSES, LossBuffer
from engine.train.progress import ProgressMeter
from engine.train.state import TrainState, seed_everything
from engine.train.validation import compute_loss, validate


def _amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Mixed precision only on CUDA; "auto" is bfloat16 where the GPU has it."""
    if not (config.amp and device.type == "cuda"):
        return None
    want = config.amp_dtype
    if want == "auto":
        want = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return getattr(torch, want)


def _nothing_left(payload: dict[str, Any], step: int, total: int) -> bool:
    """A run that stopped for good (or finished all its steps) has nothing to resume;
    a finished run given more steps carries on."""
    status = payload.get("status")
    return status in ("early_stopped", "exhausted") or (status == "finished" and step >= total)


class _Loop:
    """State of one ``fit`` call; split out of ``fit`` to keep each piece readable."""

    def __init__(self, model, train_batches, val_batches, config: TrainConfig, reporter, workdir, loss_fn, metrics_fn):
        config.validate()
        self.model = model
        self.core = getattr(model, "module", model)  # under DDP, checkpoints hold the plain module
        self.config = config
        self.reporter = reporter if reporter is not None else NullReporter()
        workdir = Path(workdir) if workdir is not None else Path(self.reporter.artifact_dir()) / "train"
        self.loss_fn = loss_fn or (config.loss if callable(config.loss) else LOSSES[config.loss])
        self.metrics_fn = metrics_fn
        self.train = Batches(train_batches, config.batch_size, config.seed, shuffle=True)
        self.val = None if val_batches is None else Batches(val_batches, config.batch_size, config.seed, shuffle=False)
        if self.val is not None and self.val.one_shot:
            raise ValueError("val_batches must be re-iterable (a list, a DataLoader or a callable), not an iterator")

        self.device = pick_device(config.device)
        self.device_info = describe(self.device)
        self.model.to(self.device)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        self.amp_dtype = _amp_dtype(config, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.total = self._total_steps()
        self.state = TrainState()
        self.pending = LossBuffer(1)  # losses not yet checked: a new one per run
        self.t_start = time.perf_counter()
        self.ckpt = Checkpointer(workdir, config, self.core, self.optimizer, self.scaler, self.device_info,
                                 self.reporter, self.total, self.t_start)

    def _total_steps(self) -> int:
        if self.config.epochs is None:
            return self.config.steps
        per_epoch = self.train.per_epoch()
        if not per_epoch:
            raise ValueError("TrainConfig.epochs needs batches with a length; give steps instead")
        return self.config.epochs * per_epoch

    # ---- main

    def run(self, resume: bool) -> TrainResult:
        s = self.state
        self.t_start = self.ckpt.t_start = time.perf_counter()
        payload = self.ckpt.resume(s) if resume else None
        if payload is None:
            seed_everything(self.config.seed)
        elif _nothing_left(payload, s.step, self.total):
            s.status = payload["status"]
            self.finish_weights()
            return self.result(ProgressMeter(s.step))
        self.announce()
        self.model.train()
        self.pending = LossBuffer(s.step + 1)
        meter = ProgressMeter(s.step)
        batches = self.replay_epoch()
        s.status = "finished"
        while s.step < self.total:
            self.stop_if_cancelled()
            batch = next(batches, None)
            if batch is None:
                if self.train.one_shot:
                    s.status = "exhausted"
                    self.reporter.log(f"training batches ran out at step {s.step}")
                    break
                batches = self.next_epoch()
                continue
            meter.count(self.train_step(*batch))
            if self.after_step(meter):
                break
        self.flush()
        self.ckpt.write(s, s.status)
        self.finish_weights()
        return self.result(meter)

    # ---- pieces of the run

    def announce(self) -> None:
        amp = f", amp {str(self.amp_dtype).removeprefix('torch.')}" if self.amp_dtype else ""
        self.reporter.log(
            f"training on {self.device_info['device']} ({self.device_info.get('name', '')}){amp}, {self.total} steps")

    def replay_epoch(self) -> Iterator:
        """The current epoch's batches, past those used before an interruption."""
        batches = self.train.epoch(self.state.epoch)
        for _ in range(self.state.batch_in_epoch):
            if next(batches, None) is None:
                break
        return batches

    def next_epoch(self) -> Iterator:
        if self.state.batch_in_epoch == 0:
            raise ValueError("training batches are empty")
        self.state.epoch += 1
        self.state.batch_in_epoch = 0
        return self.train.epoch(self.state.epoch)

    def stop_if_cancelled(self) -> None:
        if not self.reporter.cancelled:
            return
        self.flush()
        path = self.ckpt.write(self.state, "cancelled")
        self.reporter.log(f"cancelled at step {self.state.step}; checkpoint {path.name}")
        raise Cancelled(f"training cancelled at step {self.state.step}")

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def train_step(self, inputs, target) -> int:
        """One optimizer step on one batch; returns its number of samples."""
        inputs, target = to_device(inputs, self.device), to_device(target, self.device)
        if self.config.lr_schedule is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at(self.config, self.state.step, self.total)
        norm = None
        try:
            self.optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                pred = call_model(self.model, inputs)
            loss = compute_loss(self.loss_fn, pred, target)
            self.scaler.scale(loss).backward()
            if self.config.clip_grad is not None:
                self.scaler.unscale_(self.optimizer)
                norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.clip_grad)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        except torch.OutOfMemoryError:
            raise self.out_of_memory(batch_size_of(target)) from None
        self.pending.add(loss, norm)
        self.state.step += 1
        self.state.batch_in_epoch += 1
        # A NaN on CPU is checked at once (no sync cost); on GPU at the next flush.
        if self.device.type == "cpu" and not self.pending.last_is_finite():
            self.flush()
        return batch_size_of(target)

    def out_of_memory(self, n: int) -> TrainingError:
        last = self.state.last_good_step
        where = f"step {last}" if last is not None else "none"
        return TrainingError(
            f"out of {self.device.type} memory at step {self.state.step + 1} with batch size {n}; "
            f"lower batch_size (e.g. batch_size={max(1, n // 2)}); last good checkpoint: {where}")

    def after_step(self, meter: ProgressMeter) -> bool:
        """Report, validate and checkpoint when due; True when early stopping says stop."""
        s, cfg = self.state, self.config
        at_log = s.step % cfg.log_every == 0 or s.step == self.total
        at_val = self.val is not None and (s.step % cfg.val_every == 0 or s.step == self.total)
        at_ckpt = s.step % cfg.checkpoint_every == 0
        if at_log or at_val or at_ckpt:
            self.flush()
        if at_log:
            meter.report(self.reporter, s.step, self.total, s.history["train_loss"][-1][1], self.device)
        if at_val and self.run_validation():
            s.status = "early_stopped"
            self.reporter.log(f"early stop at step {s.step}: no val improvement in {cfg.patience} validations")
            return True
        if at_ckpt and s.step < self.total:
            self.ckpt.write(s, "running")
        return False

    def flush(self) -> None:
        """Wait for the device once, check the pending losses, record their mean."""
        means = self.pending.flush(self.state.step + 1, self.state.last_good_step)
        if means is None:
            return
        loss, norm = means
        self.record("train_loss", loss)
        if norm is not None:
            self.record("grad_norm", norm)

    def run_validation(self) -> bool:
        """Validate, record, keep the best weights; True when early stopping says stop."""
        if self.val is None:
            return False
        v = validate(self.model, self.val, self.device, self.autocast, self.loss_fn, self.metrics_fn)
        self.record("val_loss", v.loss)
        self.record("val_corr", v.corr)
        for name, value in v.extra.items():
            self.record(name, value)
        best, stop = self.state.improved(v.loss, self.config.min_delta, self.config.patience)
        if best:
            self.ckpt.save_best(self.state)
        return stop

    def record(self, name: str, value: float) -> None:
        step = self.state.step
        self.state.history.setdefault(name, []).append([int(step), float(value)])
        self.reporter.metric(name, value, step=step)

    # ---- the end

    def finish_weights(self) -> None:
        if self.config.restore_best and self.state.best_state is not None:
            self.core.load_state_dict(self.state.best_state)
            self.model.to(self.device)

    def result(self, meter: ProgressMeter) -> TrainResult:
        s, now = self.state, time.perf_counter()
        took = now - meter.t_run
        best = self.ckpt.ckdir / "best.pt"
        return TrainResult(
            status=s.status,
            step=s.step,
            history=s.history,
            best_step=s.best_step,
            best_val_loss=s.best_val,
            device=self.device_info,
            checkpoint=str(s.last_ckpt) if s.last_ckpt else None,
            best_checkpoint=str(best) if best.exists() else None,
            elapsed_s=s.elapsed_before + (now - self.t_start),
            samples_per_s=meter.samples / took if took > 0 else 0.0,
            resumed_from=s.resumed_from,
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
        ``model(inputs)`` returns predictions or ``(predictions, ...)``.  If its class
        is in :mod:`engine.models.registry` (a ``config`` and ``from_config``),
        checkpoints rebuild it without a factory.
    train_batches, val_batches
        See :mod:`engine.train.batches`: ``(inputs, targets)`` tensors, a callable of
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
    TrainingError
        When the device runs out of memory, or a checkpoint does not fit the model.
    ValueError
        On a bad config or empty batches.
    """
    loop = _Loop(model, train_batches, val_batches, config or TrainConfig(), reporter, workdir, loss_fn, metrics_fn)
    return loop.run(resume)
