"""The shown equations written out: the engine model at the chosen threshold, its
txt/tex/json/sympy files, and the copy saved where OSC 52 cannot reach.  No Textual: the
pane calls these from a worker."""

from __future__ import annotations

from pathlib import Path

from workbench.panes.equations_state import EquationsState


def model_of(state: EquationsState, s: dict):
    """The shown equations as an engine.sindy model (off the UI thread: a pending refit is
    made here)."""
    import numpy as np

    from engine.sindy.export import model_from_dict

    m = model_from_dict(s["data"])
    m.coef_ = np.asarray(state.coef_of(s, refit=True), dtype=float)
    m.threshold = float(state.threshold_of(s) or m.threshold)
    return m


def write_exports(m, out: Path, name: str) -> Path:
    """``<out>/<name>-t<threshold>.{txt,tex,json,sympy.txt}``; returns the path without suffix."""
    from engine.atomic import write_text
    from engine.sindy.export import to_json, to_latex, to_sympy, to_text

    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) + f"-t{m.threshold:.3g}"
    to_text(m, out / f"{stem}.txt")
    to_latex(m, out / f"{stem}.tex")
    to_json(m, out / f"{stem}.json")
    write_text(out / f"{stem}.sympy.txt", "\n".join(str(e) for e in to_sympy(m)) + "\n")
    return out / stem


def save_copy(text: str, out: Path) -> Path | None:
    """The copied equations in a file; None if it cannot be written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError:
        return None
    return out
