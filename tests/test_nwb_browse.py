"""engine.data.nwb on files written by pynwb itself: an ecephys session and malformed ones."""

from __future__ import annotations

import numpy as np
import pytest

pynwb = pytest.importorskip("pynwb")

from engine.data import nwb as N  # noqa: E402
from engine.data.errors import DataError  # noqa: E402
from tests.helpers.nwb_files import base_file, ecephys_file, malformed_files, write  # noqa: E402


@pytest.fixture(scope="module")
def ecephys(tmp_path_factory):
    """Units on electrodes in three areas, trials, epochs, stimulus presentations, behaviour, an LFP-like series."""
    return ecephys_file(tmp_path_factory.mktemp("nwb") / "ecephys.nwb")


def test_summary_lists_units_areas_tables_and_series(ecephys):
    path, trains = ecephys
    s = N.summarize(path)
    assert s.identifier == "sess-1"
    assert s.units.n_rows == 7 and "spike_times" in s.units.columns
    assert s.n_spikes == sum(len(t) for t in trains)
    assert s.unit_areas == {"VISam": 3, "VISp": 2, "CA1": 2}
    assert s.electrode_areas == {"VISam": 3, "VISp": 3, "CA1": 3}
    paths = {t.path: t for t in s.tables}
    assert paths["intervals/trials"].n_rows == 5 and s.trials is paths["intervals/trials"]
    assert s.epochs.n_rows == 1
    assert paths["intervals/natural_scenes_presentations"].columns == ("start_time", "stop_time", "frame")
    series = {x.path: x for x in s.series}
    assert series["processing/behavior/Position/pos"].shape == (1000, 2)
    assert series["acquisition/lfp"].kind == "ElectricalSeries" and series["acquisition/lfp"].rate == 250.0
    assert series["stimulus_template/natural_scenes"].shape == (3, 8, 8)
    text = N.format_summary(s)
    assert "VISam 3" in text and "intervals/trials" in text


def test_spike_counts_and_windowed_raster_match_the_trains(ecephys):
    path, trains = ecephys
    ids, counts = N.spike_counts(path)
    assert list(ids) == list(range(7))
    assert list(counts) == [len(t) for t in trains]
    r = N.raster(path, n_units=3, t0=20.0, t1=45.0)
    assert list(r.unit_ids) == [0, 1, 2]
    for got, t in zip(r.times, trains):
        np.testing.assert_array_equal(got, t[(t >= 20.0) & (t < 45.0)])
    capped = N.raster(path, n_units=7, t0=0.0, t1=100.0, max_spikes=100)
    assert capped.truncated and capped.n_spikes == 100
    later = N.raster(path, n_units=2, first_unit=5, t0=0.0, t1=100.0)
    assert list(later.unit_ids) == [5, 6] and len(later.times[1]) == len(trains[6])


def test_bisection_over_a_long_train(tmp_path):
    f = base_file()
    t = np.sort(np.random.default_rng(0).uniform(0, 1000, 20_000))
    f.add_unit(spike_times=t)
    path = write(f, tmp_path / "long.nwb")
    r = N.raster(path, t0=123.4, t1=456.7)
    np.testing.assert_array_equal(r.times[0], t[(t >= 123.4) & (t < 456.7)])


def test_table_head_and_series_preview(ecephys):
    path, trains = ecephys
    trials = N.table_head(path, "trials", rows=3)
    assert list(trials["start_time"]) == [0.0, 10.0, 20.0]
    units = N.table_head(path, "units")
    assert list(units["spike_times (n)"]) == [len(t) for t in trains]
    elec = N.table_head(path, "electrodes", rows=4)
    assert list(elec["location"]) == ["VISam", "VISp", "CA1", "VISam"] and set(elec["group"]) == {"probeA"}
    pres = N.table_head(path, "natural_scenes_presentations")
    assert list(pres["frame"]) == [0, 1, 2, 0, 1, 2]
    t, y = N.series_preview(path, "processing/behavior/Position/pos", max_points=100, channel=1)
    assert len(t) <= 100 and t[0] == 2.0
    np.testing.assert_allclose(y, -(t - 2.0) * 50.0)  # value = -sample index
    with pytest.raises(DataError, match="no table or series 'nope'"):
        N.table_head(path, "nope")


