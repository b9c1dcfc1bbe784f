"""How a coefficient and an equation are written: an ODE, a map, or a constant (one place for
every export: the model, the pane, text, LaTeX).

* ODE: ``(h0)' = 0.534 + 10.4 h0``.
* Map (a discrete-time fit, ``x[k+1] = x[k] + dt f(x[k])``): with the step known,
  ``h0[k+1] = h0[k] + 0.00534 + 0.104 h0`` (the coefficients times ``dt``: what one step adds);
  without it, ``(h0[k+1] - h0[k])/Δt = 0.534 + 10.4 h0``.  The right-hand side's names are the
  library's (``h0`` is ``h0[k]``), so terms read the same in the pane, the sweep and the edits.
* Constant (a state that does not move, see ``Sindy(constant_tol=)``): ``h6 = 0.998 (constant)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["format_coef", "format_equation", "display_scale", "lhs_text", "constant_text", "equation_text"]


def format_coef(c: float, precision: int) -> str:
    """``precision`` significant digits, plain notation for moderate magnitudes, no trailing zeros."""
    a = abs(float(c))
    if a == 0:
        return "0"
    if a < 1e-4 or a >= 1e7:
        return f"{a:.{precision}g}"
    digits = max(precision - 1 - int(np.floor(np.log10(a))), 0)
    s = f"{a:.{digits}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def format_equation(coef_row, feature_names: Sequence[str], precision: int = 3) -> str:
    """Right-hand side like ``0.534 + 10.4 h0 - 2.1 h0 h1`` (bias printed bare, signs merged)."""
    parts: list[str] = []
    for c, name in zip(coef_row, feature_names):
        if c == 0:
            continue
        mag = format_coef(c, precision) if np.isfinite(c) else ("nan" if np.isnan(c) else "inf")
        term = mag if name == "1" else f"{mag} {name}"
        neg = bool(c < 0)
        if not parts:
            parts.append(("-" if neg else "") + term)
        else:
            parts.append((" - " if neg else " + ") + term)
    return "".join(parts) if parts else "0"


def display_scale(discrete_time: bool, dt: float | None) -> float:
    """What the stored coefficients are multiplied by when written (``dt`` for a map)."""
    return float(dt) if discrete_time and dt else 1.0


def lhs_text(name: str, discrete_time: bool, dt: float | None) -> str:
    """The left-hand side with its ``=`` and what precedes the terms."""
    if not discrete_time:
        return f"({name})' = "
    if dt:
        return f"{name}[k+1] = {name}[k] + "
    return f"({name}[k+1] - {name}[k])/Δt = "


def constant_text(name: str, value: float, precision: int = 3) -> str:
    return f"{name} = {'-' if value < 0 else ''}{format_coef(value, precision)} (constant)"


def equation_text(name: str, row, feature_names: Sequence[str], *, discrete_time: bool = False,
                  dt: float | None = None, constant: float | None = None, precision: int = 3) -> str:
    """One equation as text (see the module docstring)."""
    if constant is not None:
        return constant_text(name, constant, precision)
    rhs = format_equation(np.asarray(row, float) * display_scale(discrete_time, dt), feature_names, precision)
    lhs = lhs_text(name, discrete_time, dt)
    if discrete_time and dt:  # "h0[k] + -0.5 h0" reads as "h0[k] - 0.5 h0"
        if rhs == "0":
            return f"{name}[k+1] = {name}[k]"
        if rhs.startswith("-"):
            return lhs[:-2] + "- " + rhs[1:]
    return lhs + rhs
