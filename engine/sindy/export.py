"""Equations out of a fitted :class:`~engine.sindy.model.Sindy`: text, LaTeX, JSON, sympy.

* ``to_text`` — the ``(h0)' = 0.534 + 10.4 h0 - 2.1 h0 h1`` lines, also written to a file;
* ``to_latex`` — an ``aligned`` block, ``\\dot{h}_{0} &= 0.534 + 10.4 h_{0} - 2.1 h_{0} h_{1}``;
  a map as ``h_{0}[k+1] &= h_{0}[k] + ...``, a constant state as ``h_{6} &= 0.998``
  (the forms of :mod:`engine.sindy.formatting`);
* ``to_json`` / ``from_json`` — coefficient matrix, term names, state/control names, threshold
  and library settings; ``from_json`` gives back a model that predicts, simulates and prints;
* ``to_sympy`` — ``sympy.Eq(Derivative(h0(t), t), ...)`` per state, ``Eq(h0(k + 1), h0(k) + ...)``
  for a map, ``Eq(h6(t), 0.998)`` for a constant (or a dict of right-hand sides).  sympy is imported lazily,
  only by this function (it is installed alongside pysindy here; if it is missing, only this
  export fails, with an ImportError that says so).

All writes go through ``engine.atomic`` (temp file, fsync, rename).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .errors import check_is_fitted
from .formatting import display_scale, format_coef
from .model import Sindy

__all__ = ["to_text", "to_latex", "to_json", "from_json", "to_sympy", "model_to_dict", "model_from_dict"]

FORMAT_VERSION = 1


def _write_atomic(path, text: str) -> Path:
    from ..atomic import write_text

    return write_text(path, text)


def to_text(model, path=None, precision: int = 3) -> str:
    """Equations as text, one per line; also written to ``path`` if given."""
    text = "\n".join(model.equations(precision)) + "\n"
    if path is not None:
        _write_atomic(path, text)
    return text


_NAME = re.compile(r"^([A-Za-z]+)_?(\d+)$")


def _latex_var(name: str) -> str:
    m = _NAME.match(name)
    if m:
        return f"{m.group(1)}_{{{m.group(2)}}}"
    return name.replace("_", r"\_")


def _latex_term(term: str) -> str:
    parts = []
    for factor in term.split(" "):
        base, _, exp = factor.partition("^")
        s = _latex_var(base)
        parts.append(f"{s}^{{{exp}}}" if exp else s)
    return " ".join(parts)


def to_latex(model, path=None, precision: int = 3) -> str:
    """An ``aligned`` LaTeX block of the equations (bare, no ``$$``)."""
    check_is_fitted(model)
    discrete, dt = bool(getattr(model, "discrete_time", False)), getattr(model, "dt_", None)
    consts = getattr(model, "constants_", {}) or {}
    lines = []
    for name, row in zip(model.state_names_, model.coef_):
        if name in consts:
            v = consts[name]
            lines.append(f"{_latex_var(name)} &= {'-' if v < 0 else ''}{format_coef(v, precision)}")
            continue
        row = np.asarray(row, float) * display_scale(discrete, dt)
        parts: list[str] = []
        for c, term in zip(row, model.feature_names_):
            if c == 0:
                continue
            mag = format_coef(c, precision)
            body = mag if term == "1" else f"{mag} {_latex_term(term)}"
            if not parts:
                parts.append(("-" if c < 0 else "") + body)
            else:
                parts.append((" - " if c < 0 else " + ") + body)
        rhs = "".join(parts) if parts else "0"
        v = _latex_var(name)
        if discrete and dt:  # a map: what one step adds to the state
            tail = f"- {rhs[1:]}" if rhs.startswith("-") else f"+ {rhs}"
            lines.append(f"{v}[k+1] &= {v}[k]" + ("" if rhs == "0" else f" {tail}"))
        elif discrete:
            lines.append(rf"\frac{{{v}[k+1] - {v}[k]}}{{\Delta t}} &= {rhs}")
        else:
            m = _NAME.match(name)
            lhs = rf"\dot{{{m.group(1)}}}_{{{m.group(2)}}}" if m else rf"\dot{{{v}}}"
            lines.append(f"{lhs} &= {rhs}")
    text = "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}\n"
    if path is not None:
        _write_atomic(path, text)
    return text


def model_to_dict(model) -> dict[str, Any]:
    check_is_fitted(model)
    return {
        "format": "engine.sindy",
        "version": FORMAT_VERSION,
        "state_names": list(model.state_names_),
        "control_names": list(model.control_names_),
        "feature_names": list(model.feature_names_),
        "coef": np.asarray(model.coef_).tolist(),
        "threshold": float(model.threshold),
        "alpha": float(model.alpha),
        "max_iter": int(model.max_iter),
        "degree": int(model.degree),
        "include_bias": bool(model.include_bias),
        "include_interaction": bool(model.include_interaction),
        "interaction_only": bool(model.interaction_only),
        "differentiation": model.differentiation,
        "discrete_time": bool(getattr(model, "discrete_time", False)),
        "x_scale": float(getattr(model, "x_scale_", 1.0)),
        "dt": getattr(model, "dt_", None),
        "normalize_columns": bool(getattr(model, "normalize_columns", False)),
        "constant_tol": getattr(model, "constant_tol", None),
        "constants": dict(getattr(model, "constants_", {}) or {}),
        "equations": model.equations(),
    }


def model_from_dict(d: dict[str, Any]) -> Sindy:
    if d.get("format") != "engine.sindy":
        raise ValueError("not an engine.sindy model document")
    if int(d.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(f"model format version {d.get('version')} is newer than this code ({FORMAT_VERSION})")
    model = Sindy.from_coefficients(
        np.asarray(d["coef"], dtype=np.float64),
        degree=int(d["degree"]),
        include_bias=bool(d["include_bias"]),
        include_interaction=bool(d.get("include_interaction", True)),
        interaction_only=bool(d.get("interaction_only", False)),
        feature_names=d["state_names"],
        control_names=d["control_names"],
        threshold=float(d.get("threshold", 0.1)),
        alpha=float(d.get("alpha", 0.05)),
        max_iter=int(d.get("max_iter", 20)),
        differentiation=d.get("differentiation", "finite_difference"),
        discrete_time=bool(d.get("discrete_time", False)),
        normalize_columns=bool(d.get("normalize_columns", False)),
        constant_tol=d.get("constant_tol"),
    )
    if model.feature_names_ != list(d["feature_names"]):
        raise ValueError("the stored term names do not match the library rebuilt from the settings")
    model.x_scale_ = float(d.get("x_scale", 1.0))
    dt = d.get("dt")
    model.dt_ = float(dt) if dt is not None and model.discrete_time else None
    model.constants_ = {str(k): float(v) for k, v in (d.get("constants") or {}).items()}
    return model


def to_json(model, path=None, indent: int | None = 1) -> str:
    """JSON document (coefficients, names, threshold, library settings); written if ``path``."""
    text = json.dumps(model_to_dict(model), indent=indent)
    if path is not None:
        _write_atomic(path, text)
    return text


def from_json(text_or_path) -> Sindy:
    """Model from :func:`to_json` output (a JSON string or a file path)."""
    s = str(text_or_path)
    if not s.lstrip().startswith("{"):
        s = Path(s).read_text(encoding="utf-8")
    return model_from_dict(json.loads(s))


def to_sympy(model, form: str = "equations", time_symbol: str = "t"):
    """sympy versions of the equations, one per state.

    ``form="equations"`` (default): a list of ``Eq(Derivative(h0(t), t), 0.534 + 10.4*h0(t) ...)``
    with the states (and controls) as functions of time.  ``form="dict"``: ``{h0: rhs}`` from each
    state symbol to its right-hand side in plain symbols (handy for ``subs``/``lambdify``).
    """
    try:
        import sympy as sp
    except ImportError as e:  # pragma: no cover - sympy ships with pysindy here
        raise ImportError("to_sympy needs sympy (pip install sympy); the other exports do not") from e
    if form not in ("equations", "dict"):
        raise ValueError("form must be 'equations' or 'dict'")
    check_is_fitted(model)
    names = list(model.state_names_) + list(model.control_names_)
    syms = [sp.Symbol(nm, real=True) for nm in names]
    powers = model.library_.powers_
    terms = [sp.Mul(*[s**int(p) for s, p in zip(syms, row) if p]) if row.any() else sp.Integer(1) for row in powers]
    rhs = [sp.Add(*[sp.Float(float(c)) * term for c, term in zip(row, terms) if c != 0]) for row in model.coef_]
    n = model.n_features_in_
    consts = getattr(model, "constants_", {}) or {}
    discrete, dt = bool(getattr(model, "discrete_time", False)), getattr(model, "dt_", None)
    for i, nm in enumerate(names[:n]):
        if nm in consts:
            rhs[i] = sp.Float(consts[nm])
    if form == "dict":
        return {syms[i]: rhs[i] for i in range(n)}
    # a map's clock is the step index k (integer); an ODE's is time t
    tt = sp.Symbol("k", integer=True) if discrete else sp.Symbol(time_symbol, real=True)
    funcs = [sp.Function(nm)(tt) for nm in names]
    sub = dict(zip(syms, funcs))
    out = []
    for i in range(n):
        f = sp.Function(names[i])
        if names[i] in consts:
            out.append(sp.Eq(f(tt), rhs[i]))
        elif discrete:  # x[k+1] = x[k] + dt rhs (dt = Δt symbol when the step is unknown)
            step = sp.Float(dt) if dt else sp.Symbol("Delta_t", positive=True)
            out.append(sp.Eq(f(tt + 1), f(tt) + sp.expand(step * rhs[i].subs(sub))))
        else:
            out.append(sp.Eq(sp.Derivative(funcs[i], tt), rhs[i].subs(sub)))
    return out
