"""Fast, batched, scikit-learn-style SINDy.

The names below are imported lazily (PEP 562), so ``import engine.sindy`` costs nothing and
never pulls in torch, pandas or pysindy; each submodule imports its heavy dependencies only in
the functions that need them (torch: the ``device=`` paths and ``simulate``; pandas: the sweep
table; sympy: ``to_sympy``).

* :class:`Sindy` — the estimator (``fit``, ``predict``, ``simulate``, ``score``, ``equations``,
  hand-editing of terms with Gram-based refits).
* :func:`stlsq` — STLSQ for all targets and many thresholds at once (numpy or torch), same
  support and coefficients as pysindy's ``STLSQ``.
* :class:`PolynomialLibrary` — pysindy's polynomial library, column for column.
* :func:`finite_difference`, :func:`smoothed_finite_difference`, :func:`savgol_derivative`.
* :func:`threshold_sweep`, :func:`pareto_front`, :func:`knee_point`, :func:`ensemble`;
  :func:`load_sweep` reads a saved sweep back (:class:`StoredSweep`: refits and scores hand edits).
* :func:`simulate` — batched RK4 (torch) or adaptive (scipy) with divergence detection.
* :func:`to_text`, :func:`to_latex`, :func:`to_json`, :func:`from_json`, :func:`to_sympy` — a
  discrete-time model is written as a map (``h0[k+1] = h0[k] + ...``), a constant state as
  ``h6 = 0.998 (constant)`` (:mod:`.formatting`).
* :func:`check_library` — the library's features and memory, refused in one line
  (:class:`LibraryTooLarge`) before anything is allocated.
* :func:`equation_errors`, :func:`select_rows` — each equation at its own threshold by
  teacher-forced held-out rollouts in absolute units (``threshold_sweep(select="per_equation")``).
* :func:`map_targets`, :func:`flow_targets` — derivative targets from the trained model itself.
* :mod:`.examples` — reference systems with their true terms (tests, examples, benchmarks).

Layout, each module importing only from those listed before it (``tests/test_sindy_layout.py``:
no cycle, deferred imports included; no private name crosses a module):

* basics: ``errors``, ``_blas`` (BLAS threads), ``_inputs`` (trajectories and times),
  ``formatting``, ``library``, ``derivatives``, ``budget``, ``targets``, ``examples``;
* solving: ``gram`` (``GramStats``), ``_linalg`` (the least-squares rules), ``solver_numpy``,
  ``solver_torch``, ``stlsq_algorithm`` (``stlsq``, ``stlsq_gram``, ``refit_support``);
* rollouts: ``_array_ops``, ``simulation``;
* the estimator: ``design`` (data to regression problem), ``editing`` (hand edits), ``model``,
  ``export``, ``equation_set`` (the stored equations' schema);
* model choice: ``pareto``, ``selection``, ``holdout``, ``stored`` (saved sweeps), ``sweep``,
  ``bagging`` (ensembles).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Sindy": "model",
    "NotFittedError": "errors",
    "format_equation": "formatting",
    "stlsq": "stlsq_algorithm",
    "stlsq_gram": "stlsq_algorithm",
    "GramStats": "gram",
    "STLSQInfo": "stlsq_algorithm",
    "ConvergenceWarning": "errors",
    "ridge_path_thresholds": "stlsq_algorithm",
    "PolynomialLibrary": "library",
    "polynomial_combinations": "library",
    "finite_difference": "derivatives",
    "smoothed_finite_difference": "derivatives",
    "savgol_derivative": "derivatives",
    "differentiate": "derivatives",
    "threshold_sweep": "sweep",
    "SweepResult": "sweep",
    "StoredSweep": "stored",
    "load_sweep": "stored",
    "pareto_front": "pareto",
    "knee_point": "pareto",
    "ensemble": "bagging",
    "EnsembleResult": "bagging",
    "simulate": "simulation",
    "SimulationResult": "simulation",
    "to_text": "export",
    "to_latex": "export",
    "to_json": "export",
    "from_json": "export",
    "to_sympy": "export",
    "check_library": "budget",
    "LibraryTooLarge": "budget",
    "equation_errors": "selection",
    "select_rows": "selection",
    "map_targets": "targets",
    "flow_targets": "targets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'engine.sindy' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)


if TYPE_CHECKING:  # pragma: no cover
    from .bagging import EnsembleResult, ensemble
    from .budget import LibraryTooLarge, check_library
    from .derivatives import differentiate, finite_difference, savgol_derivative, smoothed_finite_difference
    from .errors import ConvergenceWarning, NotFittedError
    from .export import from_json, to_json, to_latex, to_sympy, to_text
    from .formatting import format_equation
    from .gram import GramStats
    from .library import PolynomialLibrary, polynomial_combinations
    from .model import Sindy
    from .pareto import knee_point, pareto_front
    from .selection import equation_errors, select_rows
    from .simulation import SimulationResult, simulate
    from .stlsq_algorithm import STLSQInfo, ridge_path_thresholds, stlsq, stlsq_gram
    from .stored import StoredSweep, load_sweep
    from .sweep import SweepResult, threshold_sweep
    from .targets import flow_targets, map_targets
