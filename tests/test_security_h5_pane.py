"""The Datasets pane on a hostile file: it previews, lists and quits (issue 22, items 3, 4 and 15)."""

from __future__ import annotations

import io
import time

import h5py
import numpy as np
from rich.console import Console
from textual.app import App, ComposeResult
from textual.widgets import Static, Tree

from workbench.panes.datasets import DatasetsPane
from tests.helpers.tui import workers_done


class PaneApp(App):
    def __init__(self, paths):
        super().__init__()
        self.paths = paths

    def compose(self) -> ComposeResult:
        yield DatasetsPane(self.paths, id="datasets")


def _text(widget: Static) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


async def _settle(pilot, app):
    for _ in range(100):
        await pilot.pause()
        await workers_done(app)
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            return


async def test_hostile_file_previews_lists_and_quits(tmp_path):
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as fh:  # 1.4 KB-class file: nothing allocated
        fh.create_dataset("big", shape=(2**62,), dtype="u1", chunks=(2**20,), maxshape=(None,))
        fh.create_dataset("nothing", data=h5py.Empty("f4"))
        fh.create_dataset("title\x1b]0;owned\x07[bold]x", data=np.arange(3.0))
        g = fh.create_group("g")
        g["hard"] = g
        fh["loop"] = h5py.SoftLink("/loop")
        fh["ext"] = h5py.ExternalLink("/etc/hostname", "/x")
    t0 = time.perf_counter()
    app = PaneApp([path])
    async with app.run_test(size=(100, 30)) as pilot:
        tree = app.query_one("#ds-tree", Tree)
        node = next(c for c in tree.root.children if str(c.label).startswith("bomb.h5"))
        node.expand()
        await _settle(pilot, app)
        labels = {str(c.label).split()[0]: c for c in node.children}
        assert "\x1b" not in "".join(map(str, labels)) and "title\\x1b]0;owned\\x07[bold]x" in labels
        assert "ext" in labels and "/etc/hostname:/x" in str(labels["ext"].label)
        assert "unresolvable" in str(labels["loop"].label) and "empty" in str(labels["nothing"].label)
        tree.select_node(labels["ext"])
        await _settle(pilot, app)
        assert "/etc/hostname:/x (external link, not followed)" in _text(app.query_one("#ds-status", Static))
        tree.select_node(labels["big"])  # a plain strided read of it never returns
        await _settle(pilot, app)
        assert "4611686018427387904" in _text(app.query_one("#ds-info", Static)).replace(" × ", "")
        tree.select_node(labels["title\\x1b]0;owned\\x07[bold]x"])
        await _settle(pilot, app)
        assert "\x1b" not in _text(app.query_one("#ds-info", Static))
    assert time.perf_counter() - t0 < 60  # and the app has exited
