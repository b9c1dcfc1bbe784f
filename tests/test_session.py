"""Session store: WAL, schema migrations, read-only opening, clear errors, concurrency."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from engine import session as session_mod
from engine.session import SCHEMA_VERSION, Session, SessionError


def test_new_session_is_wal_with_current_schema(session):
    mode = session._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert session.schema_version == SCHEMA_VERSION
    assert session.artifacts.is_dir()


def test_roundtrip_params_tables_equations_ui(session):
    session.set_params("demo", {"lr": 0.01, "steps": [1, 2]})
    assert session.params("demo") == {"lr": 0.01, "steps": [1, 2]}
    frame = pd.DataFrame({"mae": [0.25, float("nan")]}, index=["CfC", "SINDy"])
    session.save_table("mae", frame, job_id="j1")
    back = session.tables("mae")[-1]["frame"]
    assert list(back.index) == ["CfC", "SINDy"]
    assert back.loc["CfC", "mae"] == 0.25 and pd.isna(back.loc["SINDy", "mae"])
    session.save_equations("eq", {"coef": [[1.0, 0.0]], "threshold": 0.1})
    assert session.equations("eq")[-1]["data"]["threshold"] == 0.1
    session.set_ui(pane="results", **{"equations.threshold": 0.05})
    assert session.ui() == {"pane": "results", "equations.threshold": 0.05}


def test_a_session_copied_elsewhere_still_finds_its_sweeps_and_artifacts(session_root, tmp_path):
    import shutil

    s = Session.open("moved", session_root)
    sweep = s.artifacts / "lds" / "lds-0001" / "sweep_x.npz"
    sweep.parent.mkdir(parents=True)
    sweep.write_bytes(b"the sweep")
    outside = tmp_path / "elsewhere.npz"  # a file outside the session keeps its absolute path
    s.save_equations("x", {"threshold": 0.1, "sweep_path": str(sweep)}, job_id="lds-0001")
    s.save_equations("y", {"threshold": 0.2, "sweep_path": str(outside)})
    s.add_event("lds-0001", "artifact", {"name": sweep.name, "path": str(sweep), "artifact_kind": "sweep"})
    stored = s._conn.execute("SELECT data FROM equations WHERE name='x'").fetchone()[0]
    assert str(session_root) not in stored  # relative to the session folder, not where it is now
    s.close()

    shutil.copytree(session_root / "moved", tmp_path / "archive" / "moved")
    shutil.rmtree(session_root / "moved")
    with Session(tmp_path / "archive" / "moved", create=False, readonly=True) as c:
        found = Path(c.equations("x")[-1]["data"]["sweep_path"])
        assert found == c.path / "artifacts" / "lds" / "lds-0001" / "sweep_x.npz"
        assert found.read_bytes() == b"the sweep"
        (event,) = c.events("lds-0001", kinds=("artifact",))
        assert Path(event.payload["path"]) == found
        assert c.equations("y")[-1]["data"]["sweep_path"] == str(outside)


def test_an_old_session_s_absolute_sweep_path_is_read_as_it_is(session, tmp_path):
    old = tmp_path / "old" / "sweep.npz"
    session._conn.execute("INSERT INTO equations (name, job_id, created, data) VALUES (?, ?, ?, ?)",
                          ("old", None, 0.0, json.dumps({"sweep_path": str(old)})))
    session._conn.commit()
    assert session.equations("old")[-1]["data"]["sweep_path"] == str(old)


def test_migrates_an_old_schema_and_keeps_data(session_root):
    path = session_root / "old"
    path.mkdir()
    conn = sqlite3.connect(path / "session.sqlite")
    conn.executescript(session_mod.MIGRATIONS[0])
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO jobs (id, analysis, steps, params, state, created) "
                 "VALUES ('j', 'demo', '[]', '{}', 'finished', 0)")
    conn.commit()
    conn.close()
    s = Session(path)
    assert s.schema_version == SCHEMA_VERSION
    job = s.job("j")
    assert job.state == "finished" and job.resume_of is None and job.seen is False


def test_newer_schema_is_refused_clearly(session_root):
    path = session_root / "future"
    Session(path).close()
    conn = sqlite3.connect(path / "session.sqlite")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(SessionError, match="newer than this workbench"):
        Session(path)


def test_corrupted_file_gives_a_clear_error(session_root):
    path = session_root / "broken"
    path.mkdir()
    (path / "session.sqlite").write_bytes(b"this is not sqlite" * 200)
    with pytest.raises(SessionError, match="corrupted"):
        Session(path)


def test_locked_session_gives_a_clear_error(session_root, monkeypatch):
    s = Session(session_root / "busy")
    monkeypatch.setattr(session_mod.connection, "BUSY_TIMEOUT_MS", 200)
    other = sqlite3.connect(s.db_path, timeout=0.1)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SessionError, match="locked by another process"):
            Session(session_root / "busy").set_ui(pane="x")
    finally:
        other.rollback()
        other.close()


def test_readonly_session_refuses_writes_but_reads(session):
    session.set_ui(pane="equations")
    ro = Session(session.path, readonly=True)
    assert ro.ui()["pane"] == "equations"
    with pytest.raises(SessionError, match="read-only"):
        ro.set_ui(pane="results")


def test_second_ui_lock_is_refused(session):
    assert session.acquire_ui_lock()
    other = Session(session.path)
    assert not other.acquire_ui_lock()
    session.release_ui_lock()
    assert other.acquire_ui_lock()


def test_invalid_and_missing_names(session_root):
    with pytest.raises(SessionError, match="invalid session name"):
        Session.open("../escape", session_root)
    with pytest.raises(SessionError, match="no session"):
        Session.open("absent", session_root, create=False)


def test_concurrent_writers_lose_nothing(session):
    job = session.create_job("fake", ["count"], {})
    code = textwrap.dedent(f"""
        import sys
        from engine.session import Session
        s = Session({str(session.path)!r}, create=False)
        for i in range(150):
            s.add_event({job!r}, "log", {{"message": sys.argv[1] + str(i)}})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, tag]) for tag in "abc"]
    for i in range(150):
        session.add_event(job, "metric", {"name": "x", "value": i})
    assert all(p.wait(60) == 0 for p in procs)
    events = session.events(job)
    assert len(events) == 600
    for tag in "abc":  # each writer's events are all there, in its order
        mine = [e.payload["message"] for e in events if e.payload.get("message", "").startswith(tag)]
        assert mine == [f"{tag}{i}" for i in range(150)]


