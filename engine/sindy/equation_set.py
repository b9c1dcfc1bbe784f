"""The one typed form of a stored equation set: what every analysis saves, what the
Equations pane, the report and later steps read.

A session row holds JSON that someone else may have written: an older version of this
code, another analysis with a shape of its own (``lds`` stored ``coef``/``features``/
``truth`` before this module existed), or a hand edit.  ``EquationSet.from_payload``
validates and migrates such a row, or raises :class:`EquationSetError` with one line that
names what is wrong; consumers never index a raw dict.  ``to_payload`` writes the
canonical document (``engine.sindy.export.model_to_dict``'s keys, so ``model_from_dict``
reads it, plus the sweep summary and the analysis's extras).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

SET_VERSION = 3  # 1: model_to_dict + sweep summary, no "set_version"; 2: this module;
# 3: dt (a map's step), normalize_columns, constant_tol and constants (older sets: none)


class EquationSetError(ValueError):
    """A stored equation set that cannot be read (one line, names the problem)."""


@dataclass(frozen=True)
class SweepSummary:
    """The threshold sweep as the pane plots it (the coefficient stack is in ``sweep_path``)."""

    threshold: tuple[float, ...]
    n_terms: tuple[int, ...]
    deriv_err: tuple[float | None, ...]
    rollout_err: tuple[float | None, ...]
    diverged_frac: tuple[float | None, ...]
    knee: int = -1
    error_column: str = "rollout_err"

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": list(self.threshold), "n_terms": list(self.n_terms),
                "deriv_err": list(self.deriv_err), "rollout_err": list(self.rollout_err),
                "diverged_frac": list(self.diverged_frac), "knee": self.knee,
                "error_column": self.error_column}

    @classmethod
    def from_dict(cls, d: Any) -> "SweepSummary":
        if not isinstance(d, dict):
            raise EquationSetError(f"sweep: expected a mapping, got {type(d).__name__}")
        thr = _floats(d.get("threshold"), "sweep.threshold")
        n = len(thr)
        terms = tuple(int(v) for v in _floats(d.get("n_terms"), "sweep.n_terms", n))
        cols = {k: _optional_floats(d.get(k), f"sweep.{k}", n)
                for k in ("deriv_err", "rollout_err", "diverged_frac")}
        knee = d.get("knee", -1)
        if isinstance(knee, bool) or not isinstance(knee, int) or not -1 <= knee < n:
            raise EquationSetError(f"sweep.knee: expected an index below {n} or -1, got {knee!r}")
        col = d.get("error_column", "rollout_err")
        if col not in cols:
            raise EquationSetError(f"sweep.error_column: expected one of {sorted(cols)}, got {col!r}")
        return cls(thr, terms, cols["deriv_err"], cols["rollout_err"], cols["diverged_frac"], knee, col)


@dataclass(frozen=True)
class EquationSet:
    """A fitted SINDy model as stored in a session.

    ``coef`` is (states, library terms) in the library order of ``feature_names``;
    ``discrete_time`` models are maps ``x[k+1] = x[k] + dt Θ(x[k]) ξ`` (fitted on increments
    over ``dt``; ``dt`` None when unknown), the others ODEs.  ``constants`` are the states that
    did not move (std below ``constant_tol``): not fitted, written ``h6 = 0.998 (constant)``.
    ``normalize_columns``: the threshold acted on unit-norm library columns (the coefficients
    are in the original units either way).  ``extra`` holds what an analysis adds
    (``val_error``, ``truth_coef`` in the same layout as ``coef``, ``system``); it is JSON-able.
    """

    state_names: tuple[str, ...]
    control_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    coef: np.ndarray
    threshold: float = 0.0
    degree: int = 1
    discrete_time: bool = False
    include_bias: bool = True
    include_interaction: bool = True
    interaction_only: bool = False
    alpha: float = 0.0
    max_iter: int = 20
    differentiation: str = "finite_difference"
    x_scale: float = 1.0
    dt: float | None = None
    normalize_columns: bool = False
    constant_tol: float | None = None
    constants: dict[str, float] = field(default_factory=dict)
    sweep: SweepSummary | None = None
    sweep_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_terms(self) -> int:
        return int(np.count_nonzero(self.coef))

    # -- writing --------------------------------------------------------------------
    def lhs(self, state: str) -> str:
        """What precedes the terms of ``state``'s equation: ``(h0)' = ``, ``h0[k+1] = h0[k] + ``."""
        from engine.sindy.formatting import lhs_text

        return lhs_text(state, self.discrete_time, self.dt)

    @property
    def display_scale(self) -> float:
        """The factor between stored and written coefficients (``dt`` for a map)."""
        from engine.sindy.formatting import display_scale

        return display_scale(self.discrete_time, self.dt)

    def equations(self, coef=None, precision: int = 3) -> list[str]:
        """One line per state, as :mod:`engine.sindy.formatting` writes them."""
        from engine.sindy.formatting import equation_text

        c = self.coef if coef is None else np.asarray(coef, float)
        return [equation_text(s, row, self.feature_names, discrete_time=self.discrete_time, dt=self.dt,
                              constant=self.constants.get(s), precision=precision)
                for s, row in zip(self.state_names, c)]

    # -- building -------------------------------------------------------------------
    @classmethod
    def from_model(cls, model, *, sweep: SweepSummary | None = None, sweep_path: str | None = None,
                   extra: dict[str, Any] | None = None) -> "EquationSet":
        """From a fitted :class:`engine.sindy.Sindy`."""
        from engine.sindy.export import model_to_dict

        payload = model_to_dict(model)
        payload.update(extra or {})
        if sweep is not None:
            payload["sweep"] = sweep.to_dict()
        if sweep_path is not None:
            payload["sweep_path"] = sweep_path
        return cls.from_payload(payload)

    # -- reading --------------------------------------------------------------------
    @classmethod
    def from_payload(cls, d: Any) -> "EquationSet":
        """Validate (and migrate) a stored payload; :class:`EquationSetError` if it can't be read."""
        if not isinstance(d, dict):
            raise EquationSetError(f"expected a mapping, got {type(d).__name__}")
        version = d.get("set_version", 1)
        if not isinstance(version, int) or version > SET_VERSION:
            raise EquationSetError(f"equation set version {version!r} is newer than this code ({SET_VERSION})")
        if d.get("format") not in ("engine.sindy", None):
            raise EquationSetError(f"unknown format {d.get('format')!r}")
        if "features" in d and "feature_names" not in d:
            d = _migrate_linear_map(d)
        elif "feature_names" not in d or "coef" not in d:
            raise EquationSetError("not an equation set (no feature_names and coef)")
        coef_rows = d.get("coef")
        n_states = len(coef_rows) if isinstance(coef_rows, list) else 0
        states = _names(d.get("state_names", [f"x{i}" for i in range(n_states)]), "state_names")
        controls = _names(d.get("control_names", []), "control_names")
        feats = _names(d.get("feature_names"), "feature_names")
        coef = _matrix(d.get("coef"), "coef", (len(states), len(feats)))
        known = {"format", "version", "set_version", "state_names", "control_names", "feature_names", "coef",
                 "threshold", "alpha", "max_iter", "degree", "include_bias", "include_interaction",
                 "interaction_only", "differentiation", "discrete_time", "x_scale", "equations", "sweep",
                 "sweep_path", "normalize_columns", "constant_tol", "constants"}
        discrete = _flag(d.get("discrete_time", False), "discrete_time")
        # a map's step: v3 stores "dt"; v2 retina sets kept it among the analysis's extras
        dt = d.get("dt")
        if dt is not None:
            dt = _number(dt, "dt")
            if dt <= 0:
                raise EquationSetError(f"dt: expected a positive step, got {dt!r}")
        if discrete or dt is None:  # an ODE's "dt" (an analysis's sample step) stays an extra
            known.add("dt")
        consts = d.get("constants") or {}
        if not isinstance(consts, dict) or not all(isinstance(k, str) and k in states for k in consts):
            raise EquationSetError("constants: expected a mapping from state names to values")
        tol = d.get("constant_tol")
        sweep = d.get("sweep")
        path = d.get("sweep_path")
        if path is not None and not isinstance(path, str):
            raise EquationSetError(f"sweep_path: expected a path string, got {type(path).__name__}")
        return cls(
            state_names=states, control_names=controls, feature_names=feats, coef=coef,
            threshold=_number(d.get("threshold", 0.0), "threshold"),
            degree=int(_number(d.get("degree", 1), "degree")),
            discrete_time=_flag(d.get("discrete_time", False), "discrete_time"),
            include_bias=_flag(d.get("include_bias", True), "include_bias"),
            include_interaction=_flag(d.get("include_interaction", True), "include_interaction"),
            interaction_only=_flag(d.get("interaction_only", False), "interaction_only"),
            alpha=_number(d.get("alpha", 0.0), "alpha"),
            max_iter=int(_number(d.get("max_iter", 20), "max_iter")),
            differentiation=str(d.get("differentiation", "finite_difference")),
            x_scale=_number(d.get("x_scale", 1.0), "x_scale"),
            dt=dt if discrete else None,
            normalize_columns=_flag(d.get("normalize_columns", False), "normalize_columns"),
            constant_tol=None if tol is None else _number(tol, "constant_tol"),
            constants={k: _number(v, f"constants.{k}") for k, v in consts.items()},
            sweep=None if sweep is None else SweepSummary.from_dict(sweep),
            sweep_path=path,
            extra={k: v for k, v in d.items() if k not in known},
        )

    def to_payload(self) -> dict[str, Any]:
        """The canonical JSON-able document (``model_from_dict`` reads it)."""
        from engine.sindy.export import FORMAT_VERSION

        out: dict[str, Any] = dict(self.extra)
        out.update({
            "format": "engine.sindy", "version": FORMAT_VERSION, "set_version": SET_VERSION,
            "state_names": list(self.state_names), "control_names": list(self.control_names),
            "feature_names": list(self.feature_names),
            "coef": [[None if not math.isfinite(v) else float(v) for v in row] for row in self.coef],
            "threshold": self.threshold, "alpha": self.alpha, "max_iter": self.max_iter,
            "degree": self.degree, "include_bias": self.include_bias,
            "include_interaction": self.include_interaction, "interaction_only": self.interaction_only,
            "differentiation": self.differentiation, "discrete_time": self.discrete_time,
            "x_scale": self.x_scale, "normalize_columns": self.normalize_columns,
            "constant_tol": self.constant_tol, "constants": dict(self.constants),
            "equations": self.equations(),
        })
        if self.discrete_time:
            out["dt"] = self.dt
        if self.sweep is not None:
            out["sweep"] = self.sweep.to_dict()
        if self.sweep_path is not None:
            out["sweep_path"] = self.sweep_path
        return out

    def model(self):
        """The :class:`engine.sindy.Sindy` these coefficients define (the library is rebuilt)."""
        from engine.sindy.export import model_from_dict

        try:
            return model_from_dict(self.to_payload())
        except ValueError as exc:
            raise EquationSetError(str(exc)) from None


