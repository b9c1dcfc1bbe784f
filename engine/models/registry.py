"""The allow-list of model classes a model file may ask to rebuild, by short name.

A model file (:mod:`engine.train.model_file`) names its class with one of these short
names; loading looks the name up here and never imports a module named by the file.
The built-in table holds module paths written in this source, imported lazily so that
rebuilding a GNN does not import ncps.  Code (a third-party analysis, a test) adds its
own classes with :func:`register`; nothing read from a file can.

Every registered class takes its architecture from one plain-data config: the instance
has ``.config`` (a dataclass, an object with ``to_dict()``, or a dict) and the class has
``from_config(dict)``.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

__all__ = ["register", "model_class", "name_of", "names", "config_of"]

# short name -> (module, class): the engine's own models
_BUILTIN: dict[str, tuple[str, str]] = {
    "mlp": ("engine.models.mlp", "MLP"),
    "retina_cfc": ("engine.models.retina_cfc", "RetinaCfC"),
    "signal_gnn": ("engine.models.gnn", "SignalGNN"),
    "siren": ("engine.models.siren", "Siren"),
    "cnn_readout": ("engine.models.cnn_readout", "CnnReadout"),
    "birnn": ("engine.models.rnn", "BiRNN"),
    "rnn_readout": ("engine.models.rnn", "Readout"),
}
_ADDED: dict[str, type] = {}


def register(name: str, cls: type) -> type:
    """Allow ``cls`` to be rebuilt from model files that name it ``name``; returns ``cls``."""
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"a model name must be a short identifier, got {name!r}")
    if not callable(getattr(cls, "from_config", None)):
        raise TypeError(f"{cls.__qualname__} has no from_config(dict) classmethod")
    taken = _BUILTIN.get(name)
    if taken is not None and taken != (cls.__module__, cls.__qualname__):
        raise ValueError(f"model name {name!r} is taken by {taken[0]}.{taken[1]}")
    if name in _ADDED and _ADDED[name] is not cls:
        raise ValueError(f"model name {name!r} is taken by {_ADDED[name].__qualname__}")
    _ADDED[name] = cls
    return cls


def names() -> list[str]:
    """Every short name a model file may use."""
    return sorted({*_BUILTIN, *_ADDED})


def model_class(name: str) -> type[Any]:
    """The class registered as ``name``; ``KeyError`` (naming the known ones) if none is."""
    if name in _ADDED:
        return _ADDED[name]
    if name not in _BUILTIN:
        raise KeyError(f"no model class is registered as {name!r} (known: {', '.join(names())})")
    module, qualname = _BUILTIN[name]
    return getattr(importlib.import_module(module), qualname)


def name_of(model_or_cls: Any) -> str | None:
    """The short name the model's class is registered under, or None."""
    cls = model_or_cls if isinstance(model_or_cls, type) else type(model_or_cls)
    for name, added in _ADDED.items():
        if added is cls:
            return name
    where = (cls.__module__, cls.__qualname__)
    for name, spec in _BUILTIN.items():
        if spec == where:
            return name
    return None


def name_of_class_path(path: str) -> str | None:
    """The short name for a ``module:qualname`` recorded by older checkpoints, or None."""
    module, _, qualname = path.partition(":")
    for name, spec in _BUILTIN.items():
        if spec == (module, qualname):
            return name
    for name, cls in _ADDED.items():
        if (cls.__module__, cls.__qualname__) == (module, qualname):
            return name
    return None


def config_of(model: Any) -> dict[str, Any] | None:
    """The model's architecture as a plain dict, from ``model.config`` (None if it has none)."""
    cfg = getattr(model, "config", None)
    if cfg is None:
        return None
    if hasattr(cfg, "to_dict"):
        cfg = cfg.to_dict()
    elif dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        cfg = dataclasses.asdict(cfg)
    return dict(cfg) if isinstance(cfg, dict) else None
