"""Each job works in its own folder; a part-way job takes its inputs from an earlier job.

Issue 22 #5: two jobs of one analysis shared ``artifacts/<analysis>/``; ``fresh_dir`` wiped
the other's checkpoints and ``evaluate`` read whichever equations were newest.
"""

from __future__ import annotations

import json
import threading

import pytest

from engine import analyses
from engine.jobs import folders, runner
from engine.session import Session


@pytest.fixture(autouse=True)
def _pipe():
    analyses.register("pipe", "tests.jobs_pipeline_analysis")


def _run_in_thread(root, value: float, out: dict) -> threading.Thread:
    def body():
        s = Session(root / "t", create=False)  # a job's own connection, as a worker has
        try:
            job_id = runner.submit(s, "pipe", None, {"value": value, "sleep": 0.3})
            out[value] = runner.run_job(s, job_id)
        finally:
            s.close()

    return threading.Thread(target=body)


def test_two_concurrent_jobs_of_one_analysis_keep_their_own_results(session, session_root):
    out: dict = {}
    threads = [_run_in_thread(session_root, v, out) for v in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for value in (1, 2):
        job = out[value]
        assert job.state == "finished", job.error
        assert job.result["coef"] == 10 * value  # its own data, its own checkpoint
        assert job.result["score"] == 10 * value and job.result["equation_coef"] == 10 * value
        data = json.loads((session.job_dir(job) / "data.json").read_text())
        assert data["value"] == value
    assert session.job_dir(out[1]) != session.job_dir(out[2])


def _full(session, value: float):
    job = runner.run_job(session, runner.submit(session, "pipe", None, {"value": value}))
    assert job.state == "finished", job.error
    return job


def test_a_step_job_takes_its_inputs_from_the_newest_job_that_made_them_and_says_which(session):
    a, b = _full(session, 1), _full(session, 2)
    report_a = session.job_dir(a) / "report.json"
    before = (report_a.stat().st_ino, report_a.read_text())

    c = runner.run_job(session, runner.submit(session, "pipe", ["evaluate"]))
    assert c.state == "finished" and c.source == b.id
    assert c.result["score"] == 20 and c.result["equation_coef"] == 20  # b's model and b's equations
    logs = [e.payload["message"] for e in session.events(c.id, kinds=("log",))]
    assert f"inputs from job {b.id} (steps generate, fit)" in logs
    # the old job's evaluation is not passed off as this one's: only generate and fit were taken
    assert sorted(folders.read_manifest(session.job_dir(c))["steps"]) == ["evaluate", "fit", "generate"]

    d = runner.run_job(session, runner.submit(session, "pipe", ["evaluate"], from_job=a.id))
    assert d.source == a.id and d.result["score"] == 10 and d.result["equation_coef"] == 10
    # the earlier job's files are untouched by the job that read them
    assert (report_a.stat().st_ino, report_a.read_text()) == before

    # a job that ran only 'evaluate' is itself a source for the next part-way job
    e = runner.run_job(session, runner.submit(session, "pipe", ["fit", "evaluate"], from_job=d.id))
    assert e.state == "finished" and e.result["coef"] == 10


def test_a_step_job_with_no_earlier_job_says_so_and_fails_with_its_step_line(session):
    job = runner.run_job(session, runner.submit(session, "pipe", ["evaluate"]))
    assert job.state == "failed" and job.source is None
    warns = [e.payload for e in session.events(job.id, kinds=("log",))]
    assert any(w["level"] == "warning" and "has run generate, fit" in w["message"] for w in warns)


def test_from_a_job_of_another_analysis_or_that_made_nothing_is_refused(session):
    from engine.analyses.base import ParamError

    fake = runner.run_job(session, runner.submit(session, "fake", ["count"], {"n": 2, "sleep": 0.0}))
    with pytest.raises(ParamError, match="ran 'fake', not 'pipe'"):
        runner.submit(session, "pipe", ["evaluate"], from_job=fake.id)
    gen = _full(session, 3)
    with pytest.raises(ParamError, match="take no earlier step's output"):
        runner.submit(session, "pipe", ["generate"], from_job=gen.id)


def test_a_resume_continues_in_its_jobs_folder_and_only_one_at_a_time(session, monkeypatch):
    monkeypatch.setattr(runner, "launch", lambda s, j: 0)  # record, do not start
    job_id = runner.submit(session, "pipe", None, {"value": 4})
    session.start_job(job_id, pid=None)
    session.finish_job(job_id, "interrupted")
    new_id = runner.resume(session, job_id)
    assert session.job_dir(new_id) == session.job_dir(job_id)
    with pytest.raises(Exception, match="already working in"):
        runner.resume(session, job_id)
