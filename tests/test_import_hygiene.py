"""The engine never imports the UI; the UI never imports torch before it must."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import engine
from tests.helpers.process import ROOT

UI_MODULES = ("textual", "rich", "plotext", "workbench")


def _engine_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(engine.__path__, "engine."))


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                         check=True, timeout=120).stdout
    return set(out.split())


def test_engine_imports_no_ui_module():
    mods = _engine_modules()
    assert "engine.session" in mods and "engine.jobs.runner" in mods
    loaded = _loaded_after("\n".join(f"import {m}" for m in mods))
    assert not loaded & set(UI_MODULES), sorted(loaded & set(UI_MODULES))


def test_opening_the_app_does_not_import_torch():
    loaded = _loaded_after(
        "import workbench.cli, workbench.app\n"
        "from workbench.panes import datasets, training, equations, results\n"
        "from engine import analyses\n"
        "[analyses.get(n) for n in analyses.names()]"
    )
    assert "textual" in loaded
    assert "torch" not in loaded and "ncps" not in loaded and "pysindy" not in loaded
