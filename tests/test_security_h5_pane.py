"""The Datasets pane on a hostile file: it previews, lists and quits (issue 22, items 3, 4 and 15)."""

from __future__ import annotations

import time

import h5py
import numpy as np
from textual.widgets import Static, Tree

from tests.helpers.tui import datasets_app, quiet, static_text


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
    app = datasets_app([path])
    async with app.run_test(size=(100, 30)) as pilot:
        tree = app.query_one("#ds-tree", Tree)
        node = next(c for c in tree.root.children if str(c.label).startswith("bomb.h5"))
        node.expand()
        await quiet(pilot)
        labels = {str(c.label).split()[0]: c for c in node.children}
        assert "\x1b" not in "".join(map(str, labels)) and "title\\x1b]0;owned\\x07[bold]x" in labels
        assert "ext" in labels and "/etc/hostname:/x" in str(labels["ext"].label)
        assert "unresolvable" in str(labels["loop"].label) and "empty" in str(labels["nothing"].label)
        tree.select_node(labels["ext"])
        await quiet(pilot)
        assert "/etc/hostname:/x (external link, not followed)" in static_text(app.query_one("#ds-status", Static))
        tree.select_node(labels["big"])  # a plain strided read of it never returns
        await quiet(pilot)
        assert "4611686018427387904" in static_text(app.query_one("#ds-info", Static)).replace(" × ", "")
        tree.select_node(labels["title\\x1b]0;owned\\x07[bold]x"])
        await quiet(pilot)
        assert "\x1b" not in static_text(app.query_one("#ds-info", Static))
    assert time.perf_counter() - t0 < 60  # and the app has exited
