"""Jobs outlive the terminal: detach, hang-ups, cancel, kills, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.jobs import runner
from engine.session import Session
from tests.helpers.process import ROOT, cli, wait_for


def _state(session: Session, job_id: str) -> str:
    return session.job(job_id).state


def test_run_in_process_records_events_and_result(session):
    job_id = runner.submit(session, "fake", ["count", "table"], {"n": 6, "sleep": 0.0})
    job = runner.run_job(session, job_id)
    assert job.state == "finished"
    assert job.result == {"counted": 6, "resumed_from": 0, "rows": 2}
    kinds = [e.kind for e in session.events(job_id)]
    assert kinds[0] == "step" and kinds[-1] == "finished"
    losses = [e.payload["value"] for e in session.events(job_id, kinds=("metric",))]
    assert losses == pytest.approx([1 / i for i in range(1, 7)])
    counting = [e.payload for e in session.events(job_id, kinds=("progress",)) if e.payload.get("step") == "count"]
    assert counting[-1]["done"] == 6  # the last progress is never throttled away
    assert session.tables("fake table")[-1]["job_id"] == job_id


def test_failing_step_records_one_clear_line(session):
    job_id = runner.submit(session, "fake", ["fail"])
    job = runner.run_job(session, job_id)
    assert job.state == "failed"
    assert job.error == "ValueError: the data has NaN in column 3"
    assert session.events(job_id)[-1].kind == "failed"


def test_detached_job_survives_the_death_of_its_launcher(session_root):
    # the launcher is a shell in its own process group that stays alive after the CLI returns
    shell = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "run", "fake", "--step", "count", "--session", "s1",
         "--set", "n=30", "--set", "sleep=0.05", "--detach"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    t0 = time.monotonic()
    job_id = shell.stdout.readline().strip()
    assert time.monotonic() - t0 < 2.0, "--detach must return the job id within 2 s"
    os.killpg(shell.pid, signal.SIGKILL)  # kill the launching process group
    shell.wait(5)
    s = Session.open("s1", session_root, create=False)
    wait_for(lambda: _state(s, job_id) == "finished", timeout=30, what="detached job to finish")
    out = cli("jobs", "--session", "s1", check=True).stdout
    assert job_id in out and "finished" in out


def test_worker_ignores_sighup_and_cancel_stops_at_a_safe_point(session):
    job_id = runner.start(session, "fake", ["count"], {"n": 400, "sleep": 0.02})
    wait_for(lambda: (session.latest_progress(job_id) or {}).get("done", 0) > 3, what="progress")
    pid = session.job(job_id).pid
    os.kill(pid, signal.SIGHUP)  # the terminal hung up
    time.sleep(0.3)
    assert _state(session, job_id) == "running"
    assert runner.cancel(session, job_id)
    wait_for(lambda: _state(session, job_id) == "cancelled", timeout=15, what="cancel")
    saved = json.loads((session.job_dir(job_id) / "count.json").read_text())["i"]
    assert 3 < saved < 400  # it checkpointed where it stopped


def test_killed_worker_is_interrupted_then_resumes_from_checkpoint(session):
    job_id = runner.start(session, "fake", ["count", "table"], {"n": 60, "sleep": 0.03, "ckpt_every": 5})
    wait_for(lambda: (session.latest_progress(job_id) or {}).get("done", 0) >= 12, what="progress")
    os.kill(session.job(job_id).pid, signal.SIGKILL)
    wait_for(lambda: job_id in runner.reconcile(session) or _state(session, job_id) == "interrupted",
             timeout=10, what="reconcile")
    assert _state(session, job_id) == "interrupted"
    before = len(session.events(job_id, kinds=("metric",)))
    assert before >= 12  # events up to the kill are kept
    new_id = runner.resume(session, job_id)
    wait_for(lambda: _state(session, new_id) in ("finished", "failed"), timeout=30, what="resume")
    new = session.job(new_id)
    assert new.state == "finished", new.error
    assert new.resume_of == job_id and new.steps == ["count", "table"]
    assert new.result["resumed_from"] >= 10  # continued, did not start over
    assert new.result["rows"] == 2


def test_reconcile_leaves_live_jobs_alone(session):
    job_id = runner.start(session, "fake", ["count"], {"n": 100, "sleep": 0.02})
    wait_for(lambda: _state(session, job_id) == "running", what="start")
    assert runner.reconcile(session) == []
    runner.cancel(session, job_id)
    wait_for(lambda: _state(session, job_id) == "cancelled", timeout=15, what="cancel")


def test_bad_input_fails_with_its_line_and_a_bug_with_its_traceback(session, capsys, monkeypatch):
    import tests.fake_analysis as fake
    from engine.data.errors import DataError

    def missing(ctx, p):
        raise DataError("/nonexistent.h5: no such file")

    monkeypatch.setattr(fake, "fail", missing)
    job = runner.run_job(session, session.create_job("fake", ["fail"], {}))
    assert job.state == "failed" and job.error == "DataError: /nonexistent.h5: no such file"
    assert "Traceback" not in capsys.readouterr().err
    monkeypatch.setattr(fake, "fail", lambda ctx, p: 1 / 0)
    job = runner.run_job(session, session.create_job("fake", ["fail"], {}))
    assert job.state == "failed" and "ZeroDivisionError" in job.error
    assert "Traceback" in capsys.readouterr().err
