"""The Pareto plot under the equations: terms against validation error over the sweep, the
knee, the shown row and a scored hand edit marked."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from workbench.panes.equations_view import PlotSpec
from workbench.widgets.plotext_view import render_plotext


class ParetoPlot(Static):
    """A Static that draws a :class:`PlotSpec`, each (row, size, edit) plotted once."""

    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self._key: tuple | None = None  # what is drawn now
        self._plots: dict[tuple, Any] = {}  # rows seen before: no new plot (plotext takes ~10 ms)

    def show(self, spec: PlotSpec | None) -> None:
        if spec is None:
            self.update("")
            self._key = None
            return
        key = (spec.set_id, spec.row, self.size.width, self.size.height, spec.edit)
        if key == self._key:  # only the text changed (cursor, comparison)
            return
        self._key = key
        if key not in self._plots:
            plot = _draw(spec, self.size.width or 60, max(self.size.height, 5))
            if plot is None:
                self.update("")
                return
            if len(self._plots) > 512:
                self._plots.clear()
            self._plots[key] = plot
        self.update(self._plots[key], layout=False)  # its height is set by fit()

    def fit(self, pane_height: int, comparing: bool) -> None:
        """At most a third of the pane (12 rows on a tall screen, none below 5): at 80x24 nine
        equations need the room.  Comparing hides it for the same reason."""
        rows = min(12, pane_height // 3)
        show = rows >= 5 and not comparing
        self.display = show
        if show and self.styles.height != rows:
            self.styles.height = rows
            self._key = None


def _draw(spec: PlotSpec, width: int, height: int):
    sweep, row, edit = spec.sweep, spec.row, spec.edit
    col = sweep.get("error_column", "rollout_err")
    errs = sweep.get(col) or sweep.get("deriv_err")
    pts = [(n, e) for n, e in zip(sweep["n_terms"], errs) if e is not None and e > 0]
    if not pts:
        return None
    knee = sweep.get("knee", -1)

    def draw(plt) -> None:
        # no legend box (it covered the ● marker): the markers are named in the x label
        plt.scatter([p[0] for p in pts], [p[1] for p in pts], marker="dot")
        if 0 <= knee < len(errs) and errs[knee]:
            plt.scatter([sweep["n_terms"][knee]], [errs[knee]], marker="◆", color="yellow")
        if errs[row]:
            plt.scatter([sweep["n_terms"][row]], [errs[row]], marker="●", color="red")
        if edit is not None:
            plt.scatter([edit[0]], [edit[1]], marker="✚", color="magenta")
        plt.yscale("log")
        plt.xlabel(f"terms · {col}  ● shown ◆ knee" + (" ✚ edited" if edit is not None else ""))

    return render_plotext(draw, width, height)
