"""The one model-file format: every saved model and every training checkpoint.

A model file is a ``torch.save`` of a dict of tensors and plain containers, so
``torch.load(weights_only=True)`` reads it and nothing in it runs.  It says what it is:

* ``format`` / ``version``: :data:`MODEL_FORMAT`, :data:`MODEL_VERSION`;
* ``kind``: "model" (:func:`save_model`), "train" (a step checkpoint) or "best";
* ``model``: the class's short name in :mod:`engine.models.registry` (the allow-list:
  loading never imports a module the file names);
* ``model_config``: the architecture, so loading rebuilds the model without the
  parameters of the analysis that trained it (a changed ``hidden`` does not matter);
* ``model_state``: the weights, on the CPU;
* ``extra``: the caller's plain data (what the model was trained on, a normalisation...).

Training checkpoints add their own keys (optimizer, history, RNG...; see
:mod:`engine.train.checkpoint`).  Files are written atomically (temp file, then rename).
Files of the earlier checkpoint format (``workbench-train-checkpoint``, class recorded as
``module:qualname``) still load when that class is in the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar, overload

import torch

from engine.atomic import write_with
from engine.errors import TrainingError
from engine.models import registry

MODEL_FORMAT = "neuro-workbench-model"
MODEL_VERSION = 1
LEGACY_FORMAT = "workbench-train-checkpoint"  # before one format: still read

__all__ = ["MODEL_FORMAT", "MODEL_VERSION", "save_model", "load_model", "read_model_file", "rebuild_model"]


def cpu_state_dict(module_or_opt) -> Any:
    """State dict with tensors copied to CPU, so the file loads anywhere."""
    return map_tensors(module_or_opt.state_dict(), lambda t: t.detach().to("cpu", copy=True))


def map_tensors(obj, fn: Callable[[torch.Tensor], Any]):
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return type(obj)((k, map_tensors(v, fn)) for k, v in obj.items())
    if isinstance(obj, list):
        return [map_tensors(v, fn) for v in obj]
    if isinstance(obj, tuple):
        return tuple(map_tensors(v, fn) for v in obj)
    return obj


def model_header(model: torch.nn.Module, kind: str, required: bool) -> dict[str, Any]:
    """The keys that make a file self-describing.

    ``required``: a model file must be loadable on its own, so its class must be
    registered with a config; a training checkpoint of any module is still written
    (with ``model`` None, it then loads only with a ``model_factory``).
    """
    name, cfg = registry.name_of(model), registry.config_of(model)
    if required and (name is None or cfg is None):
        cls = type(model).__qualname__
        why = "is not registered in engine.models.registry" if name is None else "has no config"
        raise TrainingError(f"cannot save a {cls} as a model file: its class {why}")
    return {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "kind": kind,
        "model": name if cfg is not None else None,
        "model_config": cfg,
        "torch_version": str(torch.__version__),
    }


def _check_plain(obj, where: str = "extra") -> None:
    """Refuse what ``weights_only`` loading could not read back (objects that need pickle)."""
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where} has a key of type {type(k).__name__}; use str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where} is a {type(obj).__name__}: a model file holds only tensors and plain data")


def save_model(model: torch.nn.Module, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (its class's short name, config and CPU weights) to ``path`` atomically.

    ``extra`` is plain data (numbers, strings, tensors, lists, dicts) returned by
    :func:`load_model`.  Raises :class:`TrainingError` if the model's class is not in
    :mod:`engine.models.registry`, ``TypeError`` if ``extra`` holds anything else.
    """
    extra = dict(extra or {})
    _check_plain(extra)
    core = getattr(model, "module", model)  # a DDP wrapper saves its plain module
    payload = {
        **model_header(core, "model", required=True),
        "model_state": cpu_state_dict(core),
        "extra": extra,
        "step": int(extra.get("step", 0)),
    }
    return write_with(path, lambda tmp: torch.save(payload, tmp))


def read_model_file(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The dict inside a model file or checkpoint; :class:`TrainingError` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torn, truncated, not torch, or holding objects
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise TrainingError(f"{path} cannot be read as a model file (truncated or not one?): {first}") from None
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt not in (MODEL_FORMAT, LEGACY_FORMAT):
        raise TrainingError(f"{path} is not a workbench model file")
    if fmt == MODEL_FORMAT and int(payload.get("version", 0)) > MODEL_VERSION:
        raise TrainingError(
            f"{path} is model-file version {payload['version']}, newer than this workbench reads "
            f"({MODEL_VERSION}); update the workbench")
    return payload


def _registered_name(payload: dict[str, Any], path: Path) -> str:
    name = payload.get("model")
    if name is None and payload.get("model_class"):  # the legacy format: map its class path
        name = registry.name_of_class_path(str(payload["model_class"])) or str(payload["model_class"])
    if not name or payload.get("model_config") is None:
        raise TrainingError(f"{path} records no model class/config; pass model_factory")
    return str(name)


def rebuild_model(payload: dict[str, Any], path: str | Path, model_factory: Callable | None = None):
    """The model a payload describes, with its weights, in eval mode.

    ``model_factory(model_config) -> nn.Module`` replaces the registry lookup when given.
    """
    path = Path(path)
    cfg = payload.get("model_config")
    if model_factory is not None:
        model = model_factory(cfg)
    else:
        name = _registered_name(payload, path)
        try:
            cls = registry.model_class(name)
        except KeyError as exc:
            raise TrainingError(f"{path} holds a model of class {name!r}, which this workbench does not know "
                                f"(registered: {', '.join(registry.names())})") from exc
        try:
            model = cls.from_config(cfg)
        except (TypeError, ValueError) as exc:
            raise TrainingError(f"{path}: the {name} config does not build a model ({exc})") from exc
    try:
        model.load_state_dict(payload["model_state"])
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise TrainingError(f"{path}: the weights do not fit the model ({first})") from exc
    model.eval()
    return model


ModelT = TypeVar("ModelT", bound=torch.nn.Module)


@overload
def load_model(path: str | Path, map_location: Any = "cpu", expect: None = None
               ) -> tuple[torch.nn.Module, dict[str, Any]]: ...


@overload
def load_model(path: str | Path, map_location: Any = "cpu", *, expect: type[ModelT]
               ) -> tuple[ModelT, dict[str, Any]]: ...  # expect=Cls: typed as a Cls


def load_model(path: str | Path, map_location: Any = "cpu", expect: type[torch.nn.Module] | None = None
               ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model saved in ``path`` (a model file, ``best.pt`` or a step checkpoint).

    Returns ``(model, extra)``: the model in eval mode on ``map_location`` and the
    ``extra`` given to :func:`save_model` (empty for checkpoints).  Raises
    ``FileNotFoundError``, or :class:`TrainingError` for a file that is not a model file,
    is truncated, is newer than this code, names a class not in the registry, or (with
    ``expect``) holds another registered model than the caller reads (a file put in the
    wrong place must not be scored as the model it replaced).
    """
    payload = read_model_file(path, map_location="cpu")
    model = rebuild_model(payload, path)
    if expect is not None and not isinstance(model, expect):
        raise TrainingError(f"{Path(path).name}: holds a {type(model).__name__}, not a {expect.__name__}")
    if str(map_location) != "cpu":
        model.to(map_location)
    return model, _extra_of(payload)


_LEGACY_KEYS = {"format", "version", "kind", "step", "model_state", "model_config", "model_class", "torch_version"}


def _extra_of(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("format") == LEGACY_FORMAT and payload.get("kind") == "model":
        return {k: v for k, v in payload.items() if k not in _LEGACY_KEYS}  # extras were top-level keys
    return dict(payload.get("extra") or {})
