"""Datasets pane: browse HDF5 files lazily, preview datasets, step through frames, retina EDA.

Left: a tree of the HDF5 files found in the given paths; groups expand on
demand (one level is read per expansion).  Right: metadata and sampled
statistics of the selected dataset, and a preview: a plotext line for 1-D data,
a plotext heatmap for 2-D (or the last two axes of N-D data), frames drawn with
half blocks for (T, H, W) stacks, or the seed-000 EDA for retina-layout files.

All file access runs in thread workers (the engine reads only bounded slices);
a failure is shown in the pane, never raised into the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from engine.data import h5tree
from engine.data.errors import DataError
from engine.reporting import Cancelled
from engine.text import safe_line
from workbench.widgets.halfblock import halfblock
from workbench.widgets.plotext_view import PlotextView

__all__ = ["DatasetsPane", "find_hdf5"]

H5_SUFFIXES = {".h5", ".hdf5", ".hdf", ".he5", ".nc", ".nwb"}  # NWB 2 files are HDF5
EDA_LABEL = "⚗ retina EDA"


def find_hdf5(paths: list[Path], limit: int = 500) -> list[Path]:
    """HDF5 files among ``paths``: files as given, folders searched (recursively) by suffix."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in H5_SUFFIXES and q.is_file()))
        else:
            found.append(p)  # a named file is shown even if it does not exist (error on expand)
        if len(found) >= limit:
            break
    return found[:limit]


def file_labels(files: list[Path]) -> list[str]:
    """Tree labels: the file name, with its folder when several files share a name (each job
    writes its own ``demo.h5``); a job folder is shown by its id's last part."""
    from collections import Counter

    counts = Counter(f.name for f in files)
    out = []
    for f in files:
        if counts[f.name] == 1:
            out.append(f.name)
        else:
            parent = f.parent.name
            out.append(f"{f.name}  {parent.rsplit('-', 1)[-1] if parent.count('-') >= 2 else parent}")
    return out


def _heatmap_axes(shape: tuple[int, ...]) -> tuple[int, int]:
    """The two longest axes, in their order (ties: the later axes, as before)."""
    order = sorted(range(len(shape)), key=lambda a: (shape[a], a), reverse=True)[:2]
    return tuple(sorted(order))  # type: ignore[return-value]


@dataclass(frozen=True)
class NodeRef:
    """What a tree node points at."""

    file: Path
    name: str  # path inside the file, "/" for the file itself
    kind: str  # "file", "group", "dataset", "eda", "more"
    info: h5tree.NodeInfo | None = None


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class FrameView(Static, can_focus=True):
    """The half-block picture of one frame; holds the frame keys so the tree keeps its own."""

    BINDINGS = [
        Binding("left", "step(-1)", "◀ frame", show=True),
        Binding("right", "step(1)", "frame ▶", show=True),
        Binding("pageup", "step(-10)", "-10", show=False),
        Binding("pagedown", "step(10)", "+10", show=False),
        Binding("home", "jump('start')", "first", show=False),
        Binding("end", "jump('end')", "last", show=False),
        Binding("g", "goto", "go to frame", show=True),
    ]

    def action_step(self, delta: int) -> None:
        self.post_message(DatasetsPane.FrameRequest(delta=delta))

    def action_jump(self, where: str) -> None:
        self.post_message(DatasetsPane.FrameRequest(absolute=0 if where == "start" else -1))

    def action_goto(self) -> None:
        self.post_message(DatasetsPane.FrameRequest(ask=True))


class EdaView(VerticalScroll, can_focus=True):
    """Retina EDA: sparsity table, lag histogram, frames before a rise with the trace."""

    BINDINGS = [
        Binding("n", "rise(1)", "next rise", show=True),
        Binding("p", "rise(-1)", "prev rise", show=True),
        Binding("c", "cell", "next cell", show=True),
    ]

    def action_rise(self, delta: int) -> None:
        self.post_message(DatasetsPane.RiseRequest(delta=delta))

    def action_cell(self) -> None:
        self.post_message(DatasetsPane.RiseRequest(next_cell=True))


