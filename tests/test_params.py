"""The typed parameter spec: coercion, ranges, choices, and validation before any step runs."""

from __future__ import annotations

import pytest

from engine.analyses.base import Analysis, Param, ParamError, Step, parse_sets, validate_params

SPEC = Analysis(
    name="toy", title="toy",
    steps=(
        Step("gen", "x:y", defaults={"seed": 0, "trajectories": Param(48, "how many", lo=1)}),
        Step("train", "x:z", defaults={
            "iterations": Param(100, "optimizer steps", lo=1),
            "lr": Param(0.003, "learning rate", lo=0.0, hi=1.0),
            "loss": Param("poisson", choices=("poisson", "mse")),
            "seed": Param(7, "declared again: the first declaration wins"),
        }),
    ),
)


def test_params_merge_first_declaration_wins_and_defaults_stay_plain():
    specs = SPEC.params()
    assert specs["seed"] == Param(0)
    assert specs["iterations"].lo == 1
    assert SPEC.defaults() == {"seed": 0, "trajectories": 48, "iterations": 100, "lr": 0.003, "loss": "poisson"}
    assert set(SPEC.params(["gen"])) == {"seed", "trajectories"}


@pytest.mark.parametrize("pair, message", [
    ("iterations=-5", "iterations: must be ≥ 1, got -5"),
    ("lr=-1", "lr: must be 0 ≤ x ≤ 1, got -1.0"),
    ("trajectories=0", "trajectories: must be ≥ 1, got 0"),
    ("loss=l2", "loss: must be one of poisson, mse, got 'l2'"),
    ("iterations=many", "iterations: expected an integer, got 'many'"),
])
def test_parse_sets_names_the_users_key(pair, message):
    with pytest.raises(ParamError) as info:
        parse_sets([pair], SPEC.params())
    assert str(info.value) == message


def test_parse_sets_coerces_and_accepts_plain_defaults():
    assert parse_sets(["lr=1", "iterations=5"], SPEC.params()) == {"lr": 1.0, "iterations": 5}
    assert parse_sets(["lr=2"], {"lr": 0.1}) == {"lr": 2.0}  # a plain default has no range
    with pytest.raises(ParamError, match="unknown parameter 'lr2'"):
        parse_sets(["lr2=1"], SPEC.params())


def test_validate_params_checks_python_values_and_passes_undeclared_keys():
    out = validate_params(SPEC, {"lr": 1, "iterations": 3.0, "extra": "kept"})
    assert out == {"lr": 1.0, "iterations": 3, "extra": "kept"}
    assert isinstance(out["lr"], float) and isinstance(out["iterations"], int)
    with pytest.raises(ParamError, match=r"^iterations: must be ≥ 1, got 0$"):
        validate_params(SPEC, {"iterations": 0})
    with pytest.raises(ParamError, match=r"^iterations: expected an integer, got 2.5$"):
        validate_params(SPEC, {"iterations": 2.5})
    # only the steps that run are checked
    assert validate_params(SPEC, {"iterations": 0}, steps=["gen"]) == {"iterations": 0}


def test_param_describes_itself_for_the_form():
    assert Param(0.1, lo=0, hi=1).describe() == "0 ≤ x ≤ 1"
    assert Param([1, 2]).kind == "list[int]"
    assert Param([1, 2], lo=0).check("3,4") == [3, 4]
    with pytest.raises(ParamError):
        Param([1, 2], lo=0).check("3,-4")


def test_a_job_with_an_out_of_range_parameter_is_refused_before_it_is_created(tmp_path, monkeypatch):
    from engine import analyses
    from engine.jobs import runner
    from engine.session import Session

    monkeypatch.setattr(analyses, "get", lambda name: SPEC)
    session = Session(tmp_path / "s")
    with pytest.raises(ParamError, match="^iterations: must be ≥ 1, got -5$"):
        runner.submit(session, "toy", overrides={"iterations": -5})
    assert session.jobs() == []
