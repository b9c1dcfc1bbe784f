"""A three-step analysis for the per-job folder tests: generate -> fit -> evaluate.

``generate`` writes data made from ``value``; ``fit`` checkpoints into ``ctx.checkpoint_dir``,
waits, then reads its checkpoint back and stores equations; ``evaluate`` reads the model
file and the job's equations.  With ``sleep`` > 0 two jobs overlap at every step, so any
file or equation set shared between them shows up as a wrong result.
"""

from __future__ import annotations

import json
import time

from engine.analyses.base import Analysis, Step, StepContext
from engine.atomic import write_json


def generate(ctx: StepContext, p: dict) -> dict:
    write_json(ctx.workdir / "data.json", {"value": p["value"]})
    time.sleep(p["sleep"])
    return {"generated": p["value"]}


def fit(ctx: StepContext, p: dict) -> dict:
    data = json.loads((ctx.workdir / "data.json").read_text())
    ckdir = ctx.checkpoint_dir("fit")
    write_json(ckdir / "step_1.json", {"coef": 10 * data["value"]})
    time.sleep(p["sleep"])  # another job's checkpoint_dir must not wipe this checkpoint meanwhile
    coef = json.loads((ckdir / "step_1.json").read_text())["coef"]
    write_json(ctx.workdir / "model.json", {"coef": coef})
    ctx.save_equations("pipe eqs", {"coef": coef})
    return {"coef": coef}


def evaluate(ctx: StepContext, p: dict) -> dict:
    model = json.loads((ctx.workdir / "model.json").read_text())
    time.sleep(p["sleep"])
    eq = ctx.equations("pipe eqs")
    write_json(ctx.workdir / "report.json", {"model": model["coef"]})
    return {"score": model["coef"], "equation_coef": eq["coef"] if eq else None}


ANALYSIS = Analysis(
    name="pipe",
    title="three steps through files",
    steps=(
        Step("generate", "tests.jobs_pipeline_analysis:generate", "write data", {"value": 1, "sleep": 0.0}),
        Step("fit", "tests.jobs_pipeline_analysis:fit", "fit through a checkpoint"),
        Step("evaluate", "tests.jobs_pipeline_analysis:evaluate", "score the fit"),
    ),
)
