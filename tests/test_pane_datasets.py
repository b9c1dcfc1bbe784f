"""Datasets pane driven with Pilot in a tiny app at 80x24."""

from __future__ import annotations


import h5py
import numpy as np
import pytest
from textual.widgets import Static, Tree

from engine.data.retina_gen import generate_retina
from workbench.panes.datasets import EDA_LABEL, DatasetsPane, EdaBrowser, FrameBrowser, find_hdf5
from workbench.widgets.halfblock import fit_size, halfblock
from tests.helpers.tui import datasets_app, quiet, static_text


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pane")
    with h5py.File(root / "toy.h5", "w") as fh:
        fh.create_dataset("signal", data=np.sin(np.linspace(0, 20, 5000)))
        fh.create_dataset("grp/matrix", data=np.arange(600.0).reshape(20, 30))
        stack = np.zeros((30, 16, 16), np.uint8)
        stack[:, 4:12, 4:12] = (np.arange(30) * 8)[:, None, None]
        fh.create_dataset("grp/stack", data=stack, chunks=(5, 16, 16))
    (root / "broken.h5").write_text("this is not an HDF5 file")
    generate_retina(root / "sub" / "naturalscene.h5", cells=3, frames=1200, test_frames=100, seed=2)
    return root


def _node(tree: Tree, *labels: str):
    node = tree.root
    for label in labels:
        node = next(c for c in node.children if str(c.label).startswith(label))
    return node


def test_find_hdf5_and_halfblock_shapes(folder):
    found = [p.name for p in find_hdf5([folder])]
    assert found == ["broken.h5", "naturalscene.h5", "toy.h5"]  # sorted by path: sub/ before toy.h5
    assert fit_size((50, 50), 40, 10) == (20, 20)
    img = np.zeros((4, 2))
    img[0, 0] = 1.0
    text = halfblock(img, 2, 2)
    assert text.plain == "▀▀\n▀▀"
    first = text.spans[0].style
    assert "rgb(255,255,255)" in str(first) and "on rgb(0,0,0)" in str(first)


async def test_expand_select_and_step_frames(folder):
    app = datasets_app([folder])
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(DatasetsPane)
        tree = app.query_one("#ds-tree", Tree)
        toy = _node(tree, "toy.h5")
        assert not toy.children  # nothing read before expansion
        toy.expand()
        await quiet(pilot)
        labels = [str(c.label) for c in toy.children]
        assert "grp/" in labels and any(l.startswith("signal  5000  float64") for l in labels)
        # 1-D dataset: plot + stats.
        tree.select_node(_node(tree, "toy.h5", "signal"))
        await quiet(pilot)
        info = static_text(app.query_one("#ds-info", Static))
        assert "5000  float64" in info and "mean" in info
        assert pane.query_one("#ds-plot").display and not pane.query_one("#ds-frame").display
        assert "┤" in static_text(pane.query_one("#ds-plot", Static))  # a plotext axis
        # Image stack: frames, stepping with keys.
        grp = _node(tree, "toy.h5", "grp")
        grp.expand()
        await quiet(pilot)
        tree.select_node(_node(tree, "toy.h5", "grp", "stack"))
        await quiet(pilot)
        assert pane.query_one("#ds-frame").display and pane.query_one("#ds-frame").has_focus
        assert pane.frame_index == 0
        await pilot.press("right", "right")
        await quiet(pilot)
        assert pane.frame_index == 2
        await pilot.press("pagedown")
        await quiet(pilot)
        assert pane.frame_index == 12
        frames = pane.query_one(FrameBrowser)
        assert frames.frame[8, 8] == 12 * 8  # the frame read really is frame 12
        await pilot.press("end")
        await quiet(pilot)
        assert pane.frame_index == 29
        await pilot.press("home")
        await quiet(pilot)
        assert pane.frame_index == 0
        await pilot.press("g", "1", "7", "enter")
        await quiet(pilot)
        assert pane.frame_index == 17 and frames.frame[8, 8] == 17 * 8
        assert "frame 17 / 29" in static_text(pane.query_one("#ds-status", Static))


