"""Figures an analysis offers for its results, as plain data the TUI draws.

An analysis declares :class:`View` entries (``Analysis.views``); each names a loader
``fn(workdir, index, option) -> Figure`` that reads the step artifacts in the
analysis's folder.  The engine decides *what* to show (which arrays, which cell,
which trial); the workbench decides *how* (plotext lines, half-block heatmaps), so
the same figures could go to a PNG report or a notebook unchanged.

``index`` steps through cells / trials / neurons (``[`` and ``]`` in the TUI),
``option`` through alternatives such as models (``m``).  A loader clamps ``index``
into range and reports the range in ``Figure.n_index``.  Missing artifacts raise
``FileNotFoundError`` whose message says which step makes them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np  # analyses declare views at import time: keep that import cheap

__all__ = ["View", "Figure", "Panel", "Series", "load_figure"]


@dataclass(frozen=True)
class View:
    name: str
    title: str
    func: str  # "module:function", imported when the view is first drawn
    index: str = ""  # what the index counts ("cell", "trial", "neuron"); "" = no index
    pane: str = "results"  # "results" or "training"

    def load(self) -> Callable[..., "Figure"]:
        module, _, attr = self.func.partition(":")
        return getattr(importlib.import_module(module), attr)


@dataclass
class Series:
    label: str
    x: np.ndarray
    y: np.ndarray
    # "background" draws first and dim (the target behind a prediction, as in the seed's figure)
    role: str = "line"  # "line" | "background" | "points"


@dataclass
class Panel:
    """One plot: lines/points, or an image (2-D heatmap)."""

    label: str
    series: list[Series] = field(default_factory=list)
    image: np.ndarray | None = None
    cmap: str = "viridis"
    vmin: float | None = None  # shared colour range, so two heatmaps compare by eye
    vmax: float | None = None
    # images keep their aspect ratio; heatmaps (neurons x time) fill the space
    aspect: bool = False
    xlabel: str = ""
    ylabel: str = ""


@dataclass
class Figure:
    title: str
    panels: list[Panel]
    n_index: int = 1
    index: int = 0
    options: list[str] = field(default_factory=list)
    option: str | None = None
    caption: str = ""  # one line of numbers under the figure (activation, R², ...)


def clamp(index: int, n: int) -> int:
    return max(0, min(int(index), max(0, n - 1)))


def pick(options: Sequence[str], option: str | None) -> str:
    """The chosen option, or the first one when none (or an unknown one) is asked for."""
    if not options:
        raise ValueError("nothing to choose from")
    return option if option is not None and option in options else options[0]


def load_figure(view: View, workdir: Path, index: int = 0, option: str | None = None) -> Figure:
    return view.load()(Path(workdir), index, option)


def need(path: Path, step: str) -> Path:
    """``path`` if it exists, else a FileNotFoundError naming the step that writes it."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{Path(path).name} is missing: run the {step!r} step first")
    return Path(path)
