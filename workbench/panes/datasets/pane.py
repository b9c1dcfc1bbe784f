"""Datasets pane: browse HDF5 and NWB files lazily and open what is in them.

Left: a tree of the HDF5 files found in the given paths; groups expand on
demand (one level is read per expansion).  Right: metadata and sampled
statistics of the selected dataset with a plotext preview (a line for 1-D data,
a heatmap for 2-D or the last two axes of N-D data), or one of the browsers,
each a widget that owns its state: frames of a (T, H, W) stack
(:class:`FrameBrowser`), the retina EDA (:class:`EdaBrowser`), the NWB view of an
NWB file (:class:`NwbBrowser`; ``h`` toggles it with the raw HDF5 tree).  The pane
only routes the tree's selection to them and shows what they report.

All file access runs in thread workers (the engine reads only bounded slices);
a failure is shown in the pane, never raised into the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from engine.data import h5tree
from engine.data.errors import DataError
from engine.reporting import Cancelled
from engine.text import safe_line
from workbench.widgets.plotext_view import PlotextView

from .eda import EdaBrowser
from .files import NodeRef, find_hdf5, file_labels, heatmap_axes
from .frames import FrameBrowser
from .notes import PaneNote, WorkerStop
from .nwb_view import NwbBrowser
from .preview import info_table, preview_drawing

__all__ = ["DatasetsPane", "EDA_LABEL"]

EDA_LABEL = "⚗ retina EDA"


class DatasetsPane(Widget):
    """Tree of HDF5 files on the left, metadata + preview (or a browser) on the right.

    Parameters
    ----------
    paths : list of Path
        Files and folders to look for HDF5 files in.
    """

    DEFAULT_CSS = """
    DatasetsPane { height: 1fr; }
    DatasetsPane > Horizontal { height: 1fr; }
    DatasetsPane #ds-tree { width: 38%; min-width: 24; border-right: solid $panel; }
    DatasetsPane #ds-right { width: 1fr; padding: 0 1; }
    DatasetsPane #ds-info { height: auto; max-height: 45%; }
    DatasetsPane #ds-status { height: auto; max-height: 4; color: $text-muted; }
    DatasetsPane #ds-status.error { color: $error; text-style: bold; }
    DatasetsPane #ds-plot { height: 1fr; }
    """

    # not in the footer (80 columns have no room for it): the status line names it on an NWB file
    BINDINGS = [Binding("h", "toggle_nwb", "NWB view / HDF5 tree", show=False)]

    # the tree's own keys (Textual's Tree) and the NWB view's, listed by the help screen
    HELP_KEYS = [
        ("↑/↓", "move in the tree"),
        ("enter", "expand a file or group / show a dataset (an NWB file: its NWB view)"),
        ("space", "expand or collapse"),
        ("tab", "move to the preview (frames: ←/→, g; EDA: n/p/c; NWB: enter, esc)"),
        ("h", "NWB file: toggle the NWB view and the raw HDF5 tree"),
        ("NWB raster", "←/→ time · ↑/↓ units · +/- zoom · home start"),
        ("NWB table", "↑/↓ rows · ←/→ columns;  NWB series: ←/→ channel;  esc back"),
    ]

    class ChildrenLoaded(Message):
        def __init__(self, node: TreeNode, children: list, eda: bool, error: str | None):
            super().__init__()
            self.node, self.children, self.eda, self.error = node, children, eda, error

    class PreviewLoaded(Message):
        def __init__(self, ref: NodeRef, info: Any, stats: Any = None, preview: Any = None,
                     error: str | None = None, nwb: bool = False, want_nwb: bool = False):
            super().__init__()
            self.ref, self.info, self.stats, self.preview, self.error = ref, info, stats, preview, error
            self.nwb, self.want_nwb = nwb, want_nwb  # the file is NWB; "h" asked for its NWB view

    def __init__(self, paths: list[Path], *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._paths = [Path(p) for p in paths]
        self._ref: NodeRef | None = None  # selected dataset
        self._raw: set[Path] = set()  # NWB files the user asked to see as HDF5 ("h")

    def compose(self) -> ComposeResult:
        with Horizontal():
            tree: Tree[NodeRef] = Tree("HDF5 files", id="ds-tree")
            tree.show_root = False
            yield tree
            with Vertical(id="ds-right"):
                yield Static("Select a dataset in the tree (enter/space to expand).", id="ds-info")
                yield Static("", id="ds-status")
                yield PlotextView(id="ds-plot")
                yield FrameBrowser(id="ds-frame")
                yield EdaBrowser(id="ds-eda")
                yield NwbBrowser(id="ds-nwb")

    def on_mount(self) -> None:
        if not self.query("#ds-plot"):
            return  # mounted as the app closes: nothing to show
        self._show("none")
        self.set_paths(self._paths)

    # ---- public API -----------------------------------------------------------------

    def set_paths(self, paths: list[Path]) -> None:
        """Show the HDF5 files found in ``paths`` (files, or folders searched recursively)."""
        self._paths = [Path(p) for p in paths]
        trees = self.query("#ds-tree")
        if not trees:
            return  # not composed yet: on_mount shows these paths
        tree = trees.first(Tree)
        tree.clear()
        files = find_hdf5(self._paths)
        for f, label in zip(files, file_labels(files)):
            # Text: a file's name is neither markup nor terminal commands
            tree.root.add(Text(safe_line(label)), data=NodeRef(f, "/", "file"), allow_expand=True)
        if not files:
            tree.root.add_leaf("(no HDF5 files found)")
        tree.root.expand()
        tree.cursor_line = 0  # the first Enter/Space acts on the first file, not on nothing

    def focus_default(self) -> None:
        """Keys work on arrival: the tree takes the focus (once it is composed)."""
        trees = self.query("#ds-tree")
        if trees:
            trees.first(Tree).focus()
        else:
            self.call_after_refresh(self.focus_default)

    @property
    def frame_index(self) -> int:
        """Frame shown in the image view."""
        return self.query_one(FrameBrowser).frame_t

    # ---- what the right side shows -----------------------------------------------------

    def _show(self, mode: str) -> None:
        self.query_one("#ds-plot").display = mode == "plot"
        self.query_one("#ds-frame").display = mode == "image"
        self.query_one("#ds-eda").display = mode == "eda"
        self.query_one("#ds-nwb").display = mode == "nwb"

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#ds-status", Static)
        status.set_class(error, "error")
        # an error is read whole (wrapped over up to 4 lines), never cut at the pane's edge
        text = safe_line(text)  # errors quote paths and names from the files
        status.update(Text(f"⚠ {text}") if error else Text(text, no_wrap=True, overflow="ellipsis"))

    def _info(self, renderable: Any) -> None:
        self.query_one("#ds-info", Static).update(renderable)

    def on_pane_note(self, note: PaneNote) -> None:
        note.stop()
        if note.info is not None:
            self._info(note.info)
        if note.status is not None:
            self._status(note.status, note.error)

    # ---- tree: lazy expansion ---------------------------------------------------------

    @on(Tree.NodeExpanded, "#ds-tree")
    def _expand(self, event: Tree.NodeExpanded) -> None:
        node = event.node
        ref = node.data
        if ref is None or ref.kind not in ("file", "group") or getattr(node, "_wb_loaded", False):
            return
        node._wb_loaded = True  # type: ignore[attr-defined]
        node.add_leaf("loading…")
        self._load_children(node, ref)

    @work(thread=True, exit_on_error=False, group="tree")
    def _load_children(self, node: TreeNode, ref: NodeRef) -> None:
        try:
            children = h5tree.list_children(ref.file, ref.name, limit=1000)
            eda = False
            if ref.kind == "file":
                from engine.data.retina import is_retina_file

                eda = is_retina_file(ref.file)
            self.post_message(self.ChildrenLoaded(node, children, eda, None))
        except DataError as exc:
            self.post_message(self.ChildrenLoaded(node, [], False, str(exc)))
        except Exception as exc:  # never let a worker kill the app
            self.post_message(self.ChildrenLoaded(node, [], False, f"{type(exc).__name__}: {exc}"))

    def on_datasets_pane_children_loaded(self, msg: "DatasetsPane.ChildrenLoaded") -> None:
        node = msg.node
        node.remove_children()
        if msg.error:
            node.add_leaf(Text("⚠ " + msg.error.split(": ", 1)[-1], style="red"))
            node._wb_loaded = False  # type: ignore[attr-defined]  # retry on next expand
            self._status(msg.error, error=True)
            return
        ref: NodeRef = node.data
        if msg.eda:
            node.add_leaf(EDA_LABEL, data=NodeRef(ref.file, "/", "eda"))
        for info in msg.children:
            child_ref = NodeRef(info.file, info.name, info.kind, info)
            if info.is_group:
                node.add(Text(info.label()), data=child_ref, allow_expand=True)  # Text: no markup from the file
            else:
                node.add_leaf(Text(info.label()), data=child_ref)
        total = node.data.info.n_children if node.data.info else None
        if total and total > len(msg.children):
            node.add_leaf(f"… {total - len(msg.children)} more not listed")

    # ---- selection: routed to a preview or a browser ------------------------------------

    @on(Tree.NodeSelected, "#ds-tree")
    def _select(self, event: Tree.NodeSelected) -> None:
        ref = event.node.data
        if ref is None:
            return
        if ref.kind == "eda":
            self._ref = ref
            self._show("eda")
            self.query_one(EdaBrowser).open(ref)
        elif ref.kind == "dataset":
            self._ref = ref
            self._status(f"reading {safe_line(ref.name)}…")
            self._load_preview(ref, self._plot_size())
        elif ref.kind in ("group", "file"):
            self._load_group_info(ref)
        elif ref.kind in ("external", "link") and ref.info is not None:
            self._status(ref.info.label())  # a link outside the file is named, never opened

    def action_toggle_nwb(self) -> None:
        """An NWB file's NWB view <-> its raw HDF5 tree (the file's node, expanded, with the focus)."""
        nwb_view = self.query_one(NwbBrowser)
        tree = self.query_one("#ds-tree", Tree)
        if nwb_view.display and nwb_view.path is not None:
            file = nwb_view.path
            self._raw.add(file)
            node = next((n for n in tree.root.children if n.data is not None and n.data.file == file), None)
            if node is not None:
                node.expand()
                tree.move_cursor(node)
            tree.focus()
            self._load_group_info(NodeRef(file, "/", "file"))
            return
        node = tree.cursor_node
        if node is None or node.data is None:
            return
        self._raw.discard(node.data.file)
        self._load_group_info(NodeRef(node.data.file, "/", "file"), want_nwb=True)

    def _plot_size(self) -> tuple[int, int]:
        w, h = self.query_one("#ds-right").content_size
        return max(40, w * 2), max(20, h * 4)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def _load_group_info(self, ref: NodeRef, want_nwb: bool = False) -> None:
        try:
            if ref.kind == "file":
                from engine.data.nwb import is_nwb

                info, nwb = h5tree.open_tree(ref.file), is_nwb(ref.file)  # one attribute read
            else:
                info, nwb = h5tree.node_info(ref.file, ref.name), False
            self.post_message(self.PreviewLoaded(ref, info, nwb=nwb, want_nwb=want_nwb))
        except Exception as exc:
            self.post_message(self.PreviewLoaded(ref, None, error=str(exc)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def _load_preview(self, ref: NodeRef, size: tuple[int, int]) -> None:
        try:
            info = h5tree.node_info(ref.file, ref.name)
            stats = preview = None
            stop = WorkerStop()  # a new selection or quitting cancels this worker: reads stop at once
            if info.numeric and info.shape and int(np.prod(info.shape)) > 0:
                stats = h5tree.sample_stats(ref.file, ref.name, max_elems=200_000, cancel=stop)
                if h5tree.is_image_stack(info):
                    pass  # the frame browser reads its frames
                elif info.ndim == 1:
                    preview = h5tree.preview_slice(ref.file, ref.name, max_points=size[0], cancel=stop)
                else:  # the two longest axes (a 48x400x2 array shows 48x400, not 400x2)
                    preview = h5tree.preview_slice(ref.file, ref.name, axes=heatmap_axes(info.shape),
                                                   max_points=(size[1], size[0]), cancel=stop)
            self.post_message(self.PreviewLoaded(ref, info, stats, preview))
        except Cancelled:
            return  # another selection replaced this one, or the app is closing
        except Exception as exc:
            self.post_message(self.PreviewLoaded(ref, None, error=str(exc)))

    def on_datasets_pane_preview_loaded(self, msg: "DatasetsPane.PreviewLoaded") -> None:
        if msg.error:
            self._show("none")
            self._info(Text(safe_line(msg.ref.name), style="bold"))
            self._status(msg.error, error=True)
            return
        info, ref = msg.info, msg.ref
        if msg.nwb and ref.file not in self._raw:
            self._show("nwb")
            self._info(Text.assemble((safe_line(ref.file.name), "bold"), "  NWB file · h: raw HDF5 tree"))
            self.query_one(NwbBrowser).open(ref.file)
            return
        self._info(info_table(info, msg.stats))
        if info.is_dataset and h5tree.is_image_stack(info) and msg.stats is not None:
            self._show("image")
            frames = self.query_one(FrameBrowser)
            frames.open(ref, info.shape[0])
            frames.focus()
        elif msg.preview is not None:
            self._show("plot")
            self.query_one("#ds-plot", PlotextView).set_figure(preview_drawing(info, msg.preview))
            self._status("preview" + (" (decimated)" if msg.preview.decimated else ""))
        else:
            self._show("none")
            if info.is_dataset and not info.numeric:
                self._status(f"dtype {info.dtype}: no numeric preview")
            elif info.is_dataset:
                self._status("empty or scalar dataset: nothing to plot")
            elif msg.want_nwb:
                self._status(f"{safe_line(ref.file.name)} is not an NWB file", error=True)
            else:
                note = " · NWB file: h shows its NWB view" if msg.nwb else ""
                self._status(f"group with {info.n_children} members{note}")