def written(payload: Any) -> EquationSet | None:
    """The set of a stored payload for writing its equations (None if it cannot be read):
    the pane calls :meth:`EquationSet.lhs`, :attr:`EquationSet.display_scale` and
    :attr:`EquationSet.constants` on it."""
    try:
        return EquationSet.from_payload(payload)
    except EquationSetError:
        return None


def read_rows(rows: Sequence[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], EquationSet]], list[str]]:
    """Session rows (``Session.equations()``) → ``([(row, set)], [one line per unreadable row])``."""
    good: list[tuple[dict[str, Any], EquationSet]] = []
    bad: list[str] = []
    for r in rows:
        try:
            good.append((r, EquationSet.from_payload(r.get("data"))))
        except EquationSetError as exc:
            bad.append(f"equation set {r.get('name')!r} (#{r.get('id')}) skipped: {exc}")
    return good, bad


# -- migration --------------------------------------------------------------------------
def linear_map_payload(names: Sequence[str], coef, intercept=None, *, threshold: float = 0.0,
                       truth=None, **extra: Any) -> dict[str, Any]:
    """A degree-1 map of increments ``y[t+1] - y[t] = y[t] @ coef + intercept`` (``coef`` as
    (source, target), the ``lds`` convention) as a canonical payload; ``truth`` in the same
    convention is stored as ``truth_coef`` in the payload's (target, term) layout."""
    feats = _names(list(names), "features")
    n = len(feats)
    coef = _matrix(np.asarray(coef, float).tolist(), "coef", (n, n))
    icpt = np.zeros(n) if intercept is None else _matrix([list(np.asarray(intercept, float))], "intercept", (1, n))[0]
    out: dict[str, Any] = {
        **extra,
        "format": "engine.sindy", "state_names": list(feats), "control_names": [],
        "feature_names": ["1", *feats], "degree": 1, "include_bias": True, "discrete_time": True, "dt": 1.0,
        "coef": np.column_stack([icpt, coef.T]).tolist(), "threshold": threshold,
    }
    if truth is not None:
        t = _matrix(np.asarray(truth, float).tolist(), "truth", (n, n))
        out["truth_coef"] = np.column_stack([np.zeros(n), t.T]).tolist()
    return out