async def test_bad_file_shows_an_error_and_app_survives(folder):
    app = datasets_app([folder / "broken.h5", folder / "missing.h5"])
    async with app.run_test(size=(80, 24)) as pilot:
        tree = app.query_one("#ds-tree", Tree)
        _node(tree, "broken.h5").expand()
        await quiet(pilot)
        status = static_text(app.query_one("#ds-status", Static))
        assert "not an HDF5 file" in status
        assert any("not an HDF5 file" in str(c.label) for c in _node(tree, "broken.h5").children)
        _node(tree, "missing.h5").expand()
        await quiet(pilot)
        assert "no such file" in static_text(app.query_one("#ds-status", Static))
        assert app.is_running


async def test_retina_eda_view(folder):
    app = datasets_app([folder / "sub"])
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(DatasetsPane)
        tree = app.query_one("#ds-tree", Tree)
        _node(tree, "naturalscene.h5").expand()
        await quiet(pilot)
        eda_node = _node(tree, "naturalscene.h5", EDA_LABEL)
        tree.select_node(eda_node)
        await quiet(pilot)
        assert pane.query_one("#ds-eda").display
        table = static_text(pane.query_one("#eda-table", Static))
        assert "median lag" in table
        frames = pane.query_one("#eda-frames", Static)
        first = static_text(frames)
        assert "rise at frame" in first
        await pilot.press("n")
        await quiet(pilot)
        eda = pane.query_one(EdaBrowser)
        assert static_text(frames) != first and eda.rise == 1
        await pilot.press("c")
        await quiet(pilot)
        assert eda.cell == 1 and eda.rise == 0 and "cell 1" in static_text(frames)


async def test_a_thin_last_axis_previews_the_two_long_ones_and_errors_read_whole(tmp_path):
    with h5py.File(tmp_path / "traces.h5", "w") as fh:
        data = np.zeros((48, 400, 2))
        data[:, :, 0] = np.sin(np.linspace(0, 12, 400))[None, :] * np.arange(48)[:, None]
        fh.create_dataset("traces", data=data)
    app = datasets_app([tmp_path / "traces.h5", tmp_path / ("a-long-folder-name-" * 4) / "missing.h5"])
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(DatasetsPane)
        tree = app.query_one("#ds-tree", Tree)
        _node(tree, "traces.h5").expand()
        await quiet(pilot)
        seen = []
        import engine.data.h5tree as h5tree

        real = h5tree.preview_slice

        def spy(*a, **kw):
            seen.append(kw.get("axes"))
            return real(*a, **kw)

        h5tree.preview_slice = spy
        try:
            tree.select_node(_node(tree, "traces.h5", "traces"))
            await quiet(pilot)
        finally:
            h5tree.preview_slice = real
        assert seen == [(0, 1)], seen  # 48 x 400, not 400 x 2
        assert pane.query_one("#ds-plot").display
        _node(tree, "missing.h5").expand()
        await quiet(pilot)
        status = app.query_one("#ds-status", Static)
        assert "no such file" in static_text(status) and status.size.height > 1  # wrapped, not cut


def test_files_sharing_a_name_are_told_apart_by_their_folder(tmp_path):
    from workbench.panes.datasets import file_labels

    files = [tmp_path / "demo" / "jobs" / "s-1130-223858-40a7" / "demo.h5",
             tmp_path / "demo" / "jobs" / "s-1130-224001-9bc2" / "demo.h5",
             tmp_path / "mine" / "day1" / "rec.hdf5"]
    assert file_labels(files) == ["demo.h5  40a7", "demo.h5  9bc2", "rec.hdf5"]


def test_hard_links_to_one_file_are_listed_once(tmp_path):
    """Each job folder links its inputs: one file, several paths, one row (the first path found)."""
    import os

    with h5py.File(tmp_path / "input.h5", "w") as fh:
        fh["x"] = np.arange(3)
    for job in ("job-a", "job-b"):
        (tmp_path / job).mkdir()
        os.link(tmp_path / "input.h5", tmp_path / job / "input.h5")
    with h5py.File(tmp_path / "job-b" / "own.h5", "w") as fh:
        fh["y"] = np.arange(2)
    found = find_hdf5([tmp_path])
    assert found == [tmp_path / "input.h5", tmp_path / "job-b" / "own.h5"]
    # named first as a file, then again inside a folder: still once, at the named path
    again = find_hdf5([tmp_path / "job-b" / "input.h5", tmp_path])
    assert again == [tmp_path / "job-b" / "input.h5", tmp_path / "job-b" / "own.h5"]
    assert find_hdf5([tmp_path / "missing.h5", tmp_path / "missing.h5"]) == [tmp_path / "missing.h5"]
