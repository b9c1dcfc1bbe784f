"""Who may import whom: pyproject.toml's import-linter contracts (issue 20, "layers enforced").

The engine is a stack of layers (errors at the bottom, jobs and seeds at the top, the UI
above it all); a module imports only from layers below its own.  ``lint-imports`` checks
the real tree; the other tests check, on a copy of it, that the contracts would catch what
they are there to catch: an import deferred into a function, a module with no layer, the
engine reaching for the UI, a cycle inside a package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.process import ROOT

pytest.importorskip("importlinter", reason="import-linter is in the test extras")

LINT = "from importlinter.cli import lint_imports_command as main; main()"


def _lint(root: Path) -> subprocess.CompletedProcess:
    # the packages of ``root`` first on the path: a copy is checked, not the installed tree
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", str(root / "pyproject.toml")],
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree_copy(tmp_path) -> Path:
    for pkg in ("engine", "workbench"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_engine_keeps_its_layers_and_never_imports_the_ui():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    for contract in ("engine layers", "the engine never imports the UI", "no import cycles"):
        assert f"{contract} KEPT" in out.stdout, out.stdout[-4000:]


def test_an_upward_import_deferred_into_a_function_is_caught(tree_copy):
    with open(tree_copy / "engine" / "atomic.py", "a") as f:
        f.write("\n\ndef _sneaky():\n    from engine.jobs import runner\n\n    return runner\n")
    out = _lint(tree_copy)
    assert out.returncode == 1
    assert "engine.atomic is not allowed to import engine.jobs" in out.stdout


def test_a_module_with_no_layer_is_caught(tree_copy):
    (tree_copy / "engine" / "newthing.py").write_text('"""A module nobody placed."""\n')
    out = _lint(tree_copy)
    assert out.returncode == 1
    assert "engine.newthing" in out.stdout and "not listed as layers" in out.stdout


def test_the_engine_importing_the_ui_is_caught(tree_copy):
    with open(tree_copy / "engine" / "text.py", "a") as f:
        f.write("\n\ndef _show():\n    import workbench.app\n\n    return workbench.app\n")
    with open(tree_copy / "engine" / "views.py", "a") as f:
        f.write("\n\ndef _draw():\n    from rich.text import Text\n\n    return Text\n")
    out = _lint(tree_copy)
    assert out.returncode == 1
    assert "engine is not allowed to import workbench" in out.stdout
    assert "engine.text -> workbench.app" in out.stdout
    assert "engine is not allowed to import rich" in out.stdout and "engine.views -> rich" in out.stdout


def test_a_cycle_inside_a_package_is_caught(tree_copy):
    jobs = tree_copy / "engine" / "jobs"
    (jobs / "ping.py").write_text("def ping():\n    from engine.jobs import pong\n\n    return pong\n")
    (jobs / "pong.py").write_text("from engine.jobs import ping\n")
    out = _lint(tree_copy)
    assert out.returncode == 1
    assert "No cycles are allowed in engine.jobs" in out.stdout
