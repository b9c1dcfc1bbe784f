"""Neural Latents Benchmark exchange: NLB-style NWB datasets in, NLB submissions out.

An NLB dataset file (DANDI 000128-000140, read by ``nlb_tools.NWBDataset``) holds

* ``units`` -- ``spike_times``, ``obs_intervals`` and a boolean ``heldout``
  column: held-in neurons are the model's input, held-out neurons are predicted
  (co-smoothing);
* ``trials`` -- ``start_time``, ``stop_time``, ``split`` (``train``, ``val``,
  ``test``) and alignment fields such as ``move_onset_time``;
* behaviour as time series (``processing/behavior/hand_vel``...).

:func:`read_nlb` bins the spikes of the chosen trials, aligned on a trial field,
into the arrays the lds analysis trains on (``NLBData``: held-in and held-out
counts for the train and the evaluation trials).  :func:`write_submission` writes
rate predictions in the NLB submission layout (one HDF5 group per dataset with
``train_rates_heldin``, ``train_rates_heldout``, ``eval_rates_heldin``,
``eval_rates_heldout``), :func:`write_eval_target` the matching local evaluation
target (``eval_spikes_heldout``, ``train_behavior``, ``eval_behavior``), and
:func:`evaluate` runs ``nlb_tools.evaluation.evaluate`` on them.
:func:`write_nlb_nwb` writes the layout with pynwb from binned counts (the LDS
generator's), so the reader is tested on a file with known spikes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.errors import DataError

__all__ = ["NLBData", "read_nlb", "write_submission", "write_eval_target", "evaluate", "submission_name",
           "write_nlb_nwb", "NLB_DATASETS", "NLBForLDS", "for_lds", "write_lds_submission", "LDS_PARAMS"]

#: The dataset names nlb_tools' evaluation knows (a submission group must carry one).
NLB_DATASETS = ("mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg", "mc_maze_large", "mc_maze_medium", "mc_maze_small")


@dataclass
class NLBData:
    """Binned spikes of one NLB dataset, arrays (trials, bins, neurons) as NLB writes them.

    ``eval_heldout`` is None for a file without held-out spikes on the evaluation
    trials (NLB's ``test`` files).  Behaviour arrays are (trials, bins, channels).
    """

    train_heldin: np.ndarray
    train_heldout: np.ndarray
    eval_heldin: np.ndarray
    eval_heldout: np.ndarray | None
    heldin_ids: np.ndarray
    heldout_ids: np.ndarray
    train_trials: np.ndarray
    eval_trials: np.ndarray
    bin_ms: float
    align: str
    window_ms: tuple[float, float]
    train_behavior: np.ndarray | None = None
    eval_behavior: np.ndarray | None = None

    @property
    def n_bins(self) -> int:
        return int(self.train_heldin.shape[1])

    def time_major(self, which: str = "train") -> tuple[np.ndarray, np.ndarray | None]:
        """(held-in, held-out) as (bins, trials, neurons): the lds analysis's layout."""
        hi = getattr(self, f"{which}_heldin")
        ho = getattr(self, f"{which}_heldout")
        return hi.transpose(1, 0, 2), None if ho is None else ho.transpose(1, 0, 2)


def _text(values) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()], dtype=object)