def test_figures_for_the_datasets_pane(ecephys):
    path, trains = ecephys
    fig = N.raster_figure(path, first_unit=4, n_units=3, t0=0.0, t1=50.0)
    (panel,) = fig.panels
    pts = panel.series[0]
    assert fig.n_index == 3 and fig.index == 1 and panel.label == "units 4-6"
    for row in (4, 5, 6):
        t = trains[row]
        np.testing.assert_array_equal(pts.x[pts.y == row], t[t < 50.0])
    assert fig.caption.startswith("0.00–50.00 s · ") and f"{sum(len(t) for t in trains)} spikes in 7 units" in fig.caption
    s = N.series_figure(path, "acquisition/lfp", channel=2, max_points=50)
    assert len(s.panels[0].series[0].x) <= 50 and s.panels[0].series[0].x[0] == 0.0


@pytest.fixture()
def malformed(tmp_path):
    return malformed_files(tmp_path)


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and len(msg) < 400
    return msg


def test_malformed_files_get_one_clear_line(malformed):
    with pytest.raises(DataError) as e:
        N.spike_counts(malformed["no_units"])
    assert "no units table" in _one_line(e)
    assert N.summarize(malformed["no_units"]).units is None  # browsing still works
    with pytest.raises(DataError) as e:
        N.raster(malformed["no_spikes"])
    assert "no spike_times column (columns: quality)" in _one_line(e)
    with N.open_nwb(malformed["backwards"]) as f, pytest.raises(DataError) as e:
        N.check_intervals(f, "trials", malformed["backwards"])
    assert "trials row 1 stops before it starts" in _one_line(e)
    with pytest.raises(DataError) as e:
        N.summarize(malformed["short"])
    assert "malformed NWB: cannot read intervals/trials (Columns must be the same length)" in _one_line(e)
    with pytest.raises(DataError) as e:
        N.summarize(malformed["text"])
    assert "not an HDF5 file" in _one_line(e)
    with pytest.raises(DataError) as e:
        N.summarize(malformed["plain"])
    assert "not a readable NWB file" in _one_line(e)
    assert not N.is_nwb(malformed["plain"]) and N.is_nwb(malformed["no_units"])
    with pytest.raises(DataError, match="no such file"):
        N.summarize(malformed["plain"].parent / "missing.nwb")


def test_table_cells_and_column_names_from_the_file_are_terminal_safe(tmp_path):
    from pynwb.epoch import TimeIntervals

    f = base_file()
    pres = TimeIntervals(name="stim\x1b]0;owned\x07", description="hostile")
    pres.add_column("name\x1b[2J", "a column whose name clears the screen")
    pres.add_interval(start_time=0.0, stop_time=1.0, **{"name\x1b[2J": "img\x1b]52;c;aGk=\x07\u202e"})
    f.add_time_intervals(pres)
    path = write(f, tmp_path / "hostile.nwb")
    head, problem = N.table_page(path, "intervals/stim\x1b]0;owned\x07", rows=5)
    assert problem is None
    assert "name\\x1b[2J" in head.columns
    (cell,) = head["name\\x1b[2J"]
    assert cell == "img\\x1b]52;c;aGk=\\x07\\u202e"
    text = "".join(map(str, head.columns)) + "".join(map(str, head.to_numpy().ravel()))
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


def test_importing_engine_data_nwb_does_not_import_pynwb():
    import subprocess
    import sys

    code = "import sys, engine.data.nwb, engine.data.allen_nwb, engine.data.nlb; print('pynwb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
