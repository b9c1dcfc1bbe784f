"""How an equation is written: an ODE, a map, or a constant (one place for every export).

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

__all__ = ["display_scale", "lhs_text", "constant_text", "equation_text"]


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
    from .model import _fmt_coef

    return f"{name} = {'-' if value < 0 else ''}{_fmt_coef(value, precision)} (constant)"


def equation_text(name: str, row, feature_names: Sequence[str], *, discrete_time: bool = False,
                  dt: float | None = None, constant: float | None = None, precision: int = 3) -> str:
    """One equation as text (see the module docstring)."""
    from .model import format_equation

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
