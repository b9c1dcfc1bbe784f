"""A two-step analysis with a seed, for seed sweeps: ``make`` writes the seed's data, ``score``
reads it and saves a table with a model and a baseline row.  ``fail_at`` makes one seed's job
fail; ``nan_at`` makes one seed's fit diverge (NaN)."""

from __future__ import annotations

from engine.analyses.base import Analysis, Param, Step, StepContext


def make(ctx: StepContext, p: dict) -> dict:
    (ctx.workdir / "data.txt").write_text(str(p["seed"] * p["scale"]))
    return {"made": True}


def score(ctx: StepContext, p: dict) -> dict:
    import pandas as pd

    seed = int((ctx.workdir / "data.txt").read_text())  # the data this job's folder holds (seed × scale)
    if seed == p["fail_at"]:
        raise ValueError(f"seed {seed} cannot be fitted")
    mae = float("nan") if seed == p["nan_at"] else 0.1 * (seed + 1)
    frame = pd.DataFrame({"role": ["model", "baseline"], "mae": [mae, 0.5], "corr": [0.2 * seed, 0.0]},
                         index=["fit", "zeros"])
    ctx.save_table("pipeline scores", frame)
    return {"data_seed": seed}


ANALYSIS = Analysis(
    name="pipeline", title="seeded two-step test analysis",
    steps=(Step("make", "tests.seeded_pipeline:make", "write the seed's data",
                {"seed": Param(0, "random seed", 0, 2**32 - 1), "scale": Param(1, "data = seed × scale", 1, 100),
                 "data": Param("", "a recording to read instead (a sweep refuses it)")}),
           Step("score", "tests.seeded_pipeline:score", "score it",
                {"fail_at": Param(-1, "seed whose fit fails", -1, 2**32 - 1),
                 "nan_at": Param(-1, "seed whose fit diverges", -1, 2**32 - 1)})),
)
