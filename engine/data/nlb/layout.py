"""Writing the NLB layout with pynwb from binned counts (the LDS generator's), so that the
reader is tested on a file with known spikes."""

from __future__ import annotations

from pathlib import Path

import numpy as np



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
