"""Allen Brain Observatory (Neuropixels) sessions read from their NWB files through pynwb.

An Allen ecephys session file holds

* ``units`` -- spike times plus AllenSDK's quality metrics (``amplitude_cutoff``,
  ``presence_ratio``, ``isi_violations``, ``quality``) and ``peak_channel_id``;
* ``electrodes`` -- one row per channel (its id is the channel id) with the brain
  area in ``location`` (``VISam``, ``VISp``, ``CA1``...);
* ``intervals/natural_scenes_presentations`` -- ``start_time``, ``stop_time``,
  ``frame`` (image index, -1 = blank);
* the image templates in ``stimulus_template`` in the Brain Observatory files
  that carry them (the Neuropixels session files do not: AllenSDK downloads
  them apart, ``natural_scenes.npy`` beside the file is read instead).

:func:`load` applies AllenSDK's default unit filter (the values of
``UNIT_FILTER_DEFAULTS`` used by ``EcephysProjectCache.get_session_data``:
``amplitude_cutoff <= 0.1``, ``presence_ratio >= 0.95``, ``isi_violations <= 0.5``,
and ``quality == "good"`` where the column exists, AllenSDK's
``filter_by_validity``), all settable through :class:`UnitFilter`, selects units
by brain area through the units -> electrodes join (seed 002 keeps ``VISam``),
and returns the same :class:`engine.data.allen.AllenTables` that the CSV reader
returns, so the mei analysis runs on either.

:func:`write_allen_nwb` writes that layout with pynwb from tables (the synthetic
V1 of :func:`engine.data.allen.generate`), so the real path is tested on a file
with known truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.data.errors import DataError

__all__ = ["UnitFilter", "Selection", "load", "read_allen_nwb", "read_for_params", "write_allen_nwb",
           "missing_images_message", "IMAGES_BESIDE", "PARAMS"]

IMAGES_BESIDE = "natural_scenes.npy"
#: Spikes are kept from this long before the first presentation to this long after the last.
SPAN_MARGIN_S = 10.0


@dataclass(frozen=True)
class UnitFilter:
    """AllenSDK's unit-quality cut-offs (its defaults); ``None``, inf or a negative value switches one off.

    A unit is kept when ``amplitude_cutoff <= amplitude_cutoff_max``,
    ``presence_ratio >= presence_ratio_min``, ``isi_violations <= isi_violations_max``
    and (``good_only``) its ``quality`` is ``"good"``.  A NaN metric fails its test,
    as in AllenSDK's pandas comparison.
    """

    amplitude_cutoff_max: float | None = 0.1
    presence_ratio_min: float | None = 0.95
    isi_violations_max: float | None = 0.5
    good_only: bool = True

    @classmethod
    def off(cls) -> "UnitFilter":
        return cls(None, None, None, False)

    def tests(self) -> list[tuple[str, str, float]]:
        out = []
        for col, op, val in (("amplitude_cutoff", "<=", self.amplitude_cutoff_max),
                             ("presence_ratio", ">=", self.presence_ratio_min),
                             ("isi_violations", "<=", self.isi_violations_max)):
            # None, +-inf (AllenSDK's "missing") or a negative value (what a typed form can hold) = off
            if val is not None and not math.isinf(float(val)) and float(val) >= 0:
                out.append((col, op, float(val)))
        return out


@dataclass(frozen=True)
class Selection:
    """How many units each step kept: ``counts`` in order, e.g. ``{"all": 80, "amplitude_cutoff <= 0.1": 71, ...}``."""

    counts: dict[str, int] = field(default_factory=dict)
    area: str = ""
    areas_available: dict[str, int] = field(default_factory=dict)
    images_from: str = ""

    def line(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in self.counts.items()) + (
            f"; images from {self.images_from}" if self.images_from else "")


def _column(units, name: str, n: int) -> np.ndarray:
    data = np.asarray(units[name].data[:n])
    if data.dtype.kind in "SO":
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in data], dtype=object)
    return data


def _select(nwb, path: Path, area: str, quality: UnitFilter) -> tuple[np.ndarray, pd.DataFrame, Selection]:
    from engine.data import nwb as N

    N.check_units(nwb, path)
    units = nwb.units
    n = int(len(units.id))
    ids = np.asarray(units.id.data[:n])
    keep = np.ones(n, dtype=bool)
    counts = {"all units": n}
    info: dict[str, Any] = {}
    for col, op, val in quality.tests():
        if col not in units.colnames:
            raise DataError(f"{path}: the units table has no {col} column for the quality filter "
                            f"({col} {op} {val:g}); switch that cut-off off (none) to read this file")
        x = np.asarray(_column(units, col, n), dtype=float)
        info[col] = x
        with np.errstate(invalid="ignore"):
            keep &= (x <= val) if op == "<=" else (x >= val)
        counts[f"{col} {op} {val:g}"] = int(keep.sum())
    if quality.good_only and "quality" in units.colnames:
        q = _column(units, "quality", n)
        info["quality"] = q
        keep &= np.asarray(q, dtype=str) == "good"
        counts['quality == "good"'] = int(keep.sum())
    areas = N.unit_areas(nwb)
    available: dict[str, int] = {}
    if areas is not None:
        k, c = np.unique(np.asarray(areas, dtype=str), return_counts=True)
        available = {str(a) or "(none)": int(m) for a, m in zip(k, c)}
        info["area"] = areas
    if area:
        if areas is None:
            raise DataError(f"{path}: cannot select area {area!r}: no brain area for the units (no location "
                            "column, no units->electrodes region, no peak_channel_id with electrodes)")
        keep &= np.asarray(areas, dtype=str) == area
        counts[f"area == {area}"] = int(keep.sum())
    steps = "; ".join(f"{k}: {v}" for k, v in counts.items())
    if area and not keep.any():
        had = ", ".join(f"{a} {m}" for a, m in sorted(available.items(), key=lambda kv: -kv[1]))
        raise DataError(f"{path}: no unit in area {area!r} passes the filters ({steps}); areas in the file: {had}")
    if not keep.any():
        raise DataError(f"{path}: no unit passes the quality filter ({steps})")
    table = pd.DataFrame({k: np.asarray(v)[keep] for k, v in info.items()},
                         index=pd.Index(ids[keep], name="unit_id"))
    if "area" in table:
        table = table.rename(columns={"area": "ecephys_structure_acronym"})
    return np.flatnonzero(keep), table, Selection(counts=counts, area=area, areas_available=available)


def _presentations(nwb, path: Path, stimulus: str) -> pd.DataFrame:
    key = f"{stimulus}_presentations"
    intervals = nwb.intervals or {}
    if key not in intervals:
        raise DataError(f"{path}: no intervals/{key} (has: {', '.join(intervals) or 'no intervals'})")
    t = intervals[key]
    n = int(len(t.id))
    missing = [c for c in ("start_time", "stop_time", "frame") if c not in t.colnames]
    if missing:
        raise DataError(f"{path}: intervals/{key} has no {', '.join(missing)} column")
    cols = {c: _column(t, c, n) for c in ("start_time", "stop_time", "frame")}
    if "stimulus_name" in t.colnames:
        cols["stimulus_name"] = _column(t, "stimulus_name", n)
    pres = pd.DataFrame(cols, index=pd.Index(np.asarray(t.id.data[:n]), name="stimulus_presentation_id"))
    frame = pd.to_numeric(pd.Series(pres["frame"]), errors="coerce")  # Allen stores frame as text or float
    if frame.isna().any():
        raise DataError(f"{path}: intervals/{key} 'frame' holds non-numeric values")
    pres["frame"] = frame.astype(int).to_numpy()
    times = pres[["start_time", "stop_time"]].to_numpy(float)
    if not np.all(np.isfinite(times)):
        raise DataError(f"{path}: intervals/{key} start_time/stop_time hold NaN or inf")
    if (times[:, 1] < times[:, 0]).any():
        raise DataError(f"{path}: intervals/{key}: a presentation stops before it starts")
    return pres.sort_values("start_time")


def _images(nwb, path: Path, stimulus: str, images: str | Path | None) -> tuple[np.ndarray | None, str]:
    from engine.data.allen import load_images

    if images:
        return load_images(images), str(images)
    templates = nwb.stimulus_template or {}
    hit = templates.get(stimulus) or next((v for k, v in templates.items() if stimulus in k), None)
    if hit is not None:
        data = getattr(hit, "data", None)
        if data is None or len(getattr(data, "shape", ())) != 3:
            raise DataError(f"{path}: stimulus_template/{hit.name} is not an (images, height, width) stack")
        arr = np.asarray(data[()])
        arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{path}: stimulus_template/{hit.name} holds NaN or inf")
        return arr, f"stimulus_template/{hit.name}"
    beside = path.with_name(IMAGES_BESIDE)
    if beside.exists():
        return load_images(beside), str(beside)
    return None, ""


def missing_images_message(path: str | Path, stimulus: str = "natural_scenes") -> str:
    """The one line for a file without templates: what is missing and where it may come from."""
    return (f"{path}: no stimulus template {stimulus!r} in the file's stimulus_template and no "
            f"{IMAGES_BESIDE} beside it; save the images there (AllenSDK: "
            f"cache.get_natural_scene_template(i) for each frame) or set images=PATH")


def load(path: str | Path, *, area: str = "VISam", quality: UnitFilter = UnitFilter(),
         stimulus: str = "natural_scenes", images: str | Path | None = None,
         need_images: bool = False):
    """Read an Allen NWB session: filtered units of one area, their spikes, presentations, images.

    Parameters
    ----------
    path : str or Path
        The session's ``.nwb`` file.
    area : str
        Brain area (structure acronym) to keep; ``""`` keeps every area.
    quality : UnitFilter
        Quality cut-offs (AllenSDK's defaults); ``UnitFilter.off()`` keeps all units.
    stimulus : str
        Stimulus whose ``<stimulus>_presentations`` table and template are read.
    images : path, optional
        An ``.npy`` of templates, used instead of the file's.
    need_images : bool
        Raise a DataError naming what is missing when no template is found.

    Returns
    -------
    (AllenTables, Selection)
        The tables in the CSV reader's form (``units`` indexed by ``unit_id`` with
        the metrics and area, ``spikes`` of the kept units only) and how many
        units each filter kept.
    """
    from engine.data import nwb as N
    from engine.data.allen import AllenTables

    path = Path(path)
    with N.open_nwb(path) as nwb:
        rows, table, sel = _select(nwb, path, area, quality)
        pres = _presentations(nwb, path, stimulus)
        lo = float(pres["start_time"].min()) - SPAN_MARGIN_S
        hi = float(pres["stop_time"].max()) + SPAN_MARGIN_S
        units = nwb.units
        index = np.asarray(units["spike_times"].data[: int(len(units.id))], dtype=np.int64)
        starts = np.concatenate([[0], index[:-1]])
        ds = units["spike_times"].target.data
        uid, times = [], []
        for k, r in enumerate(rows):  # only the kept units, only inside the stimulus span
            s, e = int(starts[r]), int(index[r])
            i = N.bisect_sorted(ds, s, e, lo) if e > s else s
            j = N.bisect_sorted(ds, i, e, hi) if e > i else i
            t = np.asarray(ds[i:j], dtype=float)
            times.append(t)
            uid.append(np.full(t.size, table.index[k]))
        spikes = pd.DataFrame({"unit_id": np.concatenate(uid) if uid else np.zeros(0, int),
                               "spike_time": np.concatenate(times) if times else np.zeros(0)})
        img, source = _images(nwb, path, stimulus, images)
    if img is None and need_images:
        raise DataError(missing_images_message(path, stimulus))
    if img is not None and len(pres) and pres["frame"].max() >= len(img):
        raise DataError(f"{path}: frame {pres['frame'].max()} shown but only {len(img)} images ({source})")
    sel = Selection(counts=sel.counts, area=sel.area, areas_available=sel.areas_available, images_from=source)
    return AllenTables(units=table, spikes=spikes, presentations=pres, images=img), sel


def read_allen_nwb(path: str | Path, **kw):
    """:func:`load` without the selection report: the :class:`AllenTables` alone."""
    return load(path, **kw)[0]


# --------------------------------------------------------------------------- writing the layout


def write_allen_nwb(tables, path: str | Path, *, areas=None, metrics: pd.DataFrame | None = None,
                    with_templates: bool = True, stimulus: str = "natural_scenes") -> Path:
    """Write ``tables`` (an :class:`AllenTables`) as an Allen ecephys NWB file with pynwb.

    ``areas`` gives each unit's structure acronym (default ``VISam``); one
    electrode (channel) per unit carries it in ``location`` and the unit points
    to it through ``peak_channel_id``, as in Allen's files.  ``metrics`` (indexed
    like ``tables.units``) supplies ``amplitude_cutoff``, ``presence_ratio``,
    ``isi_violations`` and ``quality`` (default: values that pass every filter).
    """
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.epoch import TimeIntervals
    from pynwb.image import ImageSeries

    path = Path(path)
    unit_ids = np.asarray(tables.units.index)
    n = len(unit_ids)
    areas = np.asarray(["VISam"] * n if areas is None else list(areas), dtype=object)
    if len(areas) != n:
        raise ValueError(f"{len(areas)} areas for {n} units")
    if metrics is None:
        metrics = pd.DataFrame({"amplitude_cutoff": 0.01, "presence_ratio": 0.99, "isi_violations": 0.1,
                                "quality": "good"}, index=tables.units.index)
    f = NWBFile(session_description="Allen Brain Observatory layout (written by neuro-workbench)",
                identifier=path.stem, session_start_time=datetime(2019, 1, 1, tzinfo=timezone.utc))
    dev = f.create_device("probeA")
    grp = f.create_electrode_group("probeA", description="Neuropixels probe", location="", device=dev)
    channel_ids = 850_000_000 + np.arange(n) * 3
    for ch, a in zip(channel_ids, areas):
        f.add_electrode(id=int(ch), group=grp, location=str(a))
    for col, desc in (("amplitude_cutoff", "amplitude cut-off"), ("presence_ratio", "presence ratio"),
                      ("isi_violations", "ISI violations"), ("quality", "curation label"),
                      ("peak_channel_id", "channel of the largest waveform")):
        f.add_unit_column(col, desc)
    grouped = dict(tuple(tables.spikes.groupby("unit_id")["spike_time"]))
    for k, uid in enumerate(unit_ids):
        m = metrics.loc[uid]
        t = np.sort(grouped[uid].to_numpy(float)) if uid in grouped else np.zeros(0)
        f.add_unit(id=int(uid), spike_times=t, amplitude_cutoff=float(m["amplitude_cutoff"]),
                   presence_ratio=float(m["presence_ratio"]), isi_violations=float(m["isi_violations"]),
                   quality=str(m["quality"]), peak_channel_id=int(channel_ids[k]))
    pres = TimeIntervals(name=f"{stimulus}_presentations", description=f"{stimulus} presentations")
    pres.add_column("frame", "image index, -1 = blank")
    pres.add_column("stimulus_name", "stimulus name")
    p = tables.presentations.sort_values("start_time")
    for pid, row in p.iterrows():
        pres.add_interval(start_time=float(row["start_time"]), stop_time=float(row["stop_time"]),
                          frame=float(row["frame"]), stimulus_name=stimulus, id=int(pid))
    f.add_time_intervals(pres)
    if with_templates and tables.images is not None:
        img = np.round(np.clip(tables.images, 0, 1) * 255).astype(np.uint8)
        f.add_stimulus_template(ImageSeries(name=stimulus, data=img, unit="NA", format="raw",
                                            rate=1.0, description="natural scene templates"))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    return path


#: The mei analysis's parameters for this reader and their defaults (AllenSDK's cut-offs;
#: a negative value switches a cut-off off; area "" keeps every area).
PARAMS = {"area": "VISam", "amplitude_cutoff_max": 0.1, "presence_ratio_min": 0.95,
          "isi_violations_max": 0.5, "good_only": True}


def read_for_params(path: str | Path, p: dict[str, Any], log=None):
    """The analysis's entry: :func:`load` with the settings in ``p`` (see :data:`PARAMS`), images required.

    ``log`` (a callable taking one line) receives how many units each filter kept.
    """
    v = {k: p.get(k, d) for k, d in PARAMS.items()}
    quality = UnitFilter(amplitude_cutoff_max=float(v["amplitude_cutoff_max"]),
                         presence_ratio_min=float(v["presence_ratio_min"]),
                         isi_violations_max=float(v["isi_violations_max"]), good_only=bool(v["good_only"]))
    tables, sel = load(path, area=str(v["area"] or ""), quality=quality, need_images=True)
    if log is not None:
        log(f"{Path(path).name}: {sel.line()}")
    return tables
