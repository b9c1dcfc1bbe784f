"""The type check is part of the one test command: mypy over engine/ with the project's
settings ([tool.mypy] in pyproject.toml: Python 3.10, the floor of requires-python)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.process import ROOT


def test_engine_is_type_clean():
    # the incremental cache (.mypy_cache) makes a rerun after a small edit take seconds;
    # a cold check of engine/ takes about a minute on two busy cores
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout + proc.stderr
