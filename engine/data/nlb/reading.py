"""Reading an NLB dataset file: the chosen trials' spikes binned and aligned on a trial
field, held-in and held-out neurons apart (:class:`NLBData`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.errors import DataError

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
