"""A tiny analysis whose parameters carry ranges: the CLI must refuse bad values before the
first step runs (the first step writes a marker file that must then not exist)."""

from __future__ import annotations

from engine.analyses.base import Analysis, Param, Step, StepContext


def first(ctx: StepContext, p: dict) -> dict:
    (ctx.workdir / "first-ran").write_text("yes")
    return {"ran": True}


def second(ctx: StepContext, p: dict) -> dict:
    return {"iterations": p["iterations"]}


ANALYSIS = Analysis(
    name="ranged", title="ranges",
    steps=(
        Step("first", "tests.ranged_analysis:first", "writes a marker",
             {"trajectories": Param(4, "how many", lo=1)}),
        Step("second", "tests.ranged_analysis:second", "uses the ranged values",
             {"iterations": Param(10, "optimizer steps", lo=1), "lr": Param(0.1, "step size", lo=0, hi=1)}),
    ),
)
