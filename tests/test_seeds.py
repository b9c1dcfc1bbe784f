"""engine.seeds: one analysis over several seeds, a row per seed and mean/std rows (issue 18)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import analyses
from engine.analyses.base import ParamError
from engine.seeds import gather, over_seeds, parse_seeds
from engine.session import Session


@pytest.fixture
def seeded(monkeypatch):
    monkeypatch.setitem(analyses._MODULES, "seeded", "tests.seeded_analysis")


@pytest.fixture
def pipeline(monkeypatch):
    monkeypatch.setitem(analyses._MODULES, "pipeline", "tests.seeded_pipeline")


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5") == [3, 4, 5] and parse_seeds(" 7 ") == [7]
    for bad in ("", "a,b", "1,1"):
        with pytest.raises(ParamError, match="--seeds"):
            parse_seeds(bad)


def test_gather_mean_and_std_rows():
    t = gather([0, 1, 2], [{"a": 1.0, "b": 2, "s": "x"}, {"a": 2.0, "b": 4, "s": "y"}, {"a": 3.0, "b": 6, "s": "z"}])
    assert list(t.columns) == ["a", "b"] and list(t.index) == ["seed 0", "seed 1", "seed 2", "mean", "std", "n finite"]
    assert t.loc["mean", "a"] == pytest.approx(2.0) and t.loc["std", "a"] == pytest.approx(1.0)
    assert t.loc["std", "b"] == pytest.approx(2.0)
    one = gather([5], [{"a": 1.0}])
    assert one.loc["mean", "a"] == 1.0 and np.isnan(one.loc["std", "a"])
    # a diverged seed is counted out, not averaged in
    nan = gather([0, 1, 2], [{"a": 1.0}, {"a": float("nan")}, {"a": 3.0}])
    assert nan.loc["mean", "a"] == 2.0 and nan.loc["n finite", "a"] == 2


def test_over_seeds_runs_each_seed_in_its_folder_and_saves_the_table(tmp_path, seeded):
    with Session(tmp_path / "s") as session:
        res = over_seeds("seeded", [0, 1, 3], {"offset": 0.5}, session=session)
        saved = session.tables("seeded per seed (in-process)")
    assert [r["value"] for r in res.results] == [0.5, 2.5, 6.5]
    assert res.summary()["value"]["mean"] == pytest.approx(3.1666, abs=1e-3)
    assert res.summary()["count"]["std"] == pytest.approx(np.std([0, 1, 9], ddof=1))
    assert "label" not in res.table.columns and len(saved) == 1
    seen = sorted((tmp_path / "s").rglob("seen.txt"))
    assert [p.read_text() for p in seen] == ["0", "1", "3"] and len({p.parent for p in seen}) == 3
    with pytest.raises(ParamError, match="--seeds"):
        over_seeds("seeded", [0], {"seed": 1}, workdir=tmp_path / "w")
    with pytest.raises(ParamError, match="offset|unknown"):
        over_seeds("seeded", [0], {"nope": 1}, workdir=tmp_path / "w")


def test_cli_run_seeds(tmp_path, seeded, capsys):
    from workbench.cli import main

    rc = main(["--root", str(tmp_path), "run", "seeded", "--seeds", "0-2", "--set", "offset=0", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and out["seeds"] == [0, 1, 2] and set(out["states"].values()) == {"finished"}
    value = out["summary"]["result · value"]  # each seed a job: the same figures as `seeds`
    assert (value["mean"], value["std"], value["n"]) == (pytest.approx(2.0), pytest.approx(2.0), 3)
    assert main(["--root", str(tmp_path), "run", "seeded", "--seeds", "x"]) != 0
    assert "--seeds" in capsys.readouterr().err
    assert main(["--root", str(tmp_path), "run", "seeded", "--seeds", "0", "--from", "j"]) == 2
    assert "--from does not go with --seeds" in capsys.readouterr().err


def test_cli_seeds_three_seeds_one_failed_one_diverged(tmp_path, pipeline, capsys):
    from engine.session import Session
    from workbench.cli import main

    root = ["--root", str(tmp_path), "--session", "s"]
    rc = main([*root, "seeds", "pipeline", "--seeds", "0-2", "--set", "fail_at=1", "--set", "nan_at=2"])
    captured = capsys.readouterr()
    assert rc == 1  # not every seed finished
    # progress on stderr: each seed named with its job; an ETA once a seed has finished
    assert "seed 1/3 (seed=0)" in captured.err and "seed 3/3 (seed=2)" in captured.err
    assert "ETA" in captured.err.split("seed 2/3")[1].splitlines()[0]
    out = captured.out
    assert "2/3 seeds finished, 1 failed" in out and "seed 1: ValueError: seed 1 cannot be fitted" in out
    line = next(x for x in out.splitlines() if x.startswith("pipeline scores · fit · mae"))
    assert line.split("mae", 1)[1].split() == ["0.1", "n=1", "1", "NaN/inf"]
    corr = next(x for x in out.splitlines() if x.startswith("pipeline scores · fit · corr"))
    assert "0.2 ± 0.28" in corr and "(0–0.4)" in corr and "n=2" in corr
    with Session(tmp_path / "s", create=False) as s:
        jobs = s.jobs()
        saved = s.tables("pipeline over seeds")[-1]["frame"]
    assert sorted(j.params["seed"] for j in jobs) == [0, 1, 2]  # each seed its own job
    assert sorted(j.state for j in jobs) == ["failed", "finished", "finished"]
    assert saved.loc["pipeline scores · fit · corr", "mean"] == pytest.approx(0.2)
    assert saved.loc["pipeline scores · zeros · mae", "role"] == "baseline"
    assert list(saved["failed"].unique()) == [1]
    assert main([*root, "seeds", "pipeline", "--seeds", "2,3", "--set", "nan_at=2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert out["per_seed"]["pipeline scores · fit · mae"] == {"2": None, "3": pytest.approx(0.4)}
    assert out["summary"]["pipeline scores · fit · mae"]["std"] is None  # one finite value
    assert main([*root, "seeds", "pipeline", "--seeds", "0", "--set", "seed=3"]) == 2
    assert "not --set seed=" in capsys.readouterr().err


# -- seeds as jobs: engine.seed_table / engine.seed_sweep ------------------------------
def _frame(mae, corr, zeros_mae):
    import pandas as pd

    return pd.DataFrame({"role": ["model", "baseline"], "mae": [mae, zeros_mae], "mae:c0": [9.0, 9.0],
                         "corr": [corr, float("nan")], "best": [True, False]}, index=["CfC", "zeros"])


def test_summarize_by_hand_with_a_diverged_and_a_failed_seed():
    from engine.seed_table import SeedRun, summarize

    runs = [SeedRun(0, "j0", "finished", result={"loss": 1.0, "ok": True}, tables={"t": _frame(0.1, 0.5, 0.2)}),
            SeedRun(1, "j1", "finished", result={"loss": 3.0}, tables={"t": _frame(0.3, 0.7, 0.2)}),
            SeedRun(2, "j2", "finished", result={"loss": float("nan")}, tables={"t": _frame(0.2, float("inf"), 0.2)}),
            SeedRun(3, "j3", "failed", error="ValueError: boom"),
            SeedRun(4, None, "pending")]
    s = summarize(runs)
    assert (s.finished, s.failed, s.waiting, s.errors) == (3, 1, 1, {3: "ValueError: boom"})
    figs = {f.label: f for f in s.figures}
    # per-cell columns and marks are no figures; bools are no numbers; table rows before results
    assert list(figs) == ["t · CfC · mae", "t · CfC · corr", "t · zeros · mae", "t · zeros · corr", "result · loss"]
    mae = figs["t · CfC · mae"]
    assert (mae.n, mae.nonfinite, mae.role) == (3, 0, "model")
    assert mae.mean == pytest.approx(0.2) and mae.std == pytest.approx(0.1)
    assert (mae.min, mae.max) == (0.1, 0.3) and mae.values == {0: 0.1, 1: 0.3, 2: 0.2}
    corr = figs["t · CfC · corr"]  # the inf of seed 2 is counted, never averaged in
    assert (corr.n, corr.nonfinite) == (2, 1) and corr.mean == pytest.approx(0.6)
    assert corr.std == pytest.approx(np.std([0.5, 0.7], ddof=1))
    zc = figs["t · zeros · corr"]  # a baseline without a correlation: no value at all
    assert (zc.n, zc.nonfinite, zc.role) == (0, 3, "baseline") and np.isnan(zc.mean)
    assert figs["t · zeros · mae"].std == 0.0
    loss = figs["result · loss"]
    assert (loss.n, loss.nonfinite, loss.mean, loss.role) == (2, 1, 2.0, None)
    frame = s.to_frame()
    assert list(frame.columns[:8]) == ["role", "mean", "std", "min", "max", "n", "nonfinite", "failed"]
    assert list(frame.columns[8:]) == ["seed 0", "seed 1", "seed 2", "seed 3", "seed 4"]
    assert frame.loc["t · CfC · mae", "failed"] == 1 and np.isnan(frame.loc["t · CfC · mae", "seed 3"])


def test_sweep_runs_each_seed_as_a_job_and_saves_the_table(session, seeded):
    from engine import seed_sweep

    sweep = seed_sweep.create(session, "seeded", [0, 1, 3], {"offset": 0.5})
    told = []
    result = seed_sweep.run_here(session, sweep, on_seed=lambda i, s, j, eta: told.append((i, s, eta)))
    jobs = {j.id: j for j in session.jobs()}
    assert [jobs[sweep.jobs[s]].params["seed"] for s in (0, 1, 3)] == [0, 1, 3]
    assert all(j.state == "finished" for j in jobs.values()) and len(jobs) == 3
    assert [t[:2] for t in told] == [(0, 0), (1, 1), (2, 3)] and told[0][2] is None and told[2][2] > 0
    value = {f.label: f for f in result.figures}["result · value"]
    assert value.values == {0: 0.5, 1: 2.5, 3: 6.5} and value.mean == pytest.approx(9.5 / 3)
    saved = session.tables("seeded over seeds")[-1]["frame"]
    assert saved.loc["result · count", "std"] == pytest.approx(np.std([0, 1, 9], ddof=1))
    assert seed_sweep.load(session, sweep.id).jobs == sweep.jobs  # the record survives a restart
    with pytest.raises(ParamError, match="--seeds"):
        seed_sweep.create(session, "seeded", [0], {"seed": 1})
    with pytest.raises(ParamError, match="no seed parameter"):
        seed_sweep.create(session, "fake", [0])


def test_a_part_way_sweep_takes_each_seeds_own_inputs(session, pipeline):
    from engine import seed_sweep

    with pytest.raises(ParamError, match="seed 0: no earlier pipeline job with seed=0 and these settings made make"):
        seed_sweep.create(session, "pipeline", [0], steps=["score"])
    seed_sweep.run_here(session, seed_sweep.create(session, "pipeline", [2, 1], steps=["make"]))
    # newest job first would be seed 1's: each seed must still read its own data
    again = seed_sweep.run_here(session, seed_sweep.create(session, "pipeline", [2, 1], steps=["score"]))
    data = {f.label: f for f in again.figures}["result · data_seed"]
    assert data.values == {2: 2.0, 1: 1.0}


def test_cli_seeds_detach_runs_on_without_the_terminal(tmp_path, pipeline, monkeypatch, capsys):
    import time

    from engine.session import Session
    from workbench.cli import main

    # the driver and the workers are new processes: they find the analysis by the variable
    monkeypatch.setenv("WORKBENCH_ANALYSES", "fake=tests.fake_analysis,pipeline=tests.seeded_pipeline")
    rc = main(["--root", str(tmp_path), "--session", "s", "seeds", "pipeline", "--seeds", "0,1",
               "--detach", "--at-once", "2"])
    sweep_id = capsys.readouterr().out.strip()
    assert rc == 0 and sweep_id.startswith("pipeline-")
    deadline = time.time() + 60
    with Session(tmp_path / "s", create=False) as s:
        while not s.tables("pipeline over seeds") and time.time() < deadline:
            time.sleep(0.3)
        frame = s.tables("pipeline over seeds")[-1]["frame"]
        assert sorted(j.params["seed"] for j in s.jobs()) == [0, 1]
    assert frame.loc["pipeline scores · fit · mae", "mean"] == pytest.approx(0.15)
    assert list(frame.loc["pipeline scores · fit · mae", ["n", "failed"]]) == [2, 0]


# each built-in analysis, at a small size: seed= regenerates its data (another seed, other
# bytes; the same seed, the same bytes), so a sweep's spread is over data sets, not re-reads
SMALL = {"demo": {"trajectories": 4, "timesteps": 50},
         "lds": {"trials": 4, "neurons": 20, "steps": 30, "latents": 2},
         "mei": {"n_neurons": 4, "n_images": 20, "repeats": 2, "size": 8},
         "retina": {"cells": 2, "frames": 600, "test_frames": 200, "blocks": 1, "repeats": 1},
         "connectome": {"n_neurons": 8, "n_frames": 60, "n_runs": 1, "grid": 2},
         "stimulus": {"n_neurons": 8, "n_frames": 60, "n_runs": 1, "grid": 2}}


@pytest.mark.parametrize("name", list(SMALL))
def test_seed_regenerates_every_analysis_data(name, tmp_path):
    import hashlib

    from engine.analyses.base import StepContext
    from engine.jobs.runner import plan

    spec = analyses.get(name)
    first = spec.steps[0].name
    assert "seed" in spec.params([first])  # the step that makes the data takes the seed

    def data_digest(seed: int, folder: str) -> str:
        _, params = plan(name, [first], {**SMALL[name], "seed": seed})
        workdir = tmp_path / folder
        spec.step(first).load()(StepContext(workdir=workdir), params)
        h = hashlib.sha256()
        for p in sorted(workdir.rglob("*")):
            if p.is_file() and p.suffix != ".json":  # settings stamps name the seed anyway
                h.update(p.read_bytes())
        return h.hexdigest()

    a, b, again = data_digest(0, "a"), data_digest(1, "b"), data_digest(0, "c")
    assert a != b and a == again


def test_a_resumed_seed_counts_and_a_cancelled_one_stops_the_sweep(session, pipeline):
    import subprocess

    from engine import seed_sweep
    from engine.jobs import runner

    sweep = seed_sweep.create(session, "pipeline", [0, 1, 2])
    _, first = seed_sweep.submit_next(session, sweep)
    session.finish_job(first, "interrupted")  # its worker was killed; the jobs screen resumes it
    job = session.job(first)
    again = session.create_job("pipeline", job.steps, job.params, resume_of=first)
    runner.run_job(session, again)
    assert seed_sweep.summary(session, sweep).states[0] == "finished"
    _, second = seed_sweep.submit_next(session, sweep)
    session.finish_job(second, "cancelled")  # the user cancelled seed 1: seed 2 never starts
    result = seed_sweep.drive(session, sweep, poll_s=0.01)
    assert result.states == {0: "finished", 1: "cancelled", 2: "pending"} and result.failed == 1
    assert session.tables("pipeline over seeds")[-1]["frame"].loc["pipeline scores · fit · mae", "n"] == 1
    # a driver that is gone with seeds not started is said, one that never was is not
    assert not seed_sweep.driver_gone(sweep)
    dead = subprocess.Popen(["true"])
    dead.wait()
    sweep.driver = [dead.pid, None, None]
    assert seed_sweep.driver_gone(sweep)


def test_a_sweep_keeps_its_settings_and_takes_only_inputs_made_with_them(session, pipeline):
    from engine import seed_sweep

    seed_sweep.run_here(session, seed_sweep.create(session, "pipeline", [1, 2], {"scale": 3}, steps=["make"]))
    # a part-way sweep asking for other settings than the inputs were made with is refused
    with pytest.raises(ParamError, match="seed 1: no earlier pipeline job with seed=1 and these settings"):
        seed_sweep.create(session, "pipeline", [1, 2], {"scale": 2}, steps=["score"])
    sweep = seed_sweep.create(session, "pipeline", [1, 2], {"scale": 3}, steps=["score"])
    # a value saved for the session (the Run form) while the sweep runs does not reach its later seeds
    session.set_params("pipeline", {"nan_at": 2})
    done = seed_sweep.run_here(session, sweep)
    data = {f.label: f for f in done.figures}["result · data_seed"]
    assert data.values == {1: 3.0, 2: 6.0}
    assert all(session.job(j).params["nan_at"] == -1 for j in sweep.jobs.values())


def test_a_sweep_over_a_recording_is_refused(session, pipeline):
    from engine import seed_sweep

    with pytest.raises(ParamError, match="every seed would read the same file"):
        seed_sweep.create(session, "pipeline", [0, 1], {"data": "rec.nwb"})


def test_a_resumed_seed_keeps_what_its_first_job_made_and_a_resumed_cancel_does_not_stop(session, pipeline):
    from engine import seed_sweep
    from engine.jobs import runner

    sweep = seed_sweep.create(session, "pipeline", [0, 1, 2])
    _, first = seed_sweep.submit_next(session, sweep)
    runner.run_job(session, first)  # made and scored: its table is the first job's
    session.finish_job(first, "interrupted")  # as if killed after its last step's table
    job = session.job(first)
    again = session.create_job("pipeline", ["make"], job.params, resume_of=first)  # re-runs what was left
    runner.run_job(session, again)
    result = seed_sweep.summary(session, sweep)
    assert result.states[0] == "finished"
    assert {f.label: f for f in result.figures}["pipeline scores · fit · mae"].values == {0: pytest.approx(0.1)}
    # seed 1 cancelled, then resumed from the jobs screen: the sweep goes on to seed 2
    _, second = seed_sweep.submit_next(session, sweep)
    session.finish_job(second, "cancelled")
    job = session.job(second)
    runner.run_job(session, session.create_job("pipeline", job.steps, job.params, resume_of=second))
    done = seed_sweep.drive(session, sweep, poll_s=0.01)
    # seed 2 was started (its worker, a new process, may not find this test's analysis)
    assert done.states[1] == "finished" and done.states[2] != "pending"
