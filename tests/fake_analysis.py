"""A tiny analysis for testing the job machinery: counts with a checkpoint file."""

from __future__ import annotations

import json
import time

from engine.analyses.base import Analysis, Step, StepContext
from engine.atomic import write_json
from engine.reporting import Cancelled


def count(ctx: StepContext, p: dict) -> dict:
    ckpt = ctx.workdir / "count.json"
    start = json.loads(ckpt.read_text())["i"] if ckpt.exists() else 0
    if start:
        ctx.reporter.log(f"resuming from {start}")
    for i in range(start, p["n"]):
        if ctx.cancelled:
            write_json(ckpt, {"i": i})
            raise Cancelled()
        time.sleep(p["sleep"])
        ctx.reporter.progress(i + 1, p["n"], "counting")
        ctx.reporter.metric("loss", 1.0 / (i + 1), step=i + 1)
        if (i + 1) % p["ckpt_every"] == 0:
            write_json(ckpt, {"i": i + 1})
    return {"counted": p["n"], "resumed_from": start}


def fail(ctx: StepContext, p: dict) -> dict:
    raise ValueError("the data has NaN in column 3\nsecond line of detail")


def table(ctx: StepContext, p: dict) -> dict:
    import pandas as pd

    frame = pd.DataFrame({"mae": [0.1, 0.2], "mae:0": [0.1, 0.3]}, index=["A", "B"])
    ctx.save_table("fake table", frame)
    ctx.save_equations("fake eqs", {"coef": [[0.5, -2.0]], "feature_names": ["1", "x0"],
                                    "state_names": ["x0"], "threshold": 0.1})
    return {"rows": 2}


ANALYSIS = Analysis(
    name="fake",
    title="test analysis",
    steps=(
        Step("count", "tests.fake_analysis:count", "count slowly",
             {"n": 20, "sleep": 0.01, "ckpt_every": 5}),
        Step("table", "tests.fake_analysis:table", "store a table"),
        Step("fail", "tests.fake_analysis:fail", "always fails"),
    ),
)
