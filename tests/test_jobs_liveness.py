"""A job is dead only when its process is gone (pid + start time + host); cancel signals
only its own worker; one bad session blocks no one's cancel (issue 22 #6, #7, #11)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time

import pytest

from engine.jobs import liveness, runner
from engine.session import SCHEMA_VERSION, Session, SessionError
from tests.helpers.process import cli, wait_for


def _state(session: Session, job_id: str) -> str:
    return session.job(job_id).state


@pytest.fixture
def stranger():
    """A live process that is not a worker (it could have been given a dead worker's pid)."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _fake_running(session: Session, pid: int, pid_start: str | None, host: str | None = None) -> str:
    job_id = session.create_job("fake", ["count"], {"n": 1, "sleep": 0.0, "ckpt_every": 1})
    session.start_job(job_id, pid=pid, pid_start=pid_start, host=host or liveness.host(),
                      started=time.time(), heartbeat=time.time())
    return job_id


def test_sigstop_longer_than_the_heartbeat_then_sigcont_keeps_the_job_running(session):
    job_id = runner.start(session, "fake", ["count"], {"n": 60, "sleep": 0.03})
    wait_for(lambda: (session.latest_progress(job_id) or {}).get("done", 0) > 3, what="progress")
    pid = session.job(job_id).pid
    try:
        import os

        os.kill(pid, signal.SIGSTOP)
        # stopped for an hour, as far as the heartbeat can tell (a suspended laptop)
        session.update_job(job_id, heartbeat=time.time() - 3600)
        assert runner.reconcile(session) == []
        assert _state(session, job_id) == "running"
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: _state(session, job_id) != "running", timeout=30, what="the job to end")
    assert _state(session, job_id) == "finished"
    assert [e.kind for e in session.events(job_id)][-1] == "finished"  # one end, never two


def test_end_states_are_final(session):
    job_id = _fake_running(session, pid=None, pid_start=None)
    assert session.finish_job(job_id, "interrupted", error="gone")
    assert not session.finish_job(job_id, "finished")
    assert not session.start_job(job_id, pid=1)
    session.update_job(job_id, state="running", current_step="x")  # a late writer
    job = session.job(job_id)
    assert job.state == "interrupted" and job.error == "gone"
    assert [e.kind for e in session.events(job_id)] == ["interrupted"]


def test_a_reused_pid_is_a_dead_worker_and_cancel_does_not_signal_it(session, stranger):
    job_id = _fake_running(session, stranger.pid, pid_start="0:1")  # the worker that had this pid
    assert not runner.cancel(session, job_id)
    time.sleep(0.2)
    assert stranger.poll() is None  # the stranger was not signalled
    assert _state(session, job_id) == "interrupted"


def test_cancel_refuses_another_hosts_job(session, stranger):
    job_id = _fake_running(session, stranger.pid, liveness.start_time(stranger.pid), host="elsewhere-01")
    with pytest.raises(SessionError, match="runs on host 'elsewhere-01'"):
        runner.cancel(session, job_id)
    assert runner.reconcile(session) == []  # only its own host can judge it
    assert stranger.poll() is None and _state(session, job_id) == "running"


def test_cancel_finds_its_session_past_broken_ones_and_migrates_none(session_root, stranger):
    (session_root / "aaa-corrupt").mkdir()
    (session_root / "aaa-corrupt" / "session.sqlite").write_bytes(b"not a database" * 100)
    Session(session_root / "aaa-future").close()
    with sqlite3.connect(session_root / "aaa-future" / "session.sqlite") as c:
        c.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    old = session_root / "aaa-old"
    Session(old).close()
    with sqlite3.connect(old / "session.sqlite") as c:
        c.execute("PRAGMA user_version=2")  # an older schema: a cancel must not migrate it
    s = Session(session_root / "t")
    job_id = _fake_running(s, stranger.pid, liveness.start_time(stranger.pid))
    s.close()

    proc = cli("--root", str(session_root), "cancel", job_id)
    assert proc.returncode == 0, proc.stderr
    assert "cancel sent" in proc.stdout
    assert stranger.wait(5) == -signal.SIGTERM
    with sqlite3.connect(old / "session.sqlite") as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == 2
    # a job id that names no session is still found by looking (read-only) in each
    assert runner.find_job(session_root, job_id)[0] == "t"
    with pytest.raises(SessionError, match="no job"):
        runner.find_job(session_root, "aaa-old-0101-000000-beef")


def test_a_dead_workers_cause_is_kept_from_its_log(session):
    job_id = _fake_running(session, pid=None, pid_start=None)
    session.update_job(job_id, pid=2**22 - 3, pid_start="0:1")  # no such process
    log = session.artifacts / "logs" / f"{job_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("step 3\nOSError: [Errno 28] No space left on device\n")
    assert runner.reconcile(session) == [job_id]
    assert "No space left on device" in session.job(job_id).error


def test_liveness_knows_this_process(session):
    import os

    me = liveness.start_time(os.getpid())
    assert me and liveness.check(os.getpid(), me, liveness.host()) is liveness.Liveness.ALIVE
    assert liveness.check(os.getpid(), "0:1", liveness.host()) is liveness.Liveness.DEAD


def test_cancelling_a_queued_job_ends_it_and_its_worker_then_runs_nothing(session):
    job_id = session.create_job("fake", ["count"], {"n": 3, "sleep": 0.0, "ckpt_every": 1})
    assert runner.cancel(session, job_id)
    assert _state(session, job_id) == "cancelled"
    job = runner.run_job(session, job_id)  # the worker starts late
    assert job.state == "cancelled"
    assert [e.kind for e in session.events(job_id)] == ["cancelled"]
