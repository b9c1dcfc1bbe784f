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


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5") == [3, 4, 5] and parse_seeds(" 7 ") == [7]
    for bad in ("", "a,b", "1,1"):
        with pytest.raises(ParamError, match="--seeds"):
            parse_seeds(bad)


def test_gather_mean_and_std_rows():
    t = gather([0, 1, 2], [{"a": 1.0, "b": 2, "s": "x"}, {"a": 2.0, "b": 4, "s": "y"}, {"a": 3.0, "b": 6, "s": "z"}])
    assert list(t.columns) == ["a", "b"] and list(t.index) == ["seed 0", "seed 1", "seed 2", "mean", "std"]
    assert t.loc["mean", "a"] == pytest.approx(2.0) and t.loc["std", "a"] == pytest.approx(1.0)
    assert t.loc["std", "b"] == pytest.approx(2.0)
    one = gather([5], [{"a": 1.0}])
    assert one.loc["mean", "a"] == 1.0 and np.isnan(one.loc["std", "a"])


def test_over_seeds_runs_each_seed_in_its_folder_and_saves_the_table(tmp_path, seeded):
    with Session(tmp_path / "s") as session:
        res = over_seeds("seeded", [0, 1, 3], {"offset": 0.5}, session=session)
        saved = session.tables("seeded over seeds")
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
    assert rc == 0 and out["seeds"] == [0, 1, 2]
    assert out["summary"]["value"] == {"mean": pytest.approx(2.0), "std": pytest.approx(2.0)}
    assert main(["--root", str(tmp_path), "run", "seeded", "--seeds", "x"]) != 0
    assert "--seeds" in capsys.readouterr().err
