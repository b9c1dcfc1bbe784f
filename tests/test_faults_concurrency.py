"""Faults, part 2: concurrency.  Two TUIs and a headless run on one session at once.

Two processes open the same, not yet existing, session the way ``WorkbenchApp`` does
(read-write open, which creates and migrates it, then the UI lock) at the same moment, while a
headless ``workbench run`` and this test process write events into it.  Exactly one TUI gets
the lock and writes (UI state and events, as fast as it can); the other stays read-only and
follows everyone's events until told to stop.  Nobody sees "database is locked", nothing is
lost, the follower saw every event in order, and the file passes ``integrity_check``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from engine.session import Session
from tests.helpers.process import ROOT, wait_for

pytestmark = pytest.mark.timeout(120)

TUI = textwrap.dedent("""
    import json, os, sys, time
    from engine.session import Session
    path, tag, secs, stop = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    s = Session(path)                 # like WorkbenchApp: read-write open, then the lock
    writer = s.acquire_ui_lock()
    out = {"tag": tag, "writer": writer, "writes": 0, "seen": 0, "ordered": True, "jobs": []}
    if writer:
        job = s.create_job("fake", ["count"], {}, job_id="ui-" + tag)
        end = time.monotonic() + secs
        while time.monotonic() < end:
            s.set_ui(pane="training", counter=out["writes"])
            s.add_event(job, "log", {"message": tag + str(out["writes"])})
            out["writes"] += 1
    else:
        ro = Session(path, readonly=True)   # the read-only follower
        last, jobs, deadline = 0, set(), time.monotonic() + 60
        while time.monotonic() < deadline:
            stopping = os.path.exists(stop)  # one more poll after the stop sign: catch up
            ev = ro.events(after=last, limit=5000)
            while ev:
                ids = [e.id for e in ev]
                out["ordered"] &= ids == sorted(ids) and ids[0] > last
                last = ids[-1]
                out["seen"] += len(ev)
                jobs |= {e.job_id for e in ev}
                ev = ro.events(after=last, limit=5000)
            if stopping:
                break
            time.sleep(0.02)
        out["jobs"], out["last"] = sorted(jobs), last
    print(json.dumps(out))
""")


def test_two_tuis_and_a_headless_run_on_one_session(session_root):
    path = session_root / "cc"
    stop = session_root / "stop"
    env_cmd = [sys.executable, "-c", TUI, str(path)]
    tuis = [subprocess.Popen(env_cmd + [tag, "3", str(stop)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT) for tag in "ab"]
    headless = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "run", "fake", "--step", "count", "--session", "cc",
         "--set", "n=300", "--set", "sleep=0", "--headless", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    # this process is a third writer: a job's worker hammering its own events
    s = wait_for(lambda: (path / "session.sqlite").exists() and _open(path), timeout=30, what="session")
    mine = s.create_job("fake", ["count"], {}, job_id="hammer")
    t_end = time.monotonic() + 3
    n_mine = 0
    while time.monotonic() < t_end:
        s.add_events(mine, [("metric", {"name": "x", "value": n_mine, "step": n_mine})])
        n_mine += 1
    h_out, h_err = headless.communicate(timeout=60)
    # the writer stops by itself after 3 s of writing; then tell the follower to catch up and stop
    wait_for(lambda: any(p.poll() is not None for p in tuis), timeout=30, what="the writer to end")
    stop.touch()
    results, errs = [], [h_err]
    for p in tuis:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        results.append(json.loads(out))
        errs.append(err)
    assert headless.returncode == 0, h_err
    for err in errs:
        assert "locked" not in err and "Traceback" not in err, err

    writers = [r for r in results if r["writer"]]
    followers = [r for r in results if not r["writer"]]
    assert len(writers) == 1 and len(followers) == 1, results
    w, f = writers[0], followers[0]
    head_job = json.loads(h_out)["job"]
    assert json.loads(h_out)["state"] == "finished"

    # nothing lost: every writer's events are there, in its order
    logs = [e.payload["message"] for e in s.events(f"ui-{w['tag']}", kinds=("log",))]
    assert w["writes"] > 10 and logs == [f"{w['tag']}{i}" for i in range(w["writes"])]
    assert s.ui()["counter"] == w["writes"] - 1
    assert [e.payload["value"] for e in s.events(mine)] == list(range(n_mine))
    assert len(s.events(head_job, kinds=("metric",))) == 300
    # the read-only TUI wrote nothing and followed everyone, in order, to the last event
    assert {j.id for j in s.jobs()} == {f"ui-{w['tag']}", mine, head_job}
    assert f["ordered"] and f["last"] == s.last_event_id() and f["seen"] == len(s.events())
    assert set(f["jobs"]) == {f"ui-{w['tag']}", mine, head_job}
    assert s._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    print(f"\nwriter {w['writes']} UI writes, hammer {n_mine} events, follower saw {f['seen']}")
    s.close()


def _open(path):
    try:
        return Session(path, create=False)
    except Exception:  # noqa: BLE001 - being created by the others right now
        return None
