"""The lds analysis's view of an NLB file (its arrays, splits and submission)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.errors import DataError
from engine.data.nlb.reading import NLBData, read_nlb
from engine.data.nlb.submission import evaluate, write_eval_target, write_submission


@dataclass
class NLBForLDS:
    """An NLB dataset in the lds analysis's layout (what ``engine.data.lds_gen.read_h5`` gives it).

    ``spikes`` is (bins, trials, neurons) with the held-out neurons first
    (``[:n_heldout]``) and the evaluation trials last (``[-n_eval:]``), so the
    analysis's held-out/held-in and train/test slices are NLB's.  There is no
    ground truth: ``rates`` and ``latents`` are None.
    """

    spikes: np.ndarray
    n_heldout: int
    n_eval: int
    nlb: NLBData
    source: str
    rates: None = None
    latents: None = None

    @property
    def config(self) -> "NLBForLDS":
        return self

    def as_attrs(self) -> dict[str, Any]:
        """What identifies the data (the analysis restarts training when it changes)."""
        return {"data": self.source, "bin_ms": self.nlb.bin_ms, "align": self.nlb.align,
                "window_ms": list(self.nlb.window_ms), "shape": list(self.spikes.shape)}

    def neuron_split(self) -> tuple[slice, slice]:
        """(held-in, held-out) neuron slices."""
        return slice(self.n_heldout, self.spikes.shape[2]), slice(0, self.n_heldout)

    def trial_split(self) -> tuple[slice, slice]:
        """(train, eval) trial slices."""
        n = self.spikes.shape[1]
        return slice(0, n - self.n_eval), slice(n - self.n_eval, n)


#: The lds analysis's parameters for NLB files and their defaults.
LDS_PARAMS = {"bin_ms": 5.0, "align": "start_time", "train_split": "train", "eval_split": "val",
              "behavior": "", "nlb_dataset": "mc_maze"}


def for_lds(path: str | Path, p: dict[str, Any] | None = None) -> NLBForLDS:
    """Read an NLB file for the lds analysis (settings from ``p``, see :data:`LDS_PARAMS`)."""
    v = {k: (p or {}).get(k, d) for k, d in LDS_PARAMS.items()}
    x = read_nlb(path, bin_ms=float(v["bin_ms"]), align=str(v["align"]), train_splits=(str(v["train_split"]),),
                 eval_splits=(str(v["eval_split"]),), behavior=str(v["behavior"] or ""))
    if x.eval_heldout is None:
        raise DataError(f"{path}: the {v['eval_split']} trials carry no held-out spikes (an NLB test file): "
                        "train and score on a file with held-out spikes, e.g. eval_split=val")
    train = np.concatenate([x.train_heldout, x.train_heldin], axis=2)
    ev = np.concatenate([x.eval_heldout, x.eval_heldin], axis=2)
    spikes = np.concatenate([train, ev], axis=0).transpose(1, 0, 2)  # (bins, trials, neurons)
    return NLBForLDS(spikes=np.ascontiguousarray(spikes).astype(np.int64), n_heldout=len(x.heldout_ids),
                     n_eval=len(x.eval_trials), nlb=x, source=str(Path(path).resolve()))


def write_lds_submission(data: NLBForLDS, rates_heldout: np.ndarray, rates_heldin: np.ndarray, folder: str | Path,
                         dataset: str = "mc_maze") -> dict[str, Any]:
    """Write the lds predictions ((bins, trials, neurons), NLB order) as an NLB submission and
    a local eval target in ``folder``; score them with nlb_tools when it is installed.

    Returns the file paths and, with nlb_tools, its metrics (``nlb_co_bps``...).
    """
    folder = Path(folder)
    ho = np.asarray(rates_heldout, dtype=float).transpose(1, 0, 2)
    hi = np.asarray(rates_heldin, dtype=float).transpose(1, 0, 2)
    tr, ev = data.trial_split()
    sub = write_submission(folder / "nlb_submission.h5", dataset, data.nlb.bin_ms,
                           train_rates_heldin=hi[tr], train_rates_heldout=ho[tr],
                           eval_rates_heldin=hi[ev], eval_rates_heldout=ho[ev])
    target = write_eval_target(folder / "nlb_eval_target.h5", dataset, data.nlb)
    out: dict[str, Any] = {"nlb_submission": str(sub), "nlb_eval_target": str(target)}
    try:
        import nlb_tools  # noqa: F401
    except ImportError:
        return out
    res = evaluate(target, sub)
    if data.nlb.train_behavior is None:  # decoding the zero stand-in means nothing: leave it out
        res = {k: v for k, v in res.items() if k == "co-bps"}
    out.update({"nlb_" + k.replace("-", "_").replace(" ", "_").lower(): float(v) for k, v in res.items()})
    return out
