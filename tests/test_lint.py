"""The lint is part of the one test command: ruff with the project's settings (pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.helpers.process import ROOT


def test_ruff_is_clean():
    ruff = shutil.which("ruff")
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    proc = subprocess.run([*cmd, "check", "--no-cache", "engine", "workbench", "tests", "benchmarks"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
