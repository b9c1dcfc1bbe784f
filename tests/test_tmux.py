"""The remote-first promise in a real terminal: the TUI in tmux, a job started by key,
the client detached (a dropped SSH connection), the job finishing meanwhile, and the
re-attached client seeing it finished."""

from __future__ import annotations

import os
import shutil
import sys
import time

import pytest

from engine.session import Session
from tests.helpers.process import ROOT
from tests.helpers.tmux import Tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture
def tmux():
    t = Tmux()
    yield t
    t("kill-server", check=False)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_job_finishes_while_detached_and_is_seen_on_reattach(tmux, session_root):
    with Session.open("tm", session_root) as s:
        s.set_params("fake", {"n": 30, "sleep": 0.1})  # a 3 s job: long enough to detach from
    env = {"WORKBENCH_SESSIONS": str(session_root), "WORKBENCH_ANALYSES": "fake=tests.fake_analysis",
           "PYTHONPATH": str(ROOT), "WORKBENCH_CONFIG": str(session_root / "no-config.toml")}
    cmd = " ".join(["env", *(f"{k}={v}" for k, v in env.items()),
                    sys.executable, "-m", "workbench.cli", "--session", "tm"])
    # stderr stays on the pane: Textual draws there in a pty
    tmux("new-session", "-d", "-s", "wb", "-x", "100", "-y", "30", "-c", str(ROOT), cmd)
    tmux.wait_screen("Datasets", "Results")
    client, master = tmux.attach()
    try:
        _wait(tmux.clients, 10, "the client to attach")
        # start a job with the keyboard only: r opens the palette
        tmux("send-keys", "-t", "wb", "r")
        tmux.wait_screen("Run which analysis")
        tmux("send-keys", "-t", "wb", "-l", "Run fake: count")
        tmux.wait_screen("Run fake: count")
        time.sleep(0.3)  # the palette's search settles on the typed text
        tmux("send-keys", "-t", "wb", "Enter")
        tmux.wait_screen("enter runs", "sleep")  # the parameter form, with the session's values
        tmux("send-keys", "-t", "wb", "Enter")
        with Session.open("tm", session_root, readonly=True) as ro:
            job = _wait(lambda: ro.jobs(), 10, "a job to be created")[0]
            assert job.analysis == "fake" and job.steps == ["count"]
            # the connection drops: the client goes, the TUI and the job stay
            tmux("detach-client", "-s", "wb")
            client.wait(10)
            assert not tmux.clients()
            _wait(lambda: ro.job(job.id).state == "finished", 30, "the job to finish while detached")
    finally:
        if client.poll() is None:
            client.kill()
        os.close(master)
    client, master = tmux.attach()
    try:
        _wait(tmux.clients, 10, "the client to re-attach")
        tmux("send-keys", "-t", "wb", "j")
        short = job.id[len("tm-"):]
        # the summary line is drawn with the table, not always in the same frame
        tmux.wait_screen("✓ finished", short, "0 running")
        tmux("send-keys", "-t", "wb", "q")  # quit: no job running, nothing to say
        _wait(lambda: "wb" not in tmux("list-sessions", check=False), 15, "the TUI to quit")
    finally:
        if client.poll() is None:
            client.kill()
        os.close(master)