def _migrate_linear_map(d: dict[str, Any]) -> dict[str, Any]:
    """The ``lds`` shape stored before v2 (``features``, ``coef`` as (source, target), ``truth``)."""
    if not isinstance(d.get("coef"), list):
        raise EquationSetError("coef: expected a matrix")
    extra = {k: d[k] for k in ("system", "backend") if k in d}
    return linear_map_payload(_names(d.get("features"), "features"), d["coef"], d.get("intercept"),
                              threshold=d.get("threshold", 0.0), truth=d.get("truth"), **extra)


# -- field checks -----------------------------------------------------------------------
def _names(v: Any, what: str) -> tuple[str, ...]:
    if not isinstance(v, (list, tuple)) or not all(isinstance(s, str) for s in v):
        raise EquationSetError(f"{what}: expected a list of names")
    return tuple(v)


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise EquationSetError(f"{what}: expected a finite number, got {v!r}")
    return float(v)


def _flag(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise EquationSetError(f"{what}: expected true/false, got {v!r}")
    return v


def _floats(v: Any, what: str, n: int | None = None) -> tuple[float, ...]:
    out = _optional_floats(v, what, n)
    if any(x is None for x in out):
        raise EquationSetError(f"{what}: missing values")
    return tuple(float(x) for x in out if x is not None)


def _optional_floats(v: Any, what: str, n: int | None = None) -> tuple[float | None, ...]:
    if v is None and n is not None:
        return (None,) * n
    if not isinstance(v, (list, tuple)):
        raise EquationSetError(f"{what}: expected a list of numbers")
    if n is not None and len(v) != n:
        raise EquationSetError(f"{what}: expected {n} values, got {len(v)}")
    out: list[float | None] = []
    for x in v:
        if x is None:
            out.append(None)
        elif isinstance(x, bool) or not isinstance(x, (int, float)):
            raise EquationSetError(f"{what}: expected numbers, got {x!r}")
        else:
            out.append(float(x) if math.isfinite(x) else None)
    return tuple(out)


def _matrix(v: Any, what: str, shape: tuple[int, int]) -> np.ndarray:
    if not isinstance(v, (list, tuple)) or len(v) != shape[0]:
        raise EquationSetError(f"{what}: expected {shape[0]} rows")
    rows = []
    for row in v:
        vals = _optional_floats(row, what, shape[1])
        rows.append([np.nan if x is None else x for x in vals])
    return np.asarray(rows, dtype=np.float64).reshape(shape)
