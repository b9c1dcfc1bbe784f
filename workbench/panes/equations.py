"""Equations pane: the sparse equations distilled by SINDy, one per state, terms
sorted by |coefficient| with a colour scale, and a threshold you can move.

Moving the threshold does not refit: each equation set carries its threshold
sweep (every threshold's coefficients, solved at once by the batched STLSQ),
so ``+``/``-`` step through it and redraw at once, with the term count and the
validation errors, on a Pareto plot of terms against error with the knee marked.
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Span, Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from workbench.messages import StoreUpdate
from workbench.panes.base import StorePane
from workbench.widgets.plotext_view import render_plotext

SCALE = ("grey50", "cyan", "green", "yellow", "bold red")


def render_equations(payload: dict, coef=None, precision: int = 3) -> Text:
    """Colour each term by the decade of |coefficient| relative to the largest.

    Built as one string plus style spans: appending ~2,000 terms one by one to a
    Rich Text is what made a dense (220-term) model slow to draw.
    """
    import numpy as np

    coef = payload.get("coef") if coef is None else coef
    coef = np.asarray(coef if coef is not None else [], dtype=float)
    features = payload.get("feature_names") or []
    states = payload.get("state_names") or [f"x{i}" for i in range(len(coef))]
    biggest = float(np.abs(coef).max()) if coef.size else 0.0
    biggest = biggest or 1.0
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0

    def add(text: str, style: str | None = None) -> None:
        nonlocal pos
        parts.append(text)
        if style:
            spans.append(Span(pos, pos + len(text), style))
        pos += len(text)

    top = len(SCALE) - 1
    for name, row in zip(states, coef):
        nz = np.flatnonzero(row)
        order = nz[np.argsort(-np.abs(row[nz]), kind="stable")]
        add(f"({name})' = ", "bold")
        if not len(order):
            add("0", "dim")
        for i, j in enumerate(order):
            c = float(row[j])
            if i:
                add(" - " if c < 0 else " + ")
            elif c < 0:
                add("-")
            decade = math.floor(math.log10(abs(c) / biggest))
            add(f"{abs(c):.{precision}g}", SCALE[max(0, min(top, top + decade))])
            if features[j] != "1":
                add(f" {features[j]}")
        add(f"   [{len(order)} terms]", "dim")
        add("\n")
    return Text("".join(parts), spans=spans)


class EquationsPane(StorePane):
    BINDINGS = [
        Binding("plus,equals_sign", "sparser", "Threshold up"),
        Binding("minus", "denser", "Threshold down"),
        Binding("k", "knee", "Knee"),
        Binding("t", "type_threshold", "Type threshold"),
        Binding("c", "compare", "Compare sets"),
        Binding("e", "export", "Export txt/tex/json/sympy"),
        Binding("y", "copy", "Copy (OSC 52)"),
    ]
    DEFAULT_CSS = """
    EquationsPane #eq-list { height: 1fr; }
    EquationsPane #eq-title { height: auto; }
    EquationsPane #eq-body { height: 1fr; }
    EquationsPane #eq-pareto { height: 12; }
    EquationsPane #eq-threshold { display: none; }
    EquationsPane #eq-threshold.visible { display: block; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.sets: list[dict] = []
        self.shown: int | None = None
        self.sweeps: dict[int, Any] = {}  # set id -> (thresholds, coefs) from the sweep artifact
        self.index: dict[int, int] = {}   # set id -> chosen row of its sweep
        self.comparing = False
        self._max = -1
        self._pareto_timer = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-split"):
            with Vertical(classes="side"):
                yield Static("Equation sets", classes="title")
                yield OptionList(id="eq-list")
            with Vertical(classes="main"):
                yield Static("no equations yet — run an analysis's sindy step", id="eq-title",
                             classes="title")
                yield Input(placeholder="threshold, e.g. 0.05 (enter to apply, escape to cancel)",
                            id="eq-threshold")
                with VerticalScroll(id="eq-body"):
                    yield Static("", id="eq-text")
                yield Static("", id="eq-pareto")

    def on_mount(self) -> None:
        ui = self.wb.session.ui()
        self.shown = ui.get("equations.set")
        self.index = {int(k): v for k, v in (ui.get("equations.index") or {}).items()}

    # -- loading -------------------------------------------------------------------
    def store_update(self, msg: StoreUpdate) -> None:
        if msg.equations_max_id != self._max:
            self._max = msg.equations_max_id
            self.load_sets()

    @work(thread=True, exclusive=True, group="eq-load", exit_on_error=False)
    def load_sets(self) -> None:
        sets = self.wb.store.equations()
        sweeps = {s["id"]: _load_sweep(s["data"]) for s in sets if s["id"] not in self.sweeps}
        self.app.call_from_thread(self._set_sets, sets, sweeps)

    def _set_sets(self, sets: list[dict], sweeps: dict) -> None:
        self.sets = sets
        self.sweeps.update(sweeps)
        lst = self.query_one("#eq-list", OptionList)
        lst.clear_options()
        for s in reversed(sets):
            lst.add_option(Option(f"{s['name']}", id=str(s["id"])))
        ids = [s["id"] for s in reversed(sets)]
        if ids and self.shown not in ids:
            self.shown = ids[0]
        if self.shown in ids:
            lst.highlighted = ids.index(self.shown)
        self.redraw()

    def current(self) -> dict | None:
        return next((s for s in self.sets if s["id"] == self.shown), None)

    # -- the threshold ---------------------------------------------------------------
    def _row(self, s: dict) -> int | None:
        """The sweep row shown for set ``s`` (default: the stored model's threshold)."""
        sweep = self.sweeps.get(s["id"])
        if sweep is None:
            return None
        if s["id"] not in self.index:
            self.index[s["id"]] = _nearest(sweep[0], s["data"].get("threshold", 0.0))
        return self.index[s["id"]]

    def coef_of(self, s: dict):
        row = self._row(s)
        return s["data"].get("coef") if row is None else self.sweeps[s["id"]][1][row]

    def threshold_of(self, s: dict) -> float | None:
        row = self._row(s)
        return s["data"].get("threshold") if row is None else float(self.sweeps[s["id"]][0][row])

    def _step(self, delta: int) -> None:
        s = self.current()
        if s is None or self._row(s) is None:
            self.app.notify("this equation set has no threshold sweep", severity="warning")
            return
        n = len(self.sweeps[s["id"]][0])
        self.index[s["id"]] = max(0, min(n - 1, self.index[s["id"]] + delta))
        self._remember()
        self.redraw()

    def action_sparser(self) -> None:
        self._step(+1)

    def action_denser(self) -> None:
        self._step(-1)

    def action_knee(self) -> None:
        s = self.current()
        knee = (s or {}).get("data", {}).get("sweep", {}).get("knee", -1)
        if s is not None and knee >= 0 and self._row(s) is not None:
            self.index[s["id"]] = knee
            self._remember()
            self.redraw()

    def action_type_threshold(self) -> None:
        box = self.query_one("#eq-threshold", Input)
        box.add_class("visible")
        box.value = ""
        box.focus()

    @on(Input.Submitted, "#eq-threshold")
    def on_threshold(self, event: Input.Submitted) -> None:
        box = event.input
        box.remove_class("visible")
        s = self.current()
        try:
            value = float(event.value)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError
        except ValueError:
            self.app.notify(f"not a threshold: {event.value!r}", severity="error")
            return
        if s is not None and self._row(s) is not None:
            self.index[s["id"]] = _nearest(self.sweeps[s["id"]][0], value)
            self._remember()
            self.redraw()
            got = self.threshold_of(s)
            if got and abs(math.log(max(value, 1e-300) / got)) > 0.05:
                self.app.notify(f"nearest swept threshold: {got:.3g}")

    def on_key(self, event) -> None:
        box = self.query_one("#eq-threshold", Input)
        if event.key == "escape" and box.has_class("visible"):
            box.remove_class("visible")
            event.stop()

    def _remember(self) -> None:
        self.wb.save_ui(**{"equations.index": {str(k): v for k, v in self.index.items()}})

    # -- drawing ---------------------------------------------------------------------
    def redraw(self) -> None:
        s = self.current()
        if s is None:
            return
        data = s["data"]
        row = self._row(s)
        sweep = data.get("sweep") or {}
        facts = []
        thr = self.threshold_of(s)
        if thr is not None:
            facts.append(f"threshold {thr:.3g}")
        if row is not None:
            facts.append(f"{sweep['n_terms'][row]} terms")
            for key, label in (("deriv_err", "ẋ err"), ("rollout_err", "rollout err")):
                v = sweep.get(key, [None] * (row + 1))[row]
                if v is not None:
                    facts.append(f"{label} {v:.3g}")
            if row == sweep.get("knee"):
                facts.append("◆ knee")
        elif isinstance(data.get("val_error"), (int, float)):
            facts.append(f"val err {data['val_error']:.3g}")
        self.query_one("#eq-title", Static).update(Text.assemble((s["name"], "bold"), "\n", (" · ".join(facts), "dim")))
        body = render_equations(data, self.coef_of(s))
        if self.comparing:
            other = self._other(s)
            if other is not None:
                body.append(f"\n── {other['name']} (threshold {self.threshold_of(other) or 0:.3g}) ──\n",
                            style="bold magenta")
                body.append(render_equations(other["data"], self.coef_of(other)))
        self.query_one("#eq-text", Static).update(body)
        # the plot trails the equations: a held-down key redraws the text at once
        if self._pareto_timer is not None:
            self._pareto_timer.stop()
        self._pareto_timer = self.set_timer(0.06, lambda: self._draw_pareto(s, row))

    def _other(self, s: dict) -> dict | None:
        """The set to compare with: same analysis prefix (e.g. CfC vs CfC-pruned), else the previous."""
        prefix = s["name"].split(" ")[0]
        candidates = [o for o in reversed(self.sets) if o["id"] != s["id"]]
        same = [o for o in candidates if o["name"].split(" ")[0] == prefix and o["name"] != s["name"]]
        return (same or candidates or [None])[0]

    def _draw_pareto(self, s: dict, row: int | None) -> None:
        plot = self.query_one("#eq-pareto", Static)
        sweep = s["data"].get("sweep")
        if not sweep or row is None:
            plot.update("")
            return
        col = sweep.get("error_column", "rollout_err")
        errs = sweep.get(col) or sweep.get("deriv_err")
        pts = [(n, e) for n, e in zip(sweep["n_terms"], errs) if e is not None and e > 0]
        if not pts:
            plot.update("")
            return
        knee = sweep.get("knee", -1)

        def draw(plt) -> None:
            plt.scatter([p[0] for p in pts], [p[1] for p in pts], marker="dot", label=col)
            if 0 <= knee < len(errs) and errs[knee]:
                plt.scatter([sweep["n_terms"][knee]], [errs[knee]], marker="◆", color="yellow", label="knee")
            if errs[row]:
                plt.scatter([sweep["n_terms"][row]], [errs[row]], marker="●", color="red", label="shown")
            plt.yscale("log")
            plt.xlabel("terms")

        w = plot.size.width or 60
        plot.update(render_plotext(draw, w, 12))

    @on(OptionList.OptionHighlighted, "#eq-list")
    def on_pick(self, event: OptionList.OptionHighlighted) -> None:
        new = int(event.option.id)
        if new != self.shown:
            self.shown = new
            self.wb.save_ui(**{"equations.set": new})
            self.redraw()

    def on_resize(self) -> None:
        self.call_after_refresh(self.redraw)

    def action_compare(self) -> None:
        self.comparing = not self.comparing
        self.redraw()

    # -- export ----------------------------------------------------------------------
    def model(self, s: dict):
        """The shown equations as an engine.sindy model (at the chosen threshold)."""
        import numpy as np

        from engine.sindy.export import model_from_dict

        m = model_from_dict(s["data"])
        m.coef_ = np.asarray(self.coef_of(s), dtype=float)
        m.threshold = float(self.threshold_of(s) or m.threshold)
        return m

    def action_export(self) -> None:
        s = self.current()
        if s is None:
            return
        if s["data"].get("format") != "engine.sindy":
            self.app.notify("this equation set has no model to export", severity="warning")
            return
        self.export_worker(s)

    @work(thread=True, exclusive=True, group="eq-export", exit_on_error=False, name="export")
    def export_worker(self, s: dict) -> None:
        from engine.atomic import write_text
        from engine.sindy.export import to_json, to_latex, to_sympy, to_text

        m = self.model(s)
        out = self.wb.session.artifacts / "exports"
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in s["name"])
        stem += f"-t{m.threshold:.3g}"
        to_text(m, out / f"{stem}.txt")
        to_latex(m, out / f"{stem}.tex")
        to_json(m, out / f"{stem}.json")
        write_text(out / f"{stem}.sympy.txt", "\n".join(str(e) for e in to_sympy(m)) + "\n")
        self.app.call_from_thread(self.app.notify, f"wrote {out}/{stem}.{{txt,tex,json,sympy.txt}}")

    def action_copy(self) -> None:
        s = self.current()
        if s is not None:
            self.app.copy_to_clipboard(render_equations(s["data"], self.coef_of(s)).plain)  # OSC 52
            self.app.notify("equations copied to the clipboard (OSC 52)")


def _load_sweep(data: dict):
    """(thresholds, coefs) from the sweep artifact named in the payload, or None."""
    path = data.get("sweep_path")
    if not path:
        return None
    import numpy as np

    try:
        with np.load(path) as z:
            return z["thresholds"], z["coefs"]
    except (OSError, KeyError, ValueError):
        return None  # artifact gone: the stored model still shows


def _nearest(thresholds, value: float) -> int:
    import numpy as np

    th = np.asarray(thresholds, dtype=float)
    return int(np.argmin(np.abs(np.log(np.maximum(th, 1e-300)) - math.log(max(value, 1e-300)))))