def _bin_counts(spike_ds, starts: np.ndarray, stops: np.ndarray, unit_rows: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts (trials, bins, units) in ``[edge_k, edge_k+1)`` for each trial's edges row.

    One searchsorted per unit over all trials' edges; a unit's spikes are read once.
    """
    n_trials, n_edges = edges.shape
    out = np.zeros((n_trials, n_edges - 1, len(unit_rows)), dtype=np.float64)
    flat = edges.ravel()
    for k, r in enumerate(unit_rows):
        t = np.asarray(spike_ds[int(starts[r]):int(stops[r])], dtype=float)
        if t.size == 0:
            continue
        if np.any(np.diff(t) < 0):
            t = np.sort(t)
        pos = np.searchsorted(t, flat, side="left").reshape(n_trials, n_edges)
        out[:, :, k] = np.diff(pos, axis=1)
    return out


def _behavior(nwb, name: str, edges: np.ndarray, where) -> np.ndarray:
    """Mean of a time series' samples inside each bin: (trials, bins, channels)."""
    from pynwb import TimeSeries

    from engine.data import nwb as N

    ts = N.find(nwb, name, where)
    if not isinstance(ts, TimeSeries):
        raise DataError(f"{where}: {name} is a table, not a time series of behaviour")
    data = ts.data
    n = int(data.shape[0])
    if ts.timestamps is not None:
        stamps = np.asarray(ts.timestamps[:], dtype=float)
    else:
        stamps = float(ts.starting_time or 0.0) + np.arange(n) / float(ts.rate)
    lo = np.searchsorted(stamps, np.round(edges[:, 0], 9), side="left")
    hi = np.searchsorted(stamps, np.round(edges[:, -1], 9), side="left")
    a, b = int(lo.min()), int(hi.max())
    block = np.asarray(data[a:b], dtype=float)  # only the span the trials cover
    if block.ndim == 1:
        block = block[:, None]
    pos = np.searchsorted(stamps[a:b], np.round(edges, 9), side="left")  # (trials, edges)
    csum = np.concatenate([np.zeros((1, block.shape[1])), np.nancumsum(block, axis=0)])
    cnt = np.concatenate([[0], np.cumsum(np.isfinite(block).all(axis=1))])
    sums = csum[pos[:, 1:]] - csum[pos[:, :-1]]
    num = (cnt[pos[:, 1:]] - cnt[pos[:, :-1]])[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(num > 0, sums / np.maximum(num, 1), np.nan)


def read_nlb(path: str | Path, *, bin_ms: float = 5.0, align: str = "start_time",
             window_ms: tuple[float, float] | None = None, train_splits=("train",), eval_splits=("val",),
             behavior: str = "") -> NLBData:
    """Bin an NLB-style NWB file's trials into held-in / held-out count arrays.

    Parameters
    ----------
    path : str or Path
        The dataset's ``.nwb`` file.
    bin_ms : float
        Bin width in milliseconds (NLB: 5, or 20 for the ``_20`` variants).
    align : str
        Trial column the window is aligned on (``start_time``, ``move_onset_time``...).
    window_ms : (start, stop), optional
        Window around the alignment time, in ms (NLB mc_maze: (-250, 450)).  Default:
        from 0 to the shortest trial (``stop_time - align``), whole bins.
    train_splits, eval_splits : sequence of str
        Values of the trials' ``split`` column for each set (NLB's local
        evaluation: train on ``train``, evaluate on ``val``).
    behavior : str
        A time series to bin as behaviour (``hand_vel``), averaged per bin.
    """
    from engine.data import nwb as N

    path = Path(path)
    if not bin_ms > 0:
        raise DataError(f"bin_ms must be > 0, got {bin_ms}")
    with N.open_nwb(path) as nwb:
        N.check_units(nwb, path)
        N.check_intervals(nwb, "trials", path)
        units, trials = nwb.units, nwb.trials
        if "heldout" not in units.colnames:
            raise DataError(f"{path}: units have no 'heldout' column: not an NLB-style file "
                            f"(columns: {', '.join(units.colnames)})")
        if "split" not in trials.colnames:
            raise DataError(f"{path}: trials have no 'split' column (train/val/test): not an NLB-style file")
        if align not in trials.colnames:
            raise DataError(f"{path}: trials have no {align!r} column to align on (has: {', '.join(trials.colnames)})")
        n_units, n_trials = int(len(units.id)), int(len(trials.id))
        heldout = np.asarray(units["heldout"].data[:n_units]).astype(bool)
        split = _text(trials["split"].data[:n_trials])
        t_align = np.asarray(trials[align].data[:n_trials], dtype=float)
        stop = np.asarray(trials["stop_time"].data[:n_trials], dtype=float)
        trial_ids = np.asarray(trials.id.data[:n_trials])
        tr = np.isin(split, list(train_splits))
        ev = np.isin(split, list(eval_splits))
        if not tr.any():
            raise DataError(f"{path}: no trial in split {', '.join(train_splits)} (splits: {_splits(split)})")
        if not ev.any():
            raise DataError(f"{path}: no trial in split {', '.join(eval_splits)} (splits: {_splits(split)})")
        bad = ~np.isfinite(t_align) & (tr | ev)
        if bad.any():
            raise DataError(f"{path}: {int(bad.sum())} chosen trials have no {align} time (NaN)")
        b = bin_ms / 1000.0
        if window_ms is None:
            length = float(np.min((stop - t_align)[tr | ev]))
            n_bins = int(np.floor(round(length / b, 6)))
            lo_s = 0.0
        else:
            lo_s, hi_s = float(window_ms[0]) / 1000.0, float(window_ms[1]) / 1000.0
            n_bins = int(np.floor(round((hi_s - lo_s) / b, 6)))
        if n_bins < 1:
            raise DataError(f"{path}: the window holds no whole {bin_ms:g} ms bin")
        offsets = lo_s + np.arange(n_bins + 1) * b
        index = np.asarray(units["spike_times"].data[:n_units], dtype=np.int64)
        starts = np.concatenate([[0], index[:-1]])
        ds = units["spike_times"].target.data
        rows_in, rows_out = np.flatnonzero(~heldout), np.flatnonzero(heldout)
        if rows_in.size == 0 or rows_out.size == 0:
            raise DataError(f"{path}: need both held-in and held-out units, got {rows_in.size} and {rows_out.size}")
        out: dict[str, Any] = {}
        for name, sel in (("train", tr), ("eval", ev)):
            edges = t_align[sel][:, None] + offsets[None, :]
            out[f"{name}_heldin"] = _bin_counts(ds, starts, index, rows_in, edges)
            ho = _bin_counts(ds, starts, index, rows_out, edges)
            # NLB's test files hold no held-out spikes for the evaluation trials
            out[f"{name}_heldout"] = ho if (name == "train" or ho.any()) else None
            if behavior:
                out[f"{name}_behavior"] = _behavior(nwb, behavior, edges, path)
        unit_ids = np.asarray(units.id.data[:n_units])
    return NLBData(heldin_ids=unit_ids[rows_in], heldout_ids=unit_ids[rows_out], train_trials=trial_ids[tr],
                   eval_trials=trial_ids[ev], bin_ms=float(bin_ms), align=align,
                   window_ms=(lo_s * 1000.0, (lo_s + n_bins * b) * 1000.0), **out)


def _splits(split: np.ndarray) -> str:
    k, c = np.unique(split.astype(str), return_counts=True)
    return ", ".join(f"{a} {n}" for a, n in zip(k, c)) or "none"


# --------------------------------------------------------------------------- submissions


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


# --------------------------------------------------------------------------- writing the layout


def write_nlb_nwb(path: str | Path, spikes: np.ndarray, heldout: np.ndarray, splits, *, bin_ms: float = 5.0,
                  gap_s: float = 0.5, behavior: np.ndarray | None = None, seed: int = 0) -> Path:
    """Write binned counts (bins, trials, neurons) as an NLB-style NWB file with pynwb.

    Trial ``i`` starts at ``i * (duration + gap_s)``; each count of bin ``k`` becomes
    spikes strictly inside that bin, so :func:`read_nlb` with the same ``bin_ms``
    gives the counts back.  ``behavior`` (bins, trials, channels) becomes
    ``processing/behavior/hand_vel`` at 1 kHz (constant within each bin).
    """
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    spikes = np.asarray(spikes)
    T, n_trials, n_neurons = spikes.shape
    heldout = np.asarray(heldout, dtype=bool)
    splits = np.asarray(list(splits), dtype=object)
    if heldout.shape != (n_neurons,) or splits.shape != (n_trials,):
        raise ValueError(f"need {n_neurons} heldout flags and {n_trials} splits")
    b = bin_ms / 1000.0
    dur = T * b
    t0 = np.round(np.arange(n_trials) * (dur + gap_s), 3)  # trials start on the 1 ms grid
    rng = np.random.default_rng(seed)
    f = NWBFile(session_description="NLB-style dataset (written by neuro-workbench)", identifier=Path(path).stem,
                session_start_time=datetime(2021, 1, 1, tzinfo=timezone.utc))
    f.add_unit_column("heldout", "whether the unit is held out (predicted, not given)")
    end = float(t0[-1] + dur + gap_s)
    for n in range(n_neurons):
        c = spikes[:, :, n].T  # (trials, bins)
        tri, k = np.nonzero(c)
        reps = c[tri, k]
        tri, k = np.repeat(tri, reps), np.repeat(k, reps)
        t = t0[tri] + (k + rng.uniform(0.05, 0.95, size=k.size)) * b  # inside the bin, away from its edges
        f.add_unit(spike_times=np.sort(t), obs_intervals=[[0.0, end]], heldout=bool(heldout[n]))
    f.add_trial_column("split", "train / val / test")
    for i in range(n_trials):
        f.add_trial(start_time=float(t0[i]), stop_time=float(t0[i] + dur), split=str(splits[i]))
    if behavior is not None:  # at 1 kHz, as NLB stores it (nlb_tools' reader needs its 1 ms grid)
        beh = np.asarray(behavior, dtype=float)
        per_bin = int(round(bin_ms))
        if not np.isclose(per_bin, bin_ms):
            raise ValueError(f"behaviour needs a whole number of ms per bin, got {bin_ms}")
        series = np.zeros((int(round(end * 1000)), beh.shape[2]))
        for i in range(n_trials):
            a = int(round(t0[i] * 1000))
            series[a:a + T * per_bin] = np.repeat(beh[:, i], per_bin, axis=0)
        mod = f.create_processing_module("behavior", "behaviour")
        mod.add(TimeSeries(name="hand_vel", data=series, unit="a.u.", rate=1000.0, starting_time=0.0))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    return Path(path)


# --------------------------------------------------------------------------- the lds analysis's view


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
