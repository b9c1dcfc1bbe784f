"""Heavy steps of the ``stimulus`` analysis: the connectome steps in the additive-input setting."""

from __future__ import annotations

from typing import Any

from engine.analyses.connectome import steps as connectome_steps
from engine.analyses.connectome import truth as connectome_truth
from engine.analyses.base import StepContext


def generate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    return connectome_steps.generate(ctx, p, "additive")


def evaluate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    return connectome_steps.evaluate(ctx, p)


def truth(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    out = connectome_truth.truth(ctx, {**p, "table": p.get("table", "stimulus recovery")})
    if "r2_corrected" not in out:
        raise ValueError("the trained model learned no stimulus: run 'train' with learn_input=true")
    return out