def test_tables_come_back_as_saved_without_type_guessing(tmp_path):
    import numpy as np
    import pandas as pd

    from engine.session import Session

    s = Session.open("types", tmp_path)
    frame = pd.DataFrame({"oracle": [0.5, np.nan], "kept": [True, False], "n": [3, 4]},
                         index=[950912345, 950912352])  # unit ids that look like epoch seconds
    s.save_table("units", frame)
    back = s.tables("units")[-1]["frame"]
    assert list(back.index) == [950912345, 950912352]  # not dates
    assert back["oracle"].dtype == float and back["n"].dtype.kind == "i" and back["kept"].dtype == bool
    s.close()


# -- issue 22: concurrent creation, a held lock, read-only media, an empty file ----------

_OPEN_AT = textwrap.dedent("""
    import sys, time
    from engine.session import Session
    path, start = sys.argv[1], float(sys.argv[2])
    for k in range(3):  # three sessions, each created by every process at the same instant
        while time.time() < start + 0.4 * k:
            time.sleep(0.001)
        try:
            Session(f"{path}{k}").close()
        except Exception as exc:
            print(exc)
            sys.exit(1)
""")


def test_many_processes_creating_one_session_at_once_all_succeed(session_root):
    path = session_root / "crowd"
    start = time.time() + 2.5  # every process is up and waiting by then, on a busy machine too
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, str(path), str(start)],
                              stdout=subprocess.PIPE, text=True) for _ in range(12)]
    outs = [(p.wait(60), p.stdout.read().strip()) for p in procs]
    assert [o for o in outs if o[0] != 0] == []
    for k in range(3):
        assert Session(f"{path}{k}").schema_version == SCHEMA_VERSION


def test_a_running_job_waits_out_a_held_lock_instead_of_failing(session, monkeypatch):
    from engine.jobs import runner

    monkeypatch.setattr(session_mod.connection, "BUSY_TIMEOUT_MS", 100)
    job_id = session.create_job("fake", ["count"], {"n": 5, "sleep": 0.0, "ckpt_every": 5})
    holder = sqlite3.connect(session.db_path, timeout=0.1, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock for 1.5 s
    release = threading.Timer(1.5, holder.rollback)
    release.start()
    try:
        t0 = time.monotonic()
        job = runner.run_job(Session(session.path, create=False), job_id)
    finally:
        release.join()
        holder.close()
    assert job.state == "finished", job.error
    assert time.monotonic() - t0 >= 1.4  # it waited, it did not fail after the busy timeout
    assert len(session.events(job_id, kinds=("metric",))) == 5


def test_a_zero_byte_session_file_is_an_error_not_a_new_session(session_root):
    path = session_root / "cut"
    path.mkdir()
    (path / "session.sqlite").write_bytes(b"")
    with pytest.raises(SessionError, match="empty"):
        Session(path)
    with pytest.raises(SessionError, match="empty"):
        Session(path, readonly=True)
    assert (path / "session.sqlite").stat().st_size == 0  # nothing written over it


def test_read_only_commands_do_not_migrate_an_older_session(session_root):
    s = Session(session_root / "old2")
    job = s.create_job("fake", ["count"], {})
    s.close()
    with sqlite3.connect(session_root / "old2" / "session.sqlite") as c:
        c.execute("PRAGMA user_version=2")
    ro = Session(session_root / "old2", create=False, migrate=False)
    assert ro.readonly and ro.job(job).analysis == "fake"
    assert ro.schema_version == 2
    ro.close()


@pytest.fixture
def readonly_mount(tmp_path):
    """A real read-only filesystem (a tmpfs remounted read-only); needs root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only filesystem needs root")
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_a_session_on_read_only_media_opens_read_only(readonly_mount):
    s = Session(readonly_mount / "archive")
    job = s.create_job("fake", ["count"], {})
    s.set_ui(pane="results")
    s.close()
    assert subprocess.run(["mount", "-o", "remount,ro", str(readonly_mount)]).returncode == 0
    ro = Session(readonly_mount / "archive")
    assert ro.readonly and ro.readonly_reason == "read-only media"
    assert ro.job(job).analysis == "fake" and ro.ui()["pane"] == "results"
    with pytest.raises(SessionError, match="read-only"):
        ro.set_ui(pane="x")
    assert not ro.acquire_ui_lock()  # the TUI follows it read-only
    ro.close()
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "--root", str(readonly_mount),
                           "sessions", "show", "archive"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and job in proc.stdout, proc.stderr