class DatasetsPane(Widget):
    """Tree of HDF5 files on the left, metadata + preview on the right.

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
    DatasetsPane #ds-frame { height: 1fr; }
    DatasetsPane #ds-frame:focus { background: $boost; }
    DatasetsPane #ds-goto { display: none; }
    DatasetsPane #ds-goto.visible { display: block; }
    DatasetsPane #ds-eda { height: 1fr; }
    DatasetsPane #eda-table { height: auto; }
    DatasetsPane #eda-lags { height: 12; }
    DatasetsPane #eda-frames { height: auto; }
    DatasetsPane #eda-trace { height: 8; }
    """

    # the tree's own keys (Textual's Tree), listed by the help screen
    HELP_KEYS = [
        ("↑/↓", "move in the tree"),
        ("enter", "expand a file or group / show a dataset"),
        ("space", "expand or collapse"),
        ("tab", "move to the preview (frames: ←/→, g; EDA: n/p/c)"),
    ]

    # ---- messages -----------------------------------------------------------------

    @dataclass
    class FrameRequest(Message):
        delta: int = 0
        absolute: int | None = None
        ask: bool = False

    @dataclass
    class RiseRequest(Message):
        delta: int = 0
        next_cell: bool = False

    class ChildrenLoaded(Message):
        def __init__(self, node: TreeNode, children: list, eda: bool, error: str | None):
            super().__init__()
            self.node, self.children, self.eda, self.error = node, children, eda, error

    class PreviewLoaded(Message):
        def __init__(self, ref: NodeRef, info: Any, stats: Any, preview: Any, frame: Any, error: str | None):
            super().__init__()
            self.ref, self.info, self.stats, self.preview, self.frame, self.error = ref, info, stats, preview, frame, error

    class FrameLoaded(Message):
        def __init__(self, t: int, frame: np.ndarray | None, error: str | None):
            super().__init__()
            self.t, self.frame, self.error = t, frame, error

    class EdaLoaded(Message):
        def __init__(self, ref: NodeRef, eda: Any, error: str | None):
            super().__init__()
            self.ref, self.eda, self.error = ref, eda, error

    class RiseLoaded(Message):
        def __init__(self, example: Any, error: str | None):
            super().__init__()
            self.example, self.error = example, error

    # ---- construction ---------------------------------------------------------------

    def __init__(self, paths: list[Path], *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._paths = [Path(p) for p in paths]
        self._ref: NodeRef | None = None  # selected dataset
        self._frame_t = 0
        self._frame_n = 0
        self._frame: np.ndarray | None = None
        self._eda = None
        self._eda_cell = 0
        self._eda_rise = 0

    def compose(self) -> ComposeResult:
        with Horizontal():
            tree: Tree[NodeRef] = Tree("HDF5 files", id="ds-tree")
            tree.show_root = False
            yield tree
            with Vertical(id="ds-right"):
                yield Static("Select a dataset in the tree (enter/space to expand).", id="ds-info")
                yield Static("", id="ds-status")
                yield PlotextView(id="ds-plot")
                yield FrameView("", id="ds-frame")
                yield Input(placeholder="frame number, enter to jump", id="ds-goto", type="integer")
                with EdaView(id="ds-eda"):
                    yield Static("", id="eda-table")
                    yield PlotextView(id="eda-lags")
                    yield Static("", id="eda-frames")
                    yield PlotextView(id="eda-trace")

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
            tree.root.add(label, data=NodeRef(f, "/", "file"), allow_expand=True)
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
        return self._frame_t

    # ---- helpers --------------------------------------------------------------------

    def _show(self, mode: str) -> None:
        self.query_one("#ds-plot").display = mode == "plot"
        self.query_one("#ds-frame").display = mode == "image"
        self.query_one("#ds-eda").display = mode == "eda"

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#ds-status", Static)
        status.set_class(error, "error")
        status.update(Text(text, no_wrap=True, overflow="ellipsis"))

    def _error(self, message: str) -> None:
        # an error is read whole (wrapped over up to 4 lines), never cut at the pane's edge
        status = self.query_one("#ds-status", Static)
        status.set_class(True, "error")
        status.update(Text(f"⚠ {message}"))

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
            self._error(msg.error)
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

    # ---- selection -----------------------------------------------------------------

    @on(Tree.NodeSelected, "#ds-tree")
    def _select(self, event: Tree.NodeSelected) -> None:
        ref = event.node.data
        if ref is None:
            return
        if ref.kind == "eda":
            self._ref = ref
            self._status("running retina EDA…")
            self._run_eda(ref)
        elif ref.kind == "dataset":
            self._ref = ref
            self._status(f"reading {safe_line(ref.name)}…")
            self._load_preview(ref, self._plot_size())
        elif ref.kind in ("group", "file"):
            self._load_group_info(ref)
        elif ref.kind in ("external", "link") and ref.info is not None:
            self._status(ref.info.label())  # a link outside the file is named, never opened

    def _plot_size(self) -> tuple[int, int]:
        w, h = self.query_one("#ds-right").content_size
        return max(40, w * 2), max(20, h * 4)

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def _load_group_info(self, ref: NodeRef) -> None:
        try:
            info = h5tree.open_tree(ref.file) if ref.kind == "file" else h5tree.node_info(ref.file, ref.name)
            self.post_message(self.PreviewLoaded(ref, info, None, None, None, None))
        except Exception as exc:
            self.post_message(self.PreviewLoaded(ref, None, None, None, None, str(exc)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def _load_preview(self, ref: NodeRef, size: tuple[int, int]) -> None:
        try:
            info = h5tree.node_info(ref.file, ref.name)
            stats = preview = frame = None
            stop = _WorkerStop()  # a new selection or quitting cancels this worker: reads stop at once
            if info.numeric and info.shape and int(np.prod(info.shape)) > 0:
                stats = h5tree.sample_stats(ref.file, ref.name, max_elems=200_000, cancel=stop)
                if h5tree.is_image_stack(info):
                    frame = h5tree.read_frame(ref.file, ref.name, 0)
                elif info.ndim == 1:
                    preview = h5tree.preview_slice(ref.file, ref.name, max_points=size[0], cancel=stop)
                else:  # the two longest axes (a 48x400x2 array shows 48x400, not 400x2)
                    preview = h5tree.preview_slice(ref.file, ref.name, axes=_heatmap_axes(info.shape),
                                                   max_points=(size[1], size[0]), cancel=stop)
            self.post_message(self.PreviewLoaded(ref, info, stats, preview, frame, None))
        except Cancelled:
            return  # another selection replaced this one, or the app is closing
        except Exception as exc:
            self.post_message(self.PreviewLoaded(ref, None, None, None, None, str(exc)))

    def on_datasets_pane_preview_loaded(self, msg: "DatasetsPane.PreviewLoaded") -> None:
        if msg.error:
            self._show("none")
            self.query_one("#ds-info", Static).update(Text(safe_line(msg.ref.name), style="bold"))
            self._error(msg.error)
            return
        info = msg.info
        self.query_one("#ds-info", Static).update(self._info_table(info, msg.stats))
        if msg.frame is not None:
            self._frame_n = info.shape[0]
            self._frame_t = 0
            self._frame = msg.frame
            self._show("image")
            self._draw_frame()
            self.query_one("#ds-frame").focus()
        elif msg.preview is not None:
            self._show("plot")
            self._plot_preview(info, msg.preview)
            self._status("preview" + (" (decimated)" if msg.preview.decimated else ""))
        else:
            self._show("none")
            if info.is_dataset and not info.numeric:
                self._status(f"dtype {info.dtype}: no numeric preview")
            elif info.is_dataset:
                self._status("empty or scalar dataset: nothing to plot")
            else:
                self._status(f"group with {info.n_children} members")

    def _info_table(self, info: h5tree.NodeInfo, stats) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold cyan", no_wrap=True, min_width=7)
        table.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
        table.add_row("name", Text(safe_line(info.name)))
        if info.is_dataset:
            shape = " × ".join(map(str, info.shape)) if info.shape else "scalar"
            table.add_row("shape", f"{shape}  {info.dtype}  ({_fmt_bytes(info.nbytes)})")
            layout = f"chunks {info.chunks}" if info.chunks else "contiguous"
            table.add_row("storage", layout + (f", {info.compression}" if info.compression else ""))
        else:
            table.add_row("members", str(info.n_children))
        for key, value in list(info.attrs.items())[:4]:
            table.add_row(Text(f"@{key}"), Text(value))
        if stats is not None:
            rows = dict(stats.as_rows())
            table.add_row("stats", f"min {rows['min']}  max {rows['max']}  mean {rows['mean']}  std {rows['std']}")
            table.add_row("", f"zeros {rows['zeros']}  non-finite {rows['non-finite']}  sample {rows['sampled']}")
        return table

    def _plot_preview(self, info: h5tree.NodeInfo, preview: h5tree.Preview) -> None:
        data, coords = preview.data, preview.coords
        if data.ndim == 1:
            x, y = coords[0].tolist(), np.nan_to_num(data).tolist()

            def draw(plt):
                plt.plot(x, y, marker="braille")
                plt.title(f"{info.display_name} (axis {preview.axes[0]})")

        else:
            matrix = np.nan_to_num(data).tolist()
            steps = [int(c[1] - c[0]) if len(c) > 1 else 1 for c in coords]
            every = f" (every {steps[0]}×{steps[1]})" if max(steps) > 1 else ""

            def draw(plt):
                plt.matrix_plot(matrix)
                plt.title(f"{info.display_name} axes {preview.axes}{every}")

        self.query_one("#ds-plot", PlotextView).set_figure(draw)

    # ---- frames --------------------------------------------------------------------

    def _draw_frame(self) -> None:
        view = self.query_one("#ds-frame", FrameView)
        if self._frame is None:
            return
        w, h = view.content_size
        w, h = (w or 60), (h or 12)
        view.update(halfblock(self._frame, w, max(1, h)))
        self._status(f"frame {self._frame_t} / {self._frame_n - 1}   ←/→ step · pgup/pgdn ±10 · home/end · g go to")

    def on_datasets_pane_frame_request(self, msg: "DatasetsPane.FrameRequest") -> None:
        msg.stop()
        if self._ref is None or self._frame_n == 0:
            return
        if msg.ask:
            box = self.query_one("#ds-goto", Input)
            box.add_class("visible")
            box.value = ""
            box.focus()
            return
        if msg.absolute is not None:
            t = msg.absolute if msg.absolute >= 0 else self._frame_n - 1
        else:
            t = self._frame_t + msg.delta
        t = int(np.clip(t, 0, self._frame_n - 1))
        if t != self._frame_t or msg.absolute is not None:
            self._frame_t = t
            self._load_frame(self._ref, t)

    @on(Input.Submitted, "#ds-goto")
    def _goto_submitted(self, event: Input.Submitted) -> None:
        box = self.query_one("#ds-goto", Input)
        box.remove_class("visible")
        self.query_one("#ds-frame").focus()
        try:
            t = int(event.value)
        except ValueError:
            self._error(f"not a frame number: {event.value!r}")
            return
        if not 0 <= t < self._frame_n:
            self._error(f"frame {t} out of range 0..{self._frame_n - 1}")
            return
        self._frame_t = t
        self._load_frame(self._ref, t)

    @work(thread=True, exclusive=True, exit_on_error=False, group="frame")
    def _load_frame(self, ref: NodeRef, t: int) -> None:
        try:
            self.post_message(self.FrameLoaded(t, h5tree.read_frame(ref.file, ref.name, t), None))
        except Exception as exc:
            self.post_message(self.FrameLoaded(t, None, str(exc)))

    def on_datasets_pane_frame_loaded(self, msg: "DatasetsPane.FrameLoaded") -> None:
        if msg.error:
            self._error(msg.error)
            return
        if msg.t != self._frame_t:
            return  # a newer step is on its way
        self._frame = msg.frame
        self._draw_frame()

    def on_resize(self) -> None:
        if self._frame is not None and self.query_one("#ds-frame").display:
            self.call_after_refresh(self._draw_frame)

    # ---- retina EDA ------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="preview")
    def _run_eda(self, ref: NodeRef) -> None:
        from engine.data.eda import retina_eda

        try:
            self.post_message(self.EdaLoaded(ref, retina_eda(ref.file), None))
        except Exception as exc:
            self.post_message(self.EdaLoaded(ref, None, str(exc)))

    def on_datasets_pane_eda_loaded(self, msg: "DatasetsPane.EdaLoaded") -> None:
        if msg.error:
            self._show("none")
            self._error(msg.error)
            return
        eda = self._eda = msg.eda
        self._eda_cell, self._eda_rise = 0, 0
        self.query_one("#ds-info", Static).update(
            Text.assemble(
                (f"{eda.path.name} /{eda.split}  ", "bold"),
                f"{eda.n_frames} frames · {eda.n_cells} cells · {100 * eda.zero_fraction:.0f}% zeros · "
                f"{len(eda.scene_changes)} scene changes (from the stimulus) · lag mode {eda.lag_mode} "
                f"· {100 * eda.lag_fraction(8, 12):.0f}% in 8-12",
            )
        )
        table = Table(box=None, padding=(0, 1), header_style="bold")
        for col in ("cell", "zeros", "mean Hz", "max Hz", "rises", "median lag"):
            table.add_column(col, justify="right")
        for row in eda.table():
            table.add_row(
                str(row["cell"]),
                f"{row['zero_pct']:.0f}%",
                f"{row['mean_rate']:.1f}",
                f"{row['max_rate']:.0f}",
                str(row["rises"]),
                "-" if np.isnan(row["median_lag"]) else f"{row['median_lag']:.0f}",
            )
        self.query_one("#eda-table", Static).update(table)
        lags = np.arange(len(eda.lag_counts)).tolist()
        counts = eda.lag_counts.tolist()

        def draw(plt):
            plt.bar(lags, counts, width=0.8)
            plt.title("first rise after a scene change: lag (frames)")

        self.query_one("#eda-lags", PlotextView).set_figure(draw)
        self._show("eda")
        self._status("n/p: next/prev rise · c: next cell")
        self.query_one("#ds-eda").focus()
        self._request_rise()

    def on_datasets_pane_rise_request(self, msg: "DatasetsPane.RiseRequest") -> None:
        msg.stop()
        if self._eda is None:
            return
        if msg.next_cell:
            self._eda_cell = (self._eda_cell + 1) % self._eda.n_cells
            self._eda_rise = 0
        else:
            self._eda_rise += msg.delta
        self._request_rise()

    def _request_rise(self) -> None:
        eda = self._eda
        rises = eda.rises[self._eda_cell]
        if len(rises) == 0:
            self.query_one("#eda-frames", Static).update(f"cell {self._eda_cell}: no rises")
            self.query_one("#eda-trace", PlotextView).set_figure(None)
            return
        self._eda_rise %= len(rises)
        self._load_rise(eda.path, eda.split, eda.response_key, self._eda_cell, int(rises[self._eda_rise]))

    @work(thread=True, exclusive=True, exit_on_error=False, group="rise")
    def _load_rise(self, path: Path, split: str, key: str, cell: int, rise: int) -> None:
        from engine.data.eda import rise_example

        try:
            self.post_message(self.RiseLoaded(rise_example(path, split, key, cell, rise, n=10), None))
        except Exception as exc:
            self.post_message(self.RiseLoaded(None, str(exc)))

    def on_datasets_pane_rise_loaded(self, msg: "DatasetsPane.RiseLoaded") -> None:
        if msg.error:
            self._error(msg.error)
            return
        ex = msg.example
        panel = self.query_one("#eda-frames", Static)
        width = max(20, panel.content_size.width or 60)
        # As many thumbnails as fit, the rise frame last (the seed's plot_spike_images).
        thumb = 10
        n = max(1, min(len(ex.indices), width // (thumb + 1)))
        idx = list(range(len(ex.indices) - n, len(ex.indices)))
        vmin, vmax = float(ex.frames.min()), float(ex.frames.max())
        pics = [halfblock(ex.frames[i], thumb, thumb // 2, vmin=vmin, vmax=vmax) for i in idx]
        grid = Table.grid(padding=(0, 1))
        for _ in idx:
            grid.add_column(width=thumb)
        grid.add_row(*pics)
        grid.add_row(*[Text(str(ex.indices[i]), style="bold" if i == idx[-1] else "") for i in idx])
        title = Text(f"cell {ex.cell} · rise at frame {ex.rise} · the {n} frames up to it", style="bold")
        outer = Table.grid()
        outer.add_row(title)
        outer.add_row(grid)
        panel.update(outer)
        x, y = ex.indices.tolist(), ex.trace.tolist()

        def draw(plt):
            plt.plot(x, y, marker="dot")
            plt.title("rate (Hz)")

        self.query_one("#eda-trace", PlotextView).set_figure(draw)


class _WorkerStop:
    """The current thread worker's cancel flag as the event h5tree checks between reads."""

    def __init__(self) -> None:
        from textual.worker import get_current_worker

        self._worker = get_current_worker()

    def is_set(self) -> bool:
        return self._worker.is_cancelled
