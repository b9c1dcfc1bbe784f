"""Shared fixtures.  Every test gets its own session root; nothing touches ./sessions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.process import ROOT

os.environ.setdefault("WORKBENCH_ANALYSES", "fake=tests.fake_analysis")
os.environ["WORKBENCH_ANALYSES"] = "fake=tests.fake_analysis"
# One compute thread in the tests and in the workers they start: CI is 2 busy cores, where
# torch's second thread only spins (a small connectome run: 13.7 s on one thread, 243 s on two
# under load).  The tests check behaviour, not multi-thread speed; benchmarks measure that.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    import torch  # OMP_NUM_THREADS is read at torch's first import; be explicit all the same

    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True)
def session_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "sessions"
    root.mkdir()
    monkeypatch.setenv("WORKBENCH_SESSIONS", str(root))
    monkeypatch.setenv("WORKBENCH_ANALYSES", "fake=tests.fake_analysis")
    # the user's own parallel settings and signing key (engine.parallel): never the real ones
    monkeypatch.setenv("WORKBENCH_PARALLEL_CONFIG", str(tmp_path / "user-config" / "parallel.toml"))
    for var in ("WORKBENCH_DASK_ADDRESS", "WORKBENCH_RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return root


@pytest.fixture
def session(session_root):
    from engine.session import Session

    s = Session.open("t", session_root)
    yield s
    s.close()
