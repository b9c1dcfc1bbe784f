"""A tiny analysis with a seed, for engine.seeds: its figures are known functions of the seed."""

from __future__ import annotations

from engine.analyses.base import Analysis, Step, StepContext


def score(ctx: StepContext, p: dict) -> dict:
    (ctx.workdir / "seen.txt").write_text(str(p["seed"]))
    return {"value": 2.0 * p["seed"] + p["offset"], "count": p["seed"] ** 2, "label": "text is not a figure"}


ANALYSIS = Analysis(name="seeded", title="seeded test analysis",
                    steps=(Step("score", "tests.seeded_analysis:score", "", {"seed": 0, "offset": 1.0}),))
