"""The Datasets pane's NWB view, driven with Pilot at 80x24 on files written by pynwb itself."""

from __future__ import annotations


import numpy as np
import pytest
from textual.widgets import OptionList, Static, Tree

pytest.importorskip("pynwb")

from tests.helpers.nwb_files import ecephys_file, malformed_files  # noqa: E402
from tests.helpers.tui import datasets_app, quiet, static_text  # noqa: E402
from workbench.panes.datasets import NwbBrowser  # noqa: E402
from workbench.panes.datasets import nwb_view  # noqa: E402


def _file_node(tree: Tree, name: str):
    return next(c for c in tree.root.children if str(c.label).startswith(name))


async def _open_file(pilot, app, name: str) -> NwbBrowser:
    tree = app.query_one("#ds-tree", Tree)
    tree.select_node(_file_node(tree, name))
    await quiet(pilot)
    return app.query_one(NwbBrowser)


async def _open_item(pilot, app, kind: str, name: str) -> None:
    browser = app.query_one(NwbBrowser)
    if browser.view.kind != "summary":
        await pilot.press("escape")
        await quiet(pilot)
    options = app.query_one("#nwb-items", OptionList)
    assert options.has_focus
    target = next(i for i, item in enumerate(browser.items) if (item.kind, item.name) == (kind, name))
    step = target - options.highlighted
    await pilot.press(*(["down" if step > 0 else "up"] * abs(step)), "enter")
    await quiet(pilot)
    assert (browser.view.kind, browser.view.name) == (kind, name)


def _status(app) -> str:
    return static_text(app.query_one("#ds-status", Static), 200).strip()


@pytest.fixture(scope="module")
def ecephys(tmp_path_factory):
    return ecephys_file(tmp_path_factory.mktemp("pane-nwb") / "ecephys.nwb")


async def test_summary_raster_table_series_and_the_hdf5_tree(ecephys, monkeypatch):
    path, trains = ecephys
    monkeypatch.setattr(nwb_view, "UNITS_PER_PAGE", 3)  # seven units: three pages
    app = datasets_app([path])
    async with app.run_test(size=(80, 24)) as pilot:
        browser = await _open_file(pilot, app, "ecephys.nwb")
        assert browser.display and not app.query_one("#ds-plot").display
        head = static_text(app.query_one("#nwb-head", Static), 200)
        assert "sess-1 · synthetic ecephys" in head and f"7 · {sum(map(len, trains))} spikes" in head
        lines = {line[:11].strip(): line[11:].strip() for line in head.splitlines() if line.strip()}
        assert lines["unit areas"] == "VISam 3, CA1 2, VISp 2"  # units' areas, through their electrodes
        assert lines["electrodes"].startswith("9 · ") and "VISp 3" in lines["electrodes"]
        labels = [(i.kind, i.name) for i in browser.items]
        assert labels[:4] == [("raster", "units"), ("table", "units"), ("table", "intervals/trials"),
                              ("table", "intervals/epochs")]
        assert ("table", "intervals/natural_scenes_presentations") in labels and ("table", "electrodes") in labels
        assert ("series", "processing/behavior/Position/pos") in labels

        # the raster: the first 10 s after the first spike, three units a page
        await _open_item(pilot, app, "raster", "units")
        first = min(t[0] for t in trains[:3])
        assert browser.view.t0 == pytest.approx(first) and browser.view.window == 10.0
        shown = static_text(app.query_one("#nwb-view", Static), 200)
        assert "spike raster" in shown and "units 0-2" in shown

        def spikes(unit: int) -> np.ndarray:
            pts = browser.figure.panels[0].series[0]
            return np.asarray(pts.x)[np.asarray(pts.y) == unit]

        t = trains[1]
        np.testing.assert_array_equal(spikes(1), t[(t >= first) & (t < first + 10)])
        await pilot.press("right", "minus")  # the next window, then twice as long
        await quiet(pilot)
        assert browser.view.t0 == pytest.approx(first + 10) and browser.view.window == 20.0
        np.testing.assert_array_equal(spikes(1), t[(t >= first + 10) & (t < first + 30)])
        await pilot.press("down", "down", "down")  # units 3-5, 6, then no further
        await quiet(pilot)
        assert browser.view.first_unit == 6 and "units 6-6" in static_text(app.query_one("#nwb-view", Static), 200)
        t = trains[6]
        np.testing.assert_array_equal(spikes(6), t[(t >= first + 10) & (t < first + 30)])

        # the trials table: rows and columns scroll with the arrows
        await _open_item(pilot, app, "table", "intervals/trials")
        table = static_text(app.query_one("#nwb-view", Static), 200)
        assert "start_time" in table and "stop_time" in table and "38" in table  # trial 4 stops at 38 s
        await pilot.press("right", "down", "down")
        await quiet(pilot)
        table = static_text(app.query_one("#nwb-view", Static), 200)
        assert browser.view.col == 1 and browser.view.row == 2
        assert "start_time" not in table and "stop_time" in table and " 8" not in table and "28" in table

        # a behavioural series, channel by channel
        await _open_item(pilot, app, "series", "processing/behavior/Position/pos")
        y0 = np.asarray(browser.figure.panels[0].series[0].y)
        assert (y0 >= 0).all() and y0.max() > 900
        await pilot.press("right")
        await quiet(pilot)
        y1 = np.asarray(browser.figure.panels[0].series[0].y)
        assert browser.view.channel == 1 and (y1 <= 0).all() and y1.min() < -900
        assert "pos" in static_text(app.query_one("#nwb-view", Static), 200)

        # h: the raw HDF5 tree of the same file, and back
        await pilot.press("h")
        await quiet(pilot)
        tree = app.query_one("#ds-tree", Tree)
        node = _file_node(tree, "ecephys.nwb")
        assert tree.has_focus and not browser.display and node.is_expanded
        assert {"units/", "intervals/", "acquisition/"} <= {str(c.label).split()[0] for c in node.children}
        assert "NWB file: h shows its NWB view" in _status(app)
        await pilot.press("h")
        await quiet(pilot)
        assert browser.display and browser.view.kind == "summary" and app.query_one("#nwb-items").has_focus


