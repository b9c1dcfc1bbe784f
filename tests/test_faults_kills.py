"""Faults, part 1: kills and hang-ups.  Nothing a job computed before the kill is lost.

* A real training job (``fault`` analysis: engine.train.fit, a checkpoint every step) is
  SIGKILLed 8 times in a row — once deterministically half way through a checkpoint write,
  then at random moments — and resumed after each kill.  After every kill the session opens,
  passes ``PRAGMA integrity_check``, reconcile ends every job, every ``step_*.pt`` on disk
  loads with ``torch.load(weights_only=True)``, the metric events up to the kill are there,
  and the resume continues from the newest checkpoint; the final loss curve has every step
  exactly once.
* A process standing in for the TUI starts jobs, is hung up (SIGHUP to its process group) and
  SIGKILLed: the jobs finish and its UI lock is free again.
* A headless ``workbench run`` that is hung up stops at a safe point, checkpoints and ends
  ``cancelled`` (resumable) instead of dying mid-step.

Workers of the kill loop are forked from one "zygote" that imported torch once, so eight
kills cost one torch import; the worker body (``engine.jobs.worker.main``) is the real one.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine import analyses
from engine.jobs import liveness, runner
from engine.session import END_STATES, Session
from tests.helpers.process import ROOT, wait_for

analyses.register("fault", "tests.fault_analysis")
ANALYSES_ENV = "fake=tests.fake_analysis,fault=tests.fault_analysis"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _fault_env(session_root, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ANALYSES", ANALYSES_ENV)


def check_session(path: Path) -> None:
    """The session opens read-write, is intact, and (after reconcile) no job is left running."""
    s = Session(path, create=False)
    try:
        assert s._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        runner.reconcile(s)
        states = {j.id: j.state for j in s.jobs()}
        assert all(st in END_STATES for st in states.values()), states
    finally:
        s.close()


# -- the kill loop ------------------------------------------------------------------------

ZYGOTE = textwrap.dedent("""
    import os, signal, sys
    import torch  # once; forked workers inherit it
    import engine.jobs.worker, engine.train, tests.fault_analysis
    torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])  # its first use imports torch._dynamo
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # dead workers are reaped at once
    print("ready", flush=True)
    for line in sys.stdin:
        session_dir, job_id, log = line.split()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()  # like runner.launch: its own process session
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(fd, 1); os.dup2(fd, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            code = 1
            try:
                code = engine.jobs.worker.main([session_dir, job_id])
            finally:
                os._exit(code)
        print(pid, flush=True)
""")


class Zygote:
    def __init__(self):
        env = dict(os.environ, OMP_NUM_THREADS="1", WORKBENCH_ANALYSES=ANALYSES_ENV)
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        assert self._line(60) == "ready"

    def _line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "zygote did not answer"
        return self.proc.stdout.readline().strip()

    def launch(self, session: Session, job_id: str) -> int:
        """Drop-in for runner.launch: a forked worker in its own process session."""
        log = session.artifacts / "logs" / f"{job_id}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.proc.stdin.write(f"{session.path} {job_id} {log}\n")
        self.proc.stdin.flush()
        pid = int(self._line(10))
        session.update_job(job_id, pid=pid, pid_start=liveness.start_time(pid))
        return pid

    def close(self):
        self.proc.kill()
        self.proc.wait(10)


def _steps_on_disk(ckdir: Path) -> list[int]:
    return sorted(int(p.name[5:13]) for p in ckdir.glob("step_*.pt"))


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: liveness.start_time(pid) is None, timeout=10, interval=0.02, what="worker to die")


def test_sigkill_loop_in_training_and_checkpoint_writes(session, monkeypatch):
    import torch

    t0 = time.monotonic()
    zygote = Zygote()
    print(f"\nzygote {time.monotonic() - t0:.1f}s")
    monkeypatch.setattr(runner, "launch", zygote.launch)  # runner.resume launches through it
    rng = random.Random(20240612)
    total, stall_at = 600, 4  # long enough that 8 kills land on a quiet machine too
    job_id = runner.submit(session, "fault", ["train"],
                           {"steps": total, "width": 96, "sleep": 0.01, "stall_at": stall_at})
    ckdir = session.job_dir(job_id) / "train" / "checkpoints"
    marker = session.job_dir(job_id) / "stalled"
    zygote.launch(session, job_id)
    kills = torn_writes = resumes = 0
    expected_resume: int | None = None
    seen_tmp: set[Path] = set()
    try:
        for it in range(8):
            # let this worker (re)start training and write at least one checkpoint of its own
            wait_for(lambda: session.events(job_id, kinds=("artifact",)) or marker.exists()
                     and it == 0, timeout=60, interval=0.05, what="a checkpoint")
            if expected_resume is not None:
                logs = [e.payload["message"] for e in session.events(job_id, kinds=("log",))]
                assert f"resumed from step_{expected_resume:08d}.pt at step {expected_resume}" in " ".join(logs)
            if it == 0:  # deterministic: half way through the checkpoint of step `stall_at`
                wait_for(marker.exists, timeout=60, interval=0.02, what="the stalled write")
            else:
                time.sleep(rng.uniform(0.0, 0.5))
            job = session.job(job_id)
            if job.state == "finished":
                break
            _kill(job.pid)
            kills += 1
            print(f"kill {it} at {time.monotonic() - t0:.1f}s")

            # what survives the kill
            check_session(session.path)
            assert session.job(job_id).state == "interrupted"
            tmp = set(ckdir.glob(".step_*.tmp")) - seen_tmp
            seen_tmp |= tmp
            torn_writes += bool(tmp)
            on_disk = _steps_on_disk(ckdir)
            assert on_disk, "no checkpoint survived"
            for step in on_disk:  # no torn file ever sits under a final name
                payload = torch.load(ckdir / f"step_{step:08d}.pt", weights_only=True)
                assert payload["step"] == step and payload["model_state"]
            if it == 0:
                assert tmp and stall_at not in on_disk and on_disk[-1] == stall_at - 1
            announced = [Path(e.payload["path"]) for e in session.events(job_id, kinds=("artifact",))]
            if announced:  # the newest checkpoint the session announced is on disk
                assert announced[-1].exists()
            start = expected_resume or 0
            losses = [e.payload["step"] for e in session.events(job_id, kinds=("metric",))
                      if e.payload["name"] == "train_loss"]
            assert losses == list(range(start + 1, start + 1 + len(losses)))  # events up to the kill
            assert on_disk[-1] <= start + len(losses)  # a checkpoint comes after its loss event

            expected_resume = on_disk[-1]
            job_id = runner.resume(session, job_id)
            resumes += 1
        print(f"loop done at {time.monotonic() - t0:.1f}s")
        final = wait_for(lambda: (j := session.job(job_id)).state in END_STATES and j, timeout=60,
                         interval=0.1, what="the last resume to finish")
    finally:
        zygote.close()
    assert kills == 8, f"only {kills} kills landed before training finished"
    assert final.state == "finished", final.error
    assert final.result["step"] == total and final.result["resumed_from"] == expected_resume
    steps = [s for s, _ in json.loads((session.job_dir(job_id) / "history.json").read_text())]
    assert steps == list(range(1, total + 1))  # the loss curve has every step exactly once
    check_session(session.path)
    print(f"\nkills survived: {kills}, killed inside a checkpoint write: {torn_writes}, resumes: {resumes}")


# -- hang-ups and the death of the TUI ----------------------------------------------------

STAND_IN = textwrap.dedent("""
    import subprocess, sys, time
    from engine.jobs import runner
    from engine.session import Session
    s = Session.open("hup")
    assert s.acquire_ui_lock()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a pane's helper
    ids = [runner.start(s, "fake", ["count", "table"], {"n": 25, "sleep": 0.04}) for _ in range(2)]
    print(" ".join(ids), child.pid, flush=True)
    time.sleep(60)
""")


def test_hangup_and_sigkill_of_the_tui_do_not_reach_jobs(session_root):
    """SIGHUP to the TUI's process group, then SIGKILL: its jobs still finish, its lock is freed."""
    tui = subprocess.Popen([sys.executable, "-c", STAND_IN], stdout=subprocess.PIPE, text=True,
                           cwd=ROOT, start_new_session=True)
    try:
        ready, _, _ = select.select([tui.stdout], [], [], 30)
        assert ready, "the stand-in TUI did not start its jobs"
        *ids, helper = tui.stdout.readline().split()
        s = Session.open("hup", session_root, create=False)
        wait_for(lambda: all(s.job(j).state == "running" for j in ids), timeout=20, what="jobs to run")
        os.killpg(tui.pid, signal.SIGHUP)  # the SSH connection dropped
        os.killpg(tui.pid, signal.SIGKILL)
        tui.wait(10)
        # the hang-up did reach the TUI's own group (its helper dies, once reaped by init)
        wait_for(lambda: liveness.start_time(int(helper)) is None, timeout=10, interval=0.05, what="helper to die")
    finally:
        if tui.poll() is None:
            tui.kill()
    for j in ids:
        job = wait_for(lambda j=j: (x := s.job(j)).state in END_STATES and x, timeout=30, what="job end")
        assert job.state == "finished", job.error
        assert job.result == {"counted": 25, "resumed_from": 0, "rows": 2}
        metrics = s.events(j, kinds=("metric",))
        assert [e.payload["step"] for e in metrics] == list(range(1, 26))
    assert s.acquire_ui_lock()  # the dead TUI's lock went with it: the next TUI writes
    s.close()
    check_session(session_root / "hup")


def test_hangup_of_a_headless_run_cancels_at_a_safe_point(session_root):
    """``workbench run --headless`` on a terminal that goes away (pty closed: writes fail with
    EIO, then SIGHUP): the job checkpoints and ends cancelled, not failed, and resumes."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "run", "fake", "--step", "count", "--session", "hh",
         "--set", "n=400", "--set", "sleep=0.02", "--set", "ckpt_every=1000", "--headless"],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=ROOT, start_new_session=True)
    os.close(slave)
    try:
        s = wait_for(lambda: (session_root / "hh" / "session.sqlite").exists()
                     and Session.open("hh", session_root, create=False), timeout=30, what="session")
        job_id = wait_for(lambda: [j.id for j in s.jobs() if (s.latest_progress(j.id) or {}).get("done", 0) > 5],
                          timeout=30, what="progress")[0]
        os.close(master)  # the terminal is gone: further writes to it fail
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGHUP)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
    check_session(s.path)
    job = s.job(job_id)
    assert job.state == "cancelled", (job.state, job.error)
    saved = json.loads((s.job_dir(job_id) / "count.json").read_text())["i"]
    assert 5 < saved < 400  # it checkpointed where it stopped, although ckpt_every never came
    new_id = runner.resume(s, job_id)
    done = wait_for(lambda: (x := s.job(new_id)).state in END_STATES and x, timeout=30, what="resume")
    assert done.state == "finished" and done.result["resumed_from"] == saved
    s.close()
