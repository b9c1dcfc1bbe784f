"""The CLI: scripted use, clear one-line errors, exit codes."""

from __future__ import annotations

import json

import pytest

from tests.helpers.process import cli


def test_run_headless_json_prints_results(session_root):
    proc = cli("run", "fake", "--step", "count,table", "--session", "c1", "--set", "n=5",
               "--set", "sleep=0", "--headless", "--json", check=True)
    out = json.loads(proc.stdout)
    assert out["state"] == "finished" and out["counted"] == 5 and out["rows"] == 2
    assert "[count]" in proc.stderr  # the plain progress line
    listing = cli("sessions", check=True).stdout.split()
    assert "c1" in listing
    show = cli("sessions", "show", "c1", check=True).stdout
    assert "fake table" in show and "finished" in show


@pytest.mark.parametrize("args, message", [
    (["run", "nope"], "unknown analysis 'nope'"),
    (["run", "fake", "--step", "nope"], "has no step 'nope'"),
    (["run", "fake", "--set", "bogus=1"], "unknown parameter 'bogus'"),
    (["run", "fake", "--set", "n=many"], "n: expected an integer"),
    (["run", "fake", "--set", "n"], "expects key=value"),
    (["run", "fake", "--session", "../x"], "invalid session name"),
    (["jobs", "--session", "never-made"], "no session 'never-made'"),
    (["cancel", "no-such-job"], "no job 'no-such-job'"),
    (["data", "tree", "/no/such/file.h5"], "no such file"),
])
def test_user_errors_are_one_line_exit_2(args, message):
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_failed_job_exits_nonzero_with_message():
    proc = cli("run", "fake", "--step", "fail", "--session", "c2", "--json")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["state"] == "failed" and "NaN in column 3" in out["error"]


def test_corrupted_session_is_reported_not_raised(session_root):
    (session_root / "bad").mkdir()
    (session_root / "bad" / "session.sqlite").write_bytes(b"garbage" * 500)
    proc = cli("jobs", "--session", "bad")
    assert proc.returncode == 2 and "corrupted" in proc.stderr and "Traceback" not in proc.stderr


RANGED = "fake=tests.fake_analysis,ranged=tests.ranged_analysis"


@pytest.mark.parametrize("pair, message", [
    ("iterations=-5", "workbench: iterations: must be ≥ 1, got -5"),
    ("lr=-1", "workbench: lr: must be 0 ≤ x ≤ 1, got -1.0"),
    ("trajectories=0", "workbench: trajectories: must be ≥ 1, got 0"),
])
def test_out_of_range_parameters_are_refused_before_any_step(session_root, monkeypatch, pair, message):
    monkeypatch.setenv("WORKBENCH_ANALYSES", RANGED)
    proc = cli("run", "ranged", "--session", "r", "--set", pair, "--headless")
    assert proc.returncode == 2 and proc.stderr.strip() == message, proc.stderr
    assert not list(session_root.glob("**/first-ran"))  # no step ran
    ok = cli("run", "ranged", "--session", "r", "--set", "iterations=3", "--json", check=True)
    assert json.loads(ok.stdout)["iterations"] == 3


def test_data_gen_refuses_bad_sizes_folders_and_overwrites(tmp_path):
    target = tmp_path / "r.h5"
    target.write_bytes(b"precious")
    (tmp_path / "dir").mkdir()
    for args, message in [
        ([str(tmp_path / "x.h5"), "--frames", "-5"], "--frames must be ≥ 1, got -5"),
        ([str(tmp_path / "dir")], "is a folder; give a file name"),
        ([str(target)], "exists; add --force to overwrite it"),
        ([str(tmp_path / "missing" / "x.h5")], "does not exist; create it first"),
    ]:
        proc = cli("data", "gen", "retina", *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr
    assert target.read_bytes() == b"precious" and not (tmp_path / "missing").exists()
    cli("data", "gen", "retina", str(target), "--frames", "20", "--cells", "2", "--force", check=True)
    assert target.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"


def test_resume_opens_existing_sessions_only_and_the_tui_wants_a_terminal(session_root):
    cli("run", "fake", "--step", "table", "--session", "real", check=True)
    proc = cli("resume", "tpyo")
    assert proc.returncode == 2 and "no session 'tpyo'" in proc.stderr and "real" in proc.stderr
    assert not (session_root / "tpyo").exists()
    proc = cli("resume", "real")  # stdout is a pipe here: refuse rather than write escape codes
    assert proc.returncode == 2 and "needs a terminal" in proc.stderr and proc.stdout == ""


def test_jobs_delete_asks_and_refuses_without_a_terminal(session_root):
    from engine.session import Session

    cli("run", "fake", "--step", "table", "--session", "d", check=True)
    with Session.open("d", session_root, readonly=True) as s:
        job = s.jobs()[0].id
    proc = cli("jobs", "--session", "d", "--delete", job)
    assert proc.returncode == 2 and "add --yes" in proc.stderr
    with Session.open("d", session_root, readonly=True) as s:
        assert [j.id for j in s.jobs()] == [job]
    cli("jobs", "--session", "d", "--delete", job, "--yes", check=True)
    with Session.open("d", session_root, readonly=True) as s:
        assert s.jobs() == []


def test_a_closed_pipe_ends_quietly(session_root):
    import subprocess
    import sys

    from tests.helpers.process import ROOT

    for i in range(3):
        cli("run", "fake", "--step", "table", "--session", "p", check=True)
    # `sessions show p | head -1`: the reader closes after one line
    proc = subprocess.run(f"{sys.executable} -m workbench.cli sessions show p | head -1", shell=True,
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.startswith("session p") and "Traceback" not in proc.stderr
    assert "BrokenPipe" not in proc.stderr


def test_session_new_says_it_created_one_and_resume_does_not(session_root, monkeypatch, capsys):
    import sys

    from workbench import cli as cli_mod
    from workbench.app import WorkbenchApp

    opened = []

    def fake_run(self):
        opened.append((self.session.name, self.opening_note))
        self.session.close()
        self.store.close()

    monkeypatch.setattr(WorkbenchApp, "run", fake_run)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert cli_mod.main(["--session", "fresh"]) == 0
    assert opened[-1][0] == "fresh" and "new session 'fresh' created" in opened[-1][1]
    assert "new session 'fresh' created" in capsys.readouterr().err
    assert (session_root / "fresh" / "session.sqlite").exists()
    assert cli_mod.main(["resume", "fresh"]) == 0  # exists now: opened, nothing to announce
    assert opened[-1] == ("fresh", "") and "created" not in capsys.readouterr().err
