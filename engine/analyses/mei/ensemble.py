"""The mei analysis's model files: one CNN or an ensemble of them (issue 18).

An ensemble is N CNNs trained alike from different seeds; its prediction is the mean
of the members' rates, as sinzlab/mei's ``EnsembleModel``, so the MEI climbs the
mean response and no single model's quirks (a feature it alone extrapolates) decide
the image.  Every member is a self-describing model file
(:func:`engine.train.model_file.save_model`, written atomically): the first,
``cnn_readout.pt``, holds in ``extra`` what the model was trained on and the list of
member files, so that one file decides what a later step loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

MODEL = "cnn_readout.pt"


class Ensemble(nn.Module):
    """Mean of the members' outputs: ``forward(x) = mean_k member_k(x)``."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


def member_file(k: int) -> str:
    return MODEL if k == 0 else f"cnn_readout_{k}.pt"


def save_members(workdir: Path, models: list[nn.Module], info: dict[str, Any]) -> list[str]:
    """Members 1..N-1 first, then member 0 with ``info`` and the member list (the file
    a reader opens first is written last, so it never names a member not yet there)."""
    from engine.train.model_file import save_model

    names = [member_file(k) for k in range(len(models))]
    for k in range(1, len(models)):
        save_model(models[k], Path(workdir) / names[k], extra={"member": k})
    save_model(models[0], Path(workdir) / names[0], extra={**info, "members": names})
    return names


def load_members(workdir: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The saved model (an :class:`Ensemble` when there are several members), in eval
    mode, and the ``info`` saved with it."""
    from engine.errors import TrainingError
    from engine.models.cnn_readout import CnnReadout
    from engine.train.model_file import load_model

    first, info = load_model(Path(workdir) / MODEL, expect=CnnReadout)
    names = info.get("members") or [MODEL]
    # the member files are named by their index, never by the file: a path in it is refused
    if names != [member_file(k) for k in range(len(names))]:
        raise TrainingError(f"{MODEL}: its member list is not the ensemble's own files")
    if len(names) == 1:
        return first.eval(), info
    members = [first] + [load_model(Path(workdir) / name, expect=CnnReadout)[0] for name in names[1:]]
    return Ensemble(members).eval(), info
