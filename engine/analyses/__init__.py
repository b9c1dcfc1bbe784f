"""Registry of analyses by name.  Listing them imports no heavy module."""

from __future__ import annotations

import importlib
import os

from engine.analyses.base import Analysis, ParamError, Step, StepContext

# name -> module defining ANALYSIS; the module must be cheap to import.
_MODULES = {
    "demo": "engine.analyses.demo",
    "lds": "engine.analyses.lds",
    "mei": "engine.analyses.mei",
    "retina": "engine.analyses.retina",
    "connectome": "engine.analyses.connectome",
    "stimulus": "engine.analyses.stimulus",
}

# Extra analyses (plug-ins, and the test suite's) as "name=module,name=module".
for _item in filter(None, os.environ.get("WORKBENCH_ANALYSES", "").split(",")):
    _name, _, _module = _item.partition("=")
    if _name and _module:
        _MODULES[_name.strip()] = _module.strip()


def register(name: str, module: str) -> None:
    _MODULES[name] = module


def names() -> list[str]:
    return list(_MODULES)


def get(name: str) -> Analysis:
    try:
        module = _MODULES[name]
    except KeyError:
        raise ParamError(f"unknown analysis {name!r} (known: {', '.join(_MODULES)})") from None
    return importlib.import_module(module).ANALYSIS


__all__ = ["Analysis", "ParamError", "Step", "StepContext", "get", "names", "register"]
