"""Faults, part 5: resources.  A full disk never costs the previous artifact.

Out of disk space is simulated: a write that puts half its bytes down and then raises
``OSError(ENOSPC)``, an ``fsync`` that fails, a ``torch.save`` that fails on a later
checkpoint of a running job, and a session store capped with ``PRAGMA max_page_count`` so
SQLite itself reports "database or disk is full".  (CUDA out-of-memory: see
test_faults_numerics.py.)
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from engine import analyses, atomic
from engine.jobs import runner
from engine.session import SessionError

analyses.register("fault", "tests.fault_analysis")
pytestmark = pytest.mark.timeout(120)


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _half_then_enospc(self, data):
    with open(self, "wb") as fh:
        fh.write(data[: len(data) // 2])
    _enospc()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("fault", ["write", "fsync"])
def test_disk_full_during_an_atomic_write_keeps_the_previous_file(tmp_path, monkeypatch, fault):
    import numpy as np

    target, arrays = tmp_path / "a" / "result.json", tmp_path / "a" / "arrays.npz"
    atomic.write_json(target, {"version": 1})
    atomic.save_npz(arrays, x=np.arange(5))
    if fault == "write":
        monkeypatch.setattr(Path, "write_bytes", _half_then_enospc)
    else:
        monkeypatch.setattr(atomic.os, "fsync", _enospc)
    with pytest.raises(OSError) as info:
        atomic.write_json(target, {"version": 2, "big": list(range(1000))})
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        atomic.save_npz(arrays, x=np.zeros(10_000))
    with pytest.raises(OSError):
        atomic.write_with(target, lambda tmp: _half_then_enospc(tmp, b"x" * 1000))
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"version": 1}
    assert np.load(arrays)["x"].tolist() == [0, 1, 2, 3, 4]
    assert _leftovers(target.parent) == []  # no temp file left to fill the disk further


def test_disk_full_at_a_checkpoint_fails_the_job_and_keeps_the_last_one(session, monkeypatch):
    import torch

    real_save, calls = torch.save, {"n": 0}

    def save(obj, f, *a, **k):  # the third checkpoint finds the disk full half way
        calls["n"] += 1
        if calls["n"] < 3:
            return real_save(obj, f, *a, **k)
        _half_then_enospc(Path(f), b"\0" * 4096)

    monkeypatch.setattr(torch, "save", save)
    job_id = runner.submit(session, "fault", ["train"], {"steps": 20, "ckpt_every": 2})
    job = runner.run_job(session, job_id)
    monkeypatch.undo()
    assert job.state == "failed" and "\n" not in job.error
    assert "No space left on device" in job.error, job.error
    ckdir = session.job_dir(job_id) / "train" / "checkpoints"
    assert sorted(p.name for p in ckdir.glob("step_*.pt")) == ["step_00000002.pt", "step_00000004.pt"]
    assert torch.load(ckdir / "step_00000004.pt", weights_only=True)["step"] == 4
    assert _leftovers(ckdir) == []
    # free space again: the job resumes from step 4 and finishes
    new = runner.run_job(session, session.create_job("fault", ["train"], job.params, resume_of=job_id))
    assert new.state == "finished" and new.result["resumed_from"] == 4 and new.result["step"] == 20


def test_full_session_store_is_a_clear_error_and_loses_nothing(session):
    job = session.create_job("fake", ["count"], {})
    session.add_events(job, [("metric", {"name": "x", "value": i}) for i in range(50)])
    pages = session._conn.execute("PRAGMA page_count").fetchone()[0]
    session._conn.execute(f"PRAGMA max_page_count={pages + 1}")  # the disk is full
    with pytest.raises(SessionError) as info:
        session.add_events(job, [("log", {"message": "x" * 4000}) for _ in range(50)])
    msg = str(info.value)
    assert "\n" not in msg and "full" in msg and "free" in msg, msg
    assert len(session.events(job)) == 50  # the failed transaction left nothing half-written
    assert session._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    session._conn.execute("PRAGMA max_page_count=1073741823")
    session.add_event(job, "log", {"message": "space again"})
    assert session.events(job)[-1].payload["message"] == "space again"