async def test_malformed_files_give_one_line_and_the_pane_keeps_working(tmp_path):
    bad = malformed_files(tmp_path)
    app = datasets_app([tmp_path])
    async with app.run_test(size=(80, 24)) as pilot:
        def one_line(expected: str) -> None:
            text = _status(app)
            assert expected in text and "\n" not in text and "Traceback" not in text, text

        browser = await _open_file(pilot, app, "no_units.nwb")
        one_line("no units table: this NWB file holds no sorted spikes")
        assert [i.kind for i in browser.items] == ["table"]  # the trials; no raster to open
        browser = await _open_file(pilot, app, "no_spikes.nwb")
        await _open_item(pilot, app, "raster", "units")
        one_line("no_spikes.nwb: the units table has no spike_times column (columns: quality)")
        await _open_file(pilot, app, "short.nwb")
        one_line("short.nwb: malformed NWB: cannot read intervals/trials (Columns must be the same length)")
        await _open_file(pilot, app, "backwards.nwb")
        await _open_item(pilot, app, "table", "intervals/trials")
        one_line("trials row 1 stops before it starts")
        assert "1.5" in static_text(app.query_one("#nwb-view", Static), 200)  # the rows are still shown
        # a plain HDF5 file named .nwb is shown as HDF5; h says it is not NWB
        tree = app.query_one("#ds-tree", Tree)
        tree.select_node(_file_node(tree, "plain.nwb"))
        await quiet(pilot)
        assert not app.query_one(NwbBrowser).display and "group with 1 members" in _status(app)
        tree.move_cursor(_file_node(tree, "plain.nwb"))
        tree.focus()
        await pilot.press("h")
        await quiet(pilot)
        one_line("plain.nwb is not an NWB file")
        # and everything still works: a good file after the bad ones
        _file_node(tree, "text.nwb").expand()
        await quiet(pilot)
        one_line("not an HDF5 file")
        assert app.is_running
    assert bad["plain"].exists()


async def test_an_allen_session_shows_unit_quality_and_areas(tmp_path):
    from tests.helpers.nwb_files import allen_session

    _, path, _, ids = allen_session(tmp_path, n_units=12)
    app = datasets_app([path])
    async with app.run_test(size=(80, 24)) as pilot:
        browser = await _open_file(pilot, app, "session.nwb")
        head = static_text(app.query_one("#nwb-head", Static), 200)
        lines = {line[:11].strip(): line[11:].strip() for line in head.splitlines() if line.strip()}
        assert lines["unit areas"] == "VISam 6, VISp 6"  # through the units' peak_channel_id
        assert {"amplitude_cutoff", "presence_ratio", "isi_violations", "quality"} <= set(
            c.strip(" ,…") for c in lines["quality"].split(", "))
        await _open_item(pilot, app, "table", "units")
        frame = browser.frame
        assert list(frame.index) == list(ids) and list(frame["quality"])[6] == "noise"
        cols = list(frame.columns)
        await pilot.press(*(["right"] * cols.index("quality")))
        await quiet(pilot)
        table = static_text(app.query_one("#nwb-view", Static), 200)
        assert table.splitlines()[1].split()[:2] == ["id", "quality"] and "noise" in table
        await pilot.press("down")  # row 1 first: still 12 rows in the head, 11 shown
        await quiet(pilot)
        assert browser.view.row == 1 and f"rows 1-11 of {len(ids)}" in static_text(app.query_one("#nwb-view", Static), 200)


async def test_names_and_cells_from_a_hostile_file_never_reach_the_terminal_raw(tmp_path):
    from pynwb import TimeSeries
    from pynwb.epoch import TimeIntervals

    from tests.helpers.nwb_files import base_file, write
    from tests.helpers.screen import screen_text

    evil = "\x1b]0;owned\x07[b]\u202e"
    f = base_file(session_description=f"desc{evil}")
    pres = TimeIntervals(name=f"stim{evil}", description="hostile")
    pres.add_column(f"col{evil}", "a column whose name sets the window title")
    pres.add_interval(start_time=0.0, stop_time=1.0, **{f"col{evil}": f"cell{evil}"})
    f.add_time_intervals(pres)
    f.add_acquisition(TimeSeries(name=f"run{evil}", data=np.arange(50.0), unit="cm/s", rate=10.0))
    path = write(f, tmp_path / f"file{evil}.nwb")
    app = datasets_app([path])
    async with app.run_test(size=(80, 24)) as pilot:
        def clean() -> str:
            shown = screen_text(app) + _status(app) + static_text(app.query_one("#ds-info", Static), 200)
            assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
            return shown

        browser = await _open_file(pilot, app, "file")
        assert "\\x1b]0;owned\\x07[b]\\u202e" in clean()  # shown as escapes, markup as text
        assert "desc\\x1b" in static_text(app.query_one("#nwb-head", Static), 200)
        await _open_item(pilot, app, "table", f"intervals/stim{evil}")
        assert "cell\\x1b]0;owned" in clean() and list(browser.frame.index) == [0]
        await _open_item(pilot, app, "series", f"acquisition/run{evil}")
        assert "run\\x1b" in clean() and len(browser.figure.panels[0].series[0].x) == 50
