"""NLB submissions out: rate predictions in the submission layout, the matching local
evaluation target, and nlb_tools' evaluation of the two."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.data.errors import DataError
from engine.data.nlb.reading import NLB_DATASETS, NLBData

def submission_name(dataset: str, bin_ms: float) -> str:
    """The group name nlb_tools looks for: ``mc_maze`` at 5 ms, ``mc_maze_20`` at 20 ms."""
    if dataset not in NLB_DATASETS:
        raise DataError(f"NLB dataset must be one of {', '.join(NLB_DATASETS)} (nlb_tools evaluates only those), "
                        f"got {dataset!r}")
    if bin_ms == 5:
        return dataset
    if bin_ms == 20:
        return dataset + "_20"
    raise DataError(f"NLB evaluates 5 or 20 ms bins, got {bin_ms:g} ms")


def _check_rates(name: str, a) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if a.ndim != 3:
        raise DataError(f"{name} must be (trials, bins, neurons), got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise DataError(f"{name} holds NaN, inf or negative rates (NLB needs rates >= 0 per bin)")
    return a


def write_submission(path: str | Path, dataset: str, bin_ms: float, *, train_rates_heldin, train_rates_heldout,
                     eval_rates_heldin, eval_rates_heldout, dtype="float64") -> Path:
    """Write rate predictions (counts per bin, (trials, bins, neurons)) in NLB's submission layout.

    ``dtype`` float64 keeps the rates exactly as scored here (NLB's own examples
    write float32; pass it for a smaller upload).  An existing group of the same
    name is replaced, other datasets' groups are kept (one file may carry several).
    """
    import h5py

    from engine.atomic import write_with

    path = Path(path)
    group = submission_name(dataset, bin_ms)
    arrays = {k: _check_rates(k, v) for k, v in dict(
        train_rates_heldin=train_rates_heldin, train_rates_heldout=train_rates_heldout,
        eval_rates_heldin=eval_rates_heldin, eval_rates_heldout=eval_rates_heldout).items()}
    if arrays["train_rates_heldin"].shape[:2] != arrays["train_rates_heldout"].shape[:2] or \
            arrays["eval_rates_heldin"].shape[:2] != arrays["eval_rates_heldout"].shape[:2]:
        raise DataError("held-in and held-out rates must cover the same trials and bins")

    def _write(tmp: Path) -> None:
        if path.exists():
            import shutil

            shutil.copyfile(path, tmp)
        with h5py.File(tmp, "a") as f:
            if group in f:
                del f[group]
            g = f.create_group(group)
            for k, v in arrays.items():
                g.create_dataset(k, data=v.astype(dtype))

    write_with(path, _write)
    return path


def write_eval_target(path: str | Path, dataset: str, data: NLBData) -> Path:
    """The local evaluation target nlb_tools reads: held-out eval spikes and behaviour.

    Without behaviour in ``data`` a zero behaviour channel is written (nlb_tools
    reads it unconditionally; the velocity R2 it yields then means nothing).
    """
    import h5py

    from engine.atomic import write_with

    if data.eval_heldout is None:
        raise DataError("the evaluation trials have no held-out spikes (an NLB test file): "
                        "only NLB's server can score them; evaluate on 'val' trials locally")
    heldout = data.eval_heldout
    group = submission_name(dataset, data.bin_ms)
    tb = data.train_behavior if data.train_behavior is not None else np.zeros(data.train_heldin.shape[:2] + (1,))
    eb = data.eval_behavior if data.eval_behavior is not None else np.zeros(data.eval_heldin.shape[:2] + (1,))

    def _write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            g = f.create_group(group)
            g.create_dataset("eval_spikes_heldout", data=heldout.astype(float))
            g.create_dataset("train_behavior", data=np.nan_to_num(tb).astype(float))
            g.create_dataset("eval_behavior", data=np.nan_to_num(eb).astype(float))

    write_with(Path(path), _write)
    return Path(path)


def evaluate(target: str | Path, submission: str | Path) -> dict[str, float]:
    """Run ``nlb_tools.evaluation.evaluate`` and return the first dataset's metrics (``co-bps``...)."""
    try:
        from nlb_tools.evaluation import evaluate as nlb_evaluate
    except ImportError:
        raise DataError("nlb_tools is not installed: pip install --no-deps nlb_tools") from None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = nlb_evaluate(str(target), str(submission))
    if not result:
        raise DataError(f"nlb_tools found no dataset of {submission} in {target}")
    return next(iter(result[0].values()))
