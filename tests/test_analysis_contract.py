"""Every analysis keeps the plug-in contract; the README's "Write your own analysis" runs."""

from __future__ import annotations

import json
import re
import sys
from types import SimpleNamespace

import pytest

import engine.analyses as analyses
from engine.analyses.base import Analysis, Param
from tests.helpers.process import ROOT, cli

BUILTIN = ("demo", "lds", "mei", "retina", "connectome", "stimulus")


def test_builtins_are_found_by_scanning_the_package():
    found = analyses._builtin()
    assert list(found)[: len(BUILTIN)] == list(BUILTIN)
    # each is a folder with its declaration and steps
    for name in BUILTIN:
        assert (ROOT / "engine" / "analyses" / name / "__init__.py").is_file()
        assert (ROOT / "engine" / "analyses" / name / "steps.py").is_file()


@pytest.mark.parametrize("name", BUILTIN)
def test_every_step_and_view_resolves_and_every_parameter_says_what_it_is(name):
    analysis = analyses.get(name)
    assert isinstance(analysis, Analysis) and analysis.name == name
    for step in analysis.steps:
        assert callable(step.load()), step.func
        for key, spec in step.defaults.items():
            assert isinstance(spec, Param) and spec.help.strip(), f"{name}.{step.name}.{key} has no help"
            if spec.choices is not None:
                assert spec.default in spec.choices, f"{name}.{step.name}.{key}: default not among its choices"
    for view in analysis.views:
        assert callable(view.load()), view.func


def test_entry_point_plugins_are_found_but_never_replace_a_builtin(monkeypatch):
    eps = [SimpleNamespace(name="rates", value="mylab_rates"), SimpleNamespace(name="demo", value="evil:ANALYSIS")]
    monkeypatch.setattr(analyses, "entry_points", lambda group: eps if group == analyses.ENTRY_POINT_GROUP else [])
    monkeypatch.setenv("WORKBENCH_ANALYSES", "")
    found = analyses._discover()
    assert found["rates"] == "mylab_rates"
    assert found["demo"] == "engine.analyses.demo"
    assert list(found)[: len(BUILTIN)] == list(BUILTIN)


def test_a_module_without_an_analysis_is_refused_in_one_line(monkeypatch, tmp_path):
    (tmp_path / "not_an_analysis.py").write_text("ANALYSIS = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(analyses._MODULES, "bad", "not_an_analysis")
    with pytest.raises(analyses.ParamError, match="not an Analysis"):
        analyses.get("bad")


def _readme_example() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Write your own analysis", 1)[1].split("\n## ", 1)[0]
    files = {}
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.S):
        first, _, body = block.partition("\n")
        files[first.removeprefix("# ").strip()] = body
    return files


def test_the_readme_example_runs_headless(session_root, tmp_path, monkeypatch):
    files = _readme_example()
    assert set(files) == {"mylab_rates/__init__.py", "mylab_rates/steps.py"}
    for rel, body in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    monkeypatch.setenv("WORKBENCH_ANALYSES", "rates=mylab_rates")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{ROOT}")
    out = cli("run", "rates", "--session", "plug", "--set", "neurons=50", "--json", check=True)
    result = json.loads(out.stdout)
    assert result["mean_rate"] == pytest.approx(3.0, abs=0.1)  # Poisson(3) counts, 10,000 of them
    bad = cli("run", "rates", "--session", "plug", "--set", "neurons=0")
    assert bad.returncode == 2 and "neurons" in bad.stderr and "Traceback" not in bad.stderr
    assert "mylab_rates" not in sys.modules  # the test process itself imported nothing of it
