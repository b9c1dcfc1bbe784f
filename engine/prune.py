"""Global magnitude (L1) pruning, optionally fine-tuned through the one training loop.

The seed pruned "the 20 lowest weights according to the L1 norm" of the CfC,
globally across its layers.  :func:`prune_global` does that with
``torch.nn.utils.prune.global_unstructured`` (``L1Unstructured``), can
fine-tune with the mask held in place, then makes the pruning permanent and
returns a plain-data report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from torch import nn
from torch.nn.utils import prune as tprune

__all__ = ["prune_global", "default_prunable"]


def default_prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``model.prunable_parameters()`` if it has one, else every Linear/Conv weight."""
    own = getattr(model, "prunable_parameters", None)  # a method of some models (not of nn.Module)
    if own is not None:
        return list(own())
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [(m, "weight") for m in model.modules() if isinstance(m, kinds)]


def _names(model: nn.Module) -> dict[int, str]:
    return {id(m): name for name, m in model.named_modules()}


def prune_global(
    model: nn.Module,
    amount: int | float,
    parameters: list[tuple[nn.Module, str]] | None = None,
    finetune: Any = None,
    train_batches=None,
    val_batches=None,
    reporter=None,
    workdir: str | Path | None = None,
    loss_fn: Callable | None = None,
    resume: bool = True,
) -> dict[str, Any]:
    """Prune the smallest-magnitude weights across several tensors at once, in place.

    Parameters
    ----------
    model : nn.Module
        Pruned in place; on return the pruning is permanent (plain weights with zeros).
    amount : int or float
        An int prunes exactly that many weights (the seed's 20); a float in
        [0, 1] prunes that fraction of the candidate weights.  A whole float
        above 1 (``20.0``, as JSON parameters arrive) counts as an int.
    parameters : list of (module, name), optional
        Candidate tensors; default :func:`default_prunable` (for
        :class:`~engine.models.retina_cfc.RetinaCfC`: the CfC's weight matrices).
        If the model has ``pruning_scores()`` (scores keyed like ``parameters``)
        they rank the weights instead of ``|w|``; RetinaCfC uses it so that
        synapses an NCP wiring already lacks are never counted as pruned.
    finetune : engine.train.TrainConfig, optional
        If given, fine-tune with :func:`engine.train.fit` while the mask is in
        place (pruned weights stay zero), before making the pruning permanent.
    train_batches, val_batches, reporter, workdir, loss_fn, resume
        Passed to :func:`engine.train.fit` when fine-tuning.  ``workdir`` must
        differ from the original training's, or it would resume that run; pass
        ``resume=False`` when re-pruning a different model into the same workdir.

    Returns
    -------
    dict
        ``amount`` (as asked), ``candidates`` (weights considered), ``pruned``
        (chosen by the mask), ``zero_before``/``zero_after`` (exact zeros among
        candidates), ``fraction``, ``layers`` (one dict per tensor: ``name``,
        ``shape``, ``size``, ``pruned``, ``zero_after``) and ``finetune``
        (the fine-tune's summary or None).
    """
    params = parameters if parameters is not None else default_prunable(model)
    if not params:
        raise ValueError("nothing to prune: the model has no candidate weights")
    total = sum(getattr(m, n).numel() for m, n in params)
    if isinstance(amount, float) and amount > 1 and amount.is_integer():
        amount = int(amount)
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise ValueError(f"amount must be an int (count) or a float (fraction), got {amount!r}")
    if isinstance(amount, int):
        if not 0 <= amount <= total:
            raise ValueError(f"cannot prune {amount} weights: there are {total} candidates")
    elif not 0.0 <= amount <= 1.0:
        raise ValueError(f"a fractional amount must be in [0, 1], got {amount}")

    names = _names(model)
    zero_before = sum(int((getattr(m, n).detach() == 0).sum()) for m, n in params)

    scores = None
    own_scores = getattr(model, "pruning_scores", None)  # a method of some models (not of nn.Module)
    if parameters is None and own_scores is not None:
        scores = own_scores()
    # Already pruned (a reparametrised weight) tensors would nest masks; refuse clearly.
    for m, n in params:
        if tprune.is_pruned(m) and hasattr(m, n + "_orig"):
            raise ValueError(f"{names.get(id(m), m)}.{n} already carries a pruning mask; call prune.remove first")
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, importance_scores=scores, amount=amount)

    layers: list[dict[str, Any]] = []  # name, shape, size, pruned, zero_after
    for m, n in params:
        mask = getattr(m, n + "_mask")
        layers.append(
            {
                "name": f"{names.get(id(m), type(m).__name__)}.{n}",
                "shape": list(mask.shape),
                "size": int(mask.numel()),
                "pruned": int((mask == 0).sum()),
            }
        )

    finetune_summary = None
    if finetune is not None:
        if train_batches is None:
            raise ValueError("fine-tuning needs train_batches")
        from engine.train import fit

        # torch's mask hook only fires when the pruned module itself is called;
        # ncps's wired cells use ff1.weight through F.linear, so refresh every
        # masked weight at the start of each model forward.
        def refresh(_module, _args):
            for m, n in params:
                setattr(m, n, getattr(m, n + "_orig") * getattr(m, n + "_mask"))

        hook = model.register_forward_pre_hook(refresh)
        try:
            result = fit(model, train_batches, val_batches, finetune, reporter, workdir, resume=resume, loss_fn=loss_fn)
        finally:
            hook.remove()
        finetune_summary = {
            "status": result.status,
            "steps": result.step,
            "final_train_loss": result.final_train_loss,
            "best_val_loss": result.best_val_loss,
            "history": result.history,
        }

    for m, n in params:
        tprune.remove(m, n)
    for layer, (m, n) in zip(layers, params):
        layer["zero_after"] = int((getattr(m, n).detach() == 0).sum())
    pruned = sum(layer["pruned"] for layer in layers)
    return {
        "method": "global L1 (magnitude) unstructured",
        "amount": amount,
        "candidates": total,
        "pruned": pruned,
        "fraction": pruned / total,
        "zero_before": zero_before,
        "zero_after": sum(layer["zero_after"] for layer in layers),
        "layers": layers,
        "finetune": finetune_summary,
    }
