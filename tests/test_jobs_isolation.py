"""Each job works in its own folder; a part-way job takes its inputs from an earlier job.

Issue 22 #5: two jobs of one analysis shared ``artifacts/<analysis>/``; ``fresh_dir`` (now ``checkpoint_dir``) wiped
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


def test_where_sessions_live_is_one_rule_said_by_the_cli(session_root, monkeypatch, tmp_path):
    from engine import session as session_mod
    from tests.helpers.process import cli

    assert session_mod.default_root() == session_root  # $WORKBENCH_SESSIONS (conftest)
    proc = cli("sessions")
    assert proc.returncode == 0 and f"sessions in {session_root} ($WORKBENCH_SESSIONS)" in proc.stderr
    monkeypatch.delenv("WORKBENCH_SESSIONS")
    cwd = tmp_path / "elsewhere"
    (cwd / "sessions").mkdir(parents=True)
    monkeypatch.chdir(cwd)  # never the current folder's ./sessions
    root, why = session_mod.root_and_reason()
    assert root != cwd / "sessions" and why in ("the checkout's sessions/ folder", "the user data folder")
    help_text = " ".join(cli("--help").stdout.split())
    assert "$WORKBENCH_SESSIONS, else sessions/ in the workbench's own checkout, else the user data folder" in help_text


def test_orphan_temp_files_in_a_jobs_folder_go_when_it_resumes(session, monkeypatch):
    monkeypatch.setattr(runner, "launch", lambda s, j: 0)
    job_id = runner.submit(session, "pipe", ["generate"], {"value": 5})
    session.start_job(job_id, pid=None)
    session.finish_job(job_id, "interrupted")
    orphan = session.job_dir(job_id) / ".model.json.k2j4x8ab.tmp"  # a write killed half way
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"\0" * 1000)
    new = runner.run_job(session, runner.resume(session, job_id))
    assert new.state == "finished" and not orphan.exists()


def test_a_job_from_before_per_job_folders_keeps_the_shared_folder(session):
    job_id = session.create_job("pipe", ["generate"], {})
    with session._write() as c:  # as schema 2 recorded it
        c.execute("UPDATE jobs SET workdir=NULL WHERE id=?", (job_id,))
    assert session.job_dir(job_id) == session.artifacts / "pipe"
    (session.artifacts / "pipe").mkdir(parents=True, exist_ok=True)
    (session.artifacts / "pipe" / "data.json").write_text('{"value": 7}')
    session.finish_job(job_id, "finished")
    job = runner.run_job(session, runner.submit(session, "pipe", ["fit"]))
    assert job.state == "finished" and job.result["coef"] == 70  # found in the shared folder


def test_seeding_links_large_inputs_and_copies_small_ones(tmp_path):
    src, dest = tmp_path / "a", tmp_path / "b"
    (src / "train").mkdir(parents=True)
    (src / "train" / "model.pt").write_bytes(b"\1" * (folders.COPY_BELOW + 1))
    (src / "notes.json").write_text("{}")
    folders.seed(dest, folders.Inputs("job-a", src, ("train",), ("train/model.pt", "notes.json")))
    assert (dest / "train" / "model.pt").stat().st_ino == (src / "train" / "model.pt").stat().st_ino
    assert (dest / "notes.json").stat().st_ino != (src / "notes.json").stat().st_ino
    (dest / "notes.json").write_text('{"rewritten": 1}')  # in place: the source keeps its own
    assert (src / "notes.json").read_text() == "{}"
    assert folders.read_manifest(dest)["inputs"]["job"] == "job-a"


def test_checkpoint_dir_is_kept_on_resume_and_emptied_otherwise_but_never_by_a_follower_rank(tmp_path):
    from engine.analyses.base import StepContext
    from engine.jobs.follower import FollowerContext

    def leftover(ctx_cls, resuming: bool, via: str = "checkpoint_dir") -> bool:
        d = tmp_path / f"{ctx_cls.__name__}-{resuming}-{via}"
        (d / "train").mkdir(parents=True)
        (d / "train" / "step_5.pt").write_text("old")
        ctx = ctx_cls(workdir=d, resuming=resuming)
        got = getattr(ctx, via)("train")
        assert got == d / "train" and got.is_dir()
        return (got / "step_5.pt").exists()

    assert leftover(StepContext, resuming=True)  # the step continues from its checkpoint
    assert not leftover(StepContext, resuming=False)  # a new job never continues an old run
    # ranks > 0 leave the emptying to rank 0 (racing its first checkpoint)
    assert leftover(FollowerContext, resuming=False)


def test_a_step_job_that_sets_an_earlier_steps_setting_only_takes_files_made_with_it(session):
    from engine.analyses.base import ParamError

    one, two = _full(session, 1), _full(session, 2)
    # value=1 is not the newest job's: the files of the job that had it are taken
    c = runner.run_job(session, runner.submit(session, "pipe", ["evaluate"], {"value": 1}))
    assert c.source == one.id and c.result["score"] == 10
    # nothing was made with value=3: refused in one line, naming what the newest (c) had
    with pytest.raises(ParamError, match=rf"no earlier job made generate, fit with value=3 \(the newest, {c.id}, had value=1\)"):
        runner.submit(session, "pipe", ["evaluate"], {"value": 3})
    # without the setting, the newest job's files, and the job records the value they were made with
    d = runner.run_job(session, runner.submit(session, "pipe", ["evaluate"]))
    assert d.source == c.id and d.params["value"] == 1 and d.result["score"] == 10
    e = runner.run_job(session, runner.submit(session, "pipe", ["evaluate"], {"value": 2}))
    assert e.source == two.id and e.params["value"] == 2 and e.result["score"] == 20


def test_from_a_job_made_with_other_settings_is_refused(session):
    from engine.analyses.base import ParamError

    one = _full(session, 1)
    with pytest.raises(ParamError, match=rf"--from {one.id}: that job made its files with value=1, not value=5"):
        runner.submit(session, "pipe", ["evaluate"], {"value": 5}, from_job=one.id)


def test_a_step_job_on_a_recording_is_not_told_to_run_generate_first(session):
    job_id = runner.submit(session, "retina", ["train"], {"data": "/recordings/naturalscene.h5"})
    assert folders.inputs_line(session.job_dir(session.job(job_id))) is None
    plain = runner.submit(session, "retina", ["train"])
    assert "has run generate" in folders.inputs_line(session.job_dir(session.job(plain)))[1]
