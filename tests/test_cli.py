"""The CLI: scripted use, clear one-line errors, exit codes."""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli


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
