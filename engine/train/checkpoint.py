"""Training checkpoints: write, trim, find the newest readable one, resume from it, load it.

``workdir/checkpoints/step_XXXXXXXX.pt`` (the last ``keep_checkpoints``) and
``workdir/checkpoints/best.pt`` (best validation loss) are model files
(:mod:`engine.train.model_file`) with the training state added, so
``torch.load(path, weights_only=True)`` reads them and :func:`load_model` rebuilds
their model.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any, Callable

import torch

from engine.atomic import clean_orphans, write_with
from engine.errors import TrainingError
from engine.reporting import Reporter
from engine.train.config import TrainConfig
from engine.train.model_file import cpu_state_dict, model_header, read_model_file, rebuild_model
from engine.train.state import TrainState, rng_state, set_rng_state

_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
# settings that change what is learned (not how long): a resume warns when they differ
_LEARNING_KEYS = ("lr", "weight_decay", "batch_size", "loss", "clip_grad", "seed", "amp", "amp_dtype")


def list_checkpoints(workdir: str | Path) -> list[Path]:
    """Step checkpoints in ``workdir/checkpoints`` (or ``workdir`` itself), oldest first."""
    root = Path(workdir)
    ckdir = root / "checkpoints" if (root / "checkpoints").is_dir() else root
    if not ckdir.is_dir():
        return []
    found = [(_step_of(p), p) for p in ckdir.iterdir() if _STEP_FILE.match(p.name)]
    return [p for _, p in sorted(found)]


def _step_of(path: Path) -> int:
    m = _STEP_FILE.match(path.name)
    return int(m.group(1)) if m else -1


def prunable(found: list[Path], written: Path, keep: int) -> list[Path]:
    """Step checkpoints to delete after writing ``written``: never it (a resumed run may
    write a lower step number than files left from before), then the newest ``keep - 1``
    older ones stay; files of later steps are left from an abandoned run (torn, or
    unreadable: the resume fell back past them) and go."""
    step = _step_of(written)
    older = [p for p in found if p != written and _step_of(p) < step]
    later = [p for p in found if p != written and _step_of(p) >= step]
    return older[: max(0, len(older) - (keep - 1))] + later


def latest_readable(workdir: Path, errors: list | None = None) -> tuple[Path, dict[str, Any]] | None:
    """Newest step checkpoint that loads; a torn or corrupt newest file falls back to older."""
    for path in reversed(list_checkpoints(workdir)):
        try:
            return path, read_model_file(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: try the previous one
            if errors is not None:
                errors.append(f"{path.name}: {str(exc).splitlines()[0][:200]}")
    return None


def load_checkpoint(path_or_workdir: str | Path, model_factory: Callable[[dict], torch.nn.Module] | None = None):
    """Load a checkpoint (or any model file) and rebuild its model.

    Parameters
    ----------
    path_or_workdir : path
        A checkpoint file, or a workdir / checkpoints folder (its newest readable step
        checkpoint is used).
    model_factory : callable, optional
        ``f(model_config_dict) -> nn.Module``.  Without it the class the file names is
        looked up in :mod:`engine.models.registry` and built with ``from_config``.

    Returns
    -------
    (model, payload)
        The model on CPU in eval mode with the saved weights, and the whole
        checkpoint dict (step, history, train_config, device, ...).
    """
    path = Path(path_or_workdir)
    if path.is_dir():
        errors: list[str] = []
        found = latest_readable(path, errors)
        if found is None:
            detail = f" ({'; '.join(errors)})" if errors else ""
            raise FileNotFoundError(f"no readable checkpoint under {path}{detail}")
        path, payload = found
    else:
        if not path.exists():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        payload = read_model_file(path)
    return rebuild_model(payload, path, model_factory), payload


class Checkpointer:
    """Writes and reads the checkpoints of one ``fit`` call.

    ``core`` is the plain module (under DDP the wrapped one: no "module." keys, its
    config), so checkpoints load with :func:`load_checkpoint` and resume on any number
    of ranks.
    """

    def __init__(self, workdir: Path, config: TrainConfig, core, optimizer, scaler,
                 device_info: dict[str, Any], reporter: Reporter, total: int, t_start: float):
        self.workdir, self.ckdir = workdir, workdir / "checkpoints"
        self.config, self.core, self.optimizer, self.scaler = config, core, optimizer, scaler
        self.device_info, self.reporter, self.total, self.t_start = device_info, reporter, total, t_start

    def _elapsed(self, state: TrainState) -> float:
        return state.elapsed_before + (time.perf_counter() - self.t_start)

    def payload(self, state: TrainState, status: str) -> dict[str, Any]:
        return {
            **model_header(self.core, "train", required=False),
            "status": status,
            "step": state.step,
            "total_steps": self.total,
            "epoch": state.epoch,
            "batch_in_epoch": state.batch_in_epoch,
            "model_state": cpu_state_dict(self.core),
            "optimizer_state": cpu_state_dict(self.optimizer),
            "scaler_state": self.scaler.state_dict(),
            "train_config": self.config.to_dict(),
            "history": state.history,
            "best": {"step": state.best_step, "val_loss": state.best_val, "bad_rounds": state.bad_rounds},
            # The best weights travel with every checkpoint: best.pt may be newer than
            # the checkpoint a resume starts from.
            "best_state": state.best_state,
            "rng": rng_state(),
            "device": self.device_info,
            "elapsed_s": self._elapsed(state),
        }

    def write(self, state: TrainState, status: str = "running") -> Path:
        path = self.ckdir / f"step_{state.step:08d}.pt"
        payload = self.payload(state, status)
        write_with(path, lambda tmp: torch.save(payload, tmp))
        state.last_ckpt, state.last_good_step = path, state.step
        for old in prunable(list_checkpoints(self.workdir), path, self.config.keep_checkpoints):
            with contextlib.suppress(OSError):
                old.unlink()
        self.reporter.artifact("checkpoint", path, kind="checkpoint")
        return path

    def save_best(self, state: TrainState, weights: dict | None = None) -> None:
        # Kept in memory for restore_best, on disk for whoever wants the best model.
        state.best_state = weights if weights is not None else cpu_state_dict(self.core)
        payload = {
            **model_header(self.core, "best", required=False),
            "step": state.step,
            "val_loss": state.best_val,
            "model_state": state.best_state,
            "train_config": self.config.to_dict(),
            "device": self.device_info,
        }
        write_with(self.ckdir / "best.pt", lambda tmp: torch.save(payload, tmp))

    def resume(self, state: TrainState) -> dict[str, Any] | None:
        """Load the newest readable checkpoint into the model, optimizer and ``state``."""
        # temp files of checkpoint writes killed half way: nothing writes here now
        clean_orphans(self.ckdir, recursive=False)
        errors: list[str] = []
        found = latest_readable(self.workdir, errors)
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
        self._restore_state(state, p)
        self._warn_changed_settings(path, p.get("train_config", {}))
        set_rng_state(p.get("rng", {}))
        state.last_ckpt, state.last_good_step, state.resumed_from = path, state.step, state.step
        self.reporter.log(f"resumed from {path.name} at step {state.step} (was on {p.get('device', {}).get('device')})")
        return p

    def _restore_state(self, state: TrainState, p: dict[str, Any]) -> None:
        state.step, state.epoch, state.batch_in_epoch = p["step"], p["epoch"], p["batch_in_epoch"]
        state.history = p["history"]
        best = p.get("best") or {}
        state.best_step, state.best_val = best.get("step"), best.get("val_loss")
        state.bad_rounds = best.get("bad_rounds", 0)
        state.best_state = p.get("best_state")
        if state.best_state is not None:
            # best.pt may come from steps after this checkpoint that will be redone.
            self.save_best(state, state.best_state)
        state.elapsed_before = float(p.get("elapsed_s", 0.0))

    def _warn_changed_settings(self, path: Path, saved: dict[str, Any]) -> None:
        now = self.config.to_dict()
        changed = [k for k in _LEARNING_KEYS if k in saved and saved[k] != now.get(k)]
        if changed:
            diffs = ", ".join(f"{k} {saved[k]!r} -> {now[k]!r}" for k in changed)
            self.reporter.log(f"resuming {path.name} with changed settings: {diffs}", level="warning")
