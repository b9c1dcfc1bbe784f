"""NWB files written by pynwb itself, for the tests that read them (engine and Datasets pane).

``ecephys_file``: units on electrodes in three areas, trials, epochs, stimulus
presentations, behaviour, an LFP-like series and a stimulus template.
``malformed_files``: no units table, units without spike times, a trial that stops
before it starts, a trials table with one stop_time for two trials, a text file
and a plain HDF5 file named .nwb.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

AREAS = ["VISam", "VISp", "CA1"]


def base_file(**kw):
    """An empty NWBFile with a fixed identity (identifier "sess-1"); ``kw`` overrides or adds fields."""
    import pynwb

    kw = {"session_description": "synthetic ecephys", "identifier": "sess-1",
          "session_start_time": datetime(2024, 5, 1, tzinfo=timezone.utc), **kw}
    return pynwb.NWBFile(**kw)


def write(nwbfile, path: Path) -> Path:
    import pynwb

    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


def ecephys_file(path: Path) -> tuple[Path, list[np.ndarray]]:
    """Write the ecephys session to ``path``; returns (path, the 7 units' spike trains)."""
    from pynwb.behavior import Position
    from pynwb.ecephys import ElectricalSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.image import ImageSeries

    rng = np.random.default_rng(1)
    f = base_file()
    dev = f.create_device("probeA")
    grp = f.create_electrode_group("probeA", description="shank", location="cortex", device=dev)
    for i in range(9):
        f.add_electrode(group=grp, location=AREAS[i % 3])
    trains = []
    for u in range(7):
        t = np.sort(rng.uniform(0, 100, 50 + 10 * u))
        trains.append(t)
        f.add_unit(spike_times=t, electrodes=[u])  # unit u sits on electrode u: area AREAS[u % 3]
    for k in range(5):
        f.add_trial(start_time=10.0 * k, stop_time=10.0 * k + 8.0)
    f.add_epoch(start_time=0.0, stop_time=50.0, tags=["gray"])
    pres = TimeIntervals(name="natural_scenes_presentations", description="images")
    pres.add_column("frame", "image index")
    for k in range(6):
        pres.add_interval(start_time=0.25 * k, stop_time=0.25 * (k + 1), frame=k % 3)
    f.add_time_intervals(pres)
    beh = f.create_processing_module("behavior", "behaviour")
    pos = Position(name="Position")
    pos.create_spatial_series(name="pos", data=np.c_[np.arange(1000.0), -np.arange(1000.0)], rate=50.0,
                              reference_frame="arena", starting_time=2.0)
    beh.add(pos)
    region = f.create_electrode_table_region(list(range(9)), "all")
    f.add_acquisition(ElectricalSeries(name="lfp", data=rng.normal(size=(500, 9)), electrodes=region, rate=250.0))
    f.add_stimulus_template(ImageSeries(name="natural_scenes", data=rng.uniform(size=(3, 8, 8)), unit="a.u.",
                                       rate=1.0))
    return write(f, path), trains


def malformed_files(folder: Path) -> dict[str, Path]:
    """The malformed files, by what is wrong with them, written into ``folder``."""
    import h5py

    no_units = base_file()
    no_units.add_trial(start_time=0.0, stop_time=1.0)
    no_spikes = base_file()
    no_spikes.add_unit_column("quality", "curation label")
    no_spikes.add_unit(quality="good")
    backwards = base_file()
    backwards.add_trial(start_time=0.0, stop_time=1.0)
    backwards.add_trial(start_time=2.0, stop_time=1.5)
    short = base_file()
    short.add_trial(start_time=0.0, stop_time=1.0)
    short.add_trial(start_time=2.0, stop_time=3.0)
    paths = {k: write(v, folder / f"{k}.nwb") for k, v in
             dict(no_units=no_units, no_spikes=no_spikes, backwards=backwards, short=short).items()}
    with h5py.File(paths["short"], "a") as h:  # one stop_time for two trials
        g = h["intervals/trials"]
        attrs, v = dict(g["stop_time"].attrs), g["stop_time"][:1]
        del g["stop_time"]
        g.create_dataset("stop_time", data=v).attrs.update(attrs)
    (folder / "text.nwb").write_text("not hdf5")
    with h5py.File(folder / "plain.nwb", "w") as h:
        h["x"] = np.arange(3)
    paths.update(text=folder / "text.nwb", plain=folder / "plain.nwb")
    return paths


def allen_session(folder: Path, n_units: int = 12):
    """A synthetic V1 written as an Allen Brain Observatory session: even units in VISam, odd in
    VISp; units 0, 2, 4 and 6 each fail one of AllenSDK's quality tests.

    Returns (tables, session.nwb, bare/session.nwb without stimulus templates, unit ids).
    """
    import pandas as pd

    from engine.data import allen
    from engine.data import allen_nwb as A

    allen.generate(folder / "tables", allen.SyntheticV1Config(n_neurons=n_units, n_images=12, repeats=4, size=16))
    tables = allen.load_tables(folder / "tables")
    ids = tables.units.index
    areas = ["VISam" if i % 2 == 0 else "VISp" for i in range(n_units)]
    m = pd.DataFrame({"amplitude_cutoff": 0.01, "presence_ratio": 0.99, "isi_violations": 0.1, "quality": "good"},
                     index=ids)
    m.iloc[0, 0] = 0.2      # unit 0: amplitude cut-off above 0.1
    m.iloc[2, 1] = 0.9      # unit 2: presence ratio below 0.95
    m.iloc[4, 2] = np.nan   # unit 4: no ISI value -> fails, as in AllenSDK
    m.iloc[6, 3] = "noise"  # unit 6: not "good"
    path = A.write_allen_nwb(tables, folder / "session.nwb", areas=areas, metrics=m)
    (folder / "bare").mkdir()
    bare = A.write_allen_nwb(tables, folder / "bare" / "session.nwb", areas=areas, metrics=m, with_templates=False)
    return tables, path, bare, np.asarray(ids)
