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


# -- a real full disk (issue 22 #13): a small tmpfs, filled ------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs: a real filesystem that really fills (needs root to mount)."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def _fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` up to ``leave`` free bytes (as close as its blocks allow)."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    with open(filler, "ab") as fh:
        try:
            fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
            fh.flush()
        except OSError:
            pass
    return filler


def test_real_full_disk_during_data_gen_is_one_line(small_disk):
    from tests.helpers.process import cli

    _fill(small_disk, leave=200 * 1024)
    proc = cli("data", "gen", "retina", str(small_disk / "r.h5"), "--frames", "600")
    assert proc.returncode == 2, proc.stderr  # not 139: HDF5 never meets the full disk
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and "needs about" in lines[0]
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_real_full_disk_during_training_fails_the_job_with_the_cause(small_disk, capsys):
    from engine.session import Session

    s = Session(small_disk / "full")
    job_id = runner.submit(s, "fault", ["train"], {"steps": 30, "width": 96, "ckpt_every": 1})
    _fill(small_disk, leave=600 * 1024)  # the job sets 256 KiB aside; checkpoints fill the rest
    job = runner.run_job(s, job_id)
    assert job.state == "failed", job.error
    assert "No space left on device" in job.error and "\n" not in job.error
    assert "No space left on device" in capsys.readouterr().err  # the job's log has it too
    ckdir = s.job_dir(job_id) / "train" / "checkpoints"
    assert _leftovers(ckdir) == []
    (small_disk / "filler").unlink()
    new = runner.run_job(s, s.create_job("fault", ["train"], job.params, resume_of=job_id))
    assert new.state == "finished" and new.result["resumed_from"] >= 1
    s.close()


def test_real_full_disk_during_an_event_write_is_recorded_and_jobs_still_lists(small_disk):
    from engine.jobs import liveness
    from engine.session import Session
    from tests.helpers.process import cli, wait_for

    s = Session(small_disk / "full")
    job_id = runner.submit(s, "fake", ["count"], {"n": 100_000, "sleep": 0.0005, "ckpt_every": 10**9})
    pid = runner.launch(s, job_id)
    wait_for(lambda: s.job(job_id).state == "running", what="start")
    _fill(small_disk)  # the store fills at the next events
    wait_for(lambda: liveness.start_time(pid) is None, timeout=60, what="the worker to end")
    proc = cli("--root", str(small_disk), "jobs", "--session", "full")
    assert proc.returncode == 0 and job_id in proc.stdout, proc.stderr  # the disk is still full
    job = s.job(job_id)
    assert job.state == "failed" and "No space left on device" in job.error, (job.state, job.error)
    log = (s.artifacts / "logs" / f"{job_id}.log").read_text()
    assert "No space left on device" in log
    s.close()
