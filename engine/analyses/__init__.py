"""Registry of analyses by name.  Listing them imports no heavy module.

An analysis is a package ``engine/analyses/<name>/`` whose ``__init__`` declares
``ANALYSIS`` (cheap to import: parameters, steps and views by "module:function"
name) beside its ``steps.py`` and ``views.py``.  Built-ins are found with
:mod:`pkgutil`; third-party analyses register under the entry-point group
``neuro_workbench.analyses`` (name = "module"), the way harlequin finds its
adapters; ``WORKBENCH_ANALYSES="name=module,..."`` adds more for one run (the
test suite's own analyses).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from importlib.metadata import entry_points

from engine.analyses.base import Analysis, ParamError, Step, StepContext

ENTRY_POINT_GROUP = "neuro_workbench.analyses"
# the order the built-ins are listed in (the rest follow alphabetically)
_FIRST = ("demo", "lds", "mei", "retina", "connectome", "stimulus")


def _builtin() -> dict[str, str]:
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg)
    ordered = [n for n in _FIRST if n in found] + [n for n in found if n not in _FIRST]
    return {n: f"{__name__}.{n}" for n in ordered}


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value.partition(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _from_env() -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, os.environ.get("WORKBENCH_ANALYSES", "").split(",")):
        name, _, module = item.partition("=")
        if name.strip() and module.strip():
            out[name.strip()] = module.strip()
    return out


def _discover() -> dict[str, str]:
    """name -> module defining ANALYSIS: built-ins first; a plug-in never replaces a
    built-in; the environment variable adds or replaces for one run."""
    modules = _builtin()
    for name, module in _plugins().items():
        modules.setdefault(name, module)
    modules.update(_from_env())
    return modules


_MODULES: dict[str, str] = _discover()


def register(name: str, module: str) -> None:
    _MODULES[name] = module


def names() -> list[str]:
    return list(_MODULES)


def get(name: str) -> Analysis:
    try:
        module = _MODULES[name]
    except KeyError:
        raise ParamError(f"unknown analysis {name!r} (known: {', '.join(_MODULES)})") from None
    analysis = importlib.import_module(module).ANALYSIS
    if not isinstance(analysis, Analysis):
        raise ParamError(f"{module}.ANALYSIS is not an Analysis")
    return analysis


__all__ = ["ENTRY_POINT_GROUP", "Analysis", "ParamError", "Step", "StepContext", "get", "names", "register"]
