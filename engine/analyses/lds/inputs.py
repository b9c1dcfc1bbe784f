"""What the ``lds`` steps read and where they keep it: the data (generated, or an NLB file),
the held-in/held-out neuron and train/test trial splits, and the training folder that is
reset when the settings it was made with change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.analyses.base import StepContext

DATA_FILE = "lds.h5"
PRED_FILE = "lds_predictions.npz"
TRAIN_DIR = "rnn"
READOUT_DIR = "heldin_readout"


def _config(p: dict[str, Any]):
    from engine.data.lds_gen import LDSConfig

    return LDSConfig(seed=p["seed"], trials=p["trials"], neurons=p["neurons"], steps=p["steps"], latents=p["latents"])


def load_data(ctx: StepContext, p: dict[str, Any] | None = None):
    from engine.data.lds_gen import read_h5

    if p and p.get("data"):  # an NLB-style NWB file (engine.data.nlb): NLB's neuron and trial splits
        from engine.data.nlb import for_lds

        return for_lds(p["data"], p)
    path = ctx.workdir / DATA_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the 'generate' step first")
    return read_h5(path)


def split_neurons(n_neurons: int) -> tuple[slice, slice]:
    """(held-in, held-out) neuron slices: the seed predicts the first half from the second."""
    if n_neurons < 2:
        raise ValueError(f"need at least 2 neurons to split into held-in and held-out, got {n_neurons}")
    half = n_neurons // 2
    return slice(half, n_neurons), slice(0, half)


def _neuron_split(data) -> tuple[slice, slice]:
    return data.neuron_split() if hasattr(data, "neuron_split") else split_neurons(data.spikes.shape[2])


def trial_split(data, p: dict[str, Any]) -> tuple[slice, slice]:
    return data.trial_split() if hasattr(data, "trial_split") else split_trials(data.spikes.shape[1],
                                                                                p["heldout_trials"])


def split_trials(n_trials: int, heldout_trials: int) -> tuple[slice, slice]:
    """(train, test) trial slices; the test trials are the last ``heldout_trials``."""
    if not 0 <= heldout_trials < n_trials:
        raise ValueError(f"heldout_trials must be in [0, {n_trials - 1}] for {n_trials} trials, got {heldout_trials}")
    cut = n_trials - heldout_trials
    return slice(0, cut), slice(cut, n_trials)


def _full_batch(x_in, x_out):
    # One full batch per "epoch": the seed does full-batch gradient descent.
    batch = [(x_in, x_out)]
    return lambda epoch: batch


def _reset_if_changed(workdir: Path, settings: dict) -> None:
    """Drop training state made with other settings, so ``fit(resume=True)`` never continues a stale run."""
    import shutil

    stamp = workdir / TRAIN_DIR / "settings.json"
    if stamp.exists() and json.loads(stamp.read_text()) == settings:
        return
    for d in (TRAIN_DIR, READOUT_DIR):
        shutil.rmtree(workdir / d, ignore_errors=True)
    (workdir / TRAIN_DIR).mkdir(parents=True)
    write_json(stamp, settings)


def write_json(path: Path, obj: dict) -> None:
    from engine.atomic import write_json

    write_json(path, obj)
