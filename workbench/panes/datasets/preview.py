"""What the pane shows for one HDF5 dataset: its metadata table and a plotext preview."""

from __future__ import annotations

from typing import Callable

import numpy as np
from rich.table import Table
from rich.text import Text

from engine.data import h5tree
from engine.text import safe_line

from .files import fmt_bytes

__all__ = ["info_table", "preview_drawing"]


def info_table(info: h5tree.NodeInfo, stats) -> Table:
    """Name, shape, storage, the first attributes and the sampled statistics."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True, min_width=7)
    table.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
    table.add_row("name", Text(safe_line(info.name)))
    if info.is_dataset:
        shape = " × ".join(map(str, info.shape)) if info.shape else "scalar"
        table.add_row("shape", f"{shape}  {info.dtype}  ({fmt_bytes(info.nbytes)})")
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


def preview_drawing(info: h5tree.NodeInfo, preview: h5tree.Preview) -> Callable[[object], None]:
    """A plotext figure of the preview: a line for 1-D data, a heatmap for 2-D."""
    data, coords = preview.data, preview.coords
    if data.ndim == 1:
        x, y = coords[0].tolist(), np.nan_to_num(data).tolist()

        def draw(plt):
            plt.plot(x, y, marker="braille")
            plt.title(f"{info.display_name} (axis {preview.axes[0]})")

        return draw
    matrix = np.nan_to_num(data).tolist()
    steps = [int(c[1] - c[0]) if len(c) > 1 else 1 for c in coords]
    every = f" (every {steps[0]}×{steps[1]})" if max(steps) > 1 else ""

    def draw(plt):
        plt.matrix_plot(matrix)
        plt.title(f"{info.display_name} axes {preview.axes}{every}")

    return draw
