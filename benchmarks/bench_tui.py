"""TUI figures: ``tui_startup`` (process start to first paint, in a real pty) and
``tui_latency`` (keystroke to redraw in a real pty while another process writes 200 job
events/s into the session; median and p95, plus the in-process Pilot figure)."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import signal
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _big_session(root: Path, name: str, jobs: int = 200, events_per_job: int = 500) -> None:
    """A session with many jobs and events, to show startup does not grow with it."""
    from engine.session import Session

    s = Session.open(name, root)
    for j in range(jobs):
        jid = s.create_job("demo", ["train"], {}, job_id=f"{name}-{j:04d}")
        s.add_events(jid, [("metric", {"name": "train_loss", "value": 1 / (i + 1), "step": i})
                           for i in range(events_per_job)])
        s.finish_job(jid, "finished")
    with s._write() as c:
        c.execute("UPDATE jobs SET seen=1")
    s.close()


# The anchor: a bare Textual app drawing the same words, measured the same way in the same
# run, so ratios hold on a loaded 2-core machine where absolute times do not.
BARE_APP = """
from textual.app import App
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

class Jobs(Screen):
    BINDINGS = [("escape", "app.pop_screen", "Back")]
    def compose(self):
        yield Header(); yield Static("Jobs - session small - 0 running"); yield Footer()

class Bare(App):
    BINDINGS = [("j", "jobs", "Jobs"), ("q", "quit", "Quit")]
    def compose(self):
        yield Header(); yield Static("1 Datasets  2 Training  3 Equations  4 Results"); yield Footer()
    def action_jobs(self):
        self.push_screen(Jobs())

Bare().run()
"""


def _cmd(name: str | None) -> list[str]:
    """The workbench on session ``name``, or the bare anchor app for None."""
    if name is None:
        return [sys.executable, "-c", BARE_APP]
    return [sys.executable, "-m", "workbench.cli", "--session", name]


def first_paint_s(root: Path, name: str | None) -> float:
    """Seconds from spawning ``workbench`` (None: the bare app) in a pty until its tabs are on screen."""
    env = dict(os.environ, WORKBENCH_SESSIONS=str(root), TERM="xterm-256color", COLUMNS="80", LINES="24")
    master, slave = pty.openpty()
    t0 = time.perf_counter()
    proc = subprocess.Popen(_cmd(name),
                            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                            start_new_session=True)
    os.close(slave)
    seen = b""
    elapsed = float("nan")
    try:
        while time.perf_counter() - t0 < 20:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
                if b"Datasets" in seen and b"Results" in seen:
                    elapsed = time.perf_counter() - t0
                    break
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(master)
    return elapsed


def _event_writer(root: str, name: str, job: str, rate: float, stop_after: float) -> None:
    """A stand-in job process: ``rate`` events/s (metrics and progress, in 20 Hz batches) and a
    heartbeat, for ``stop_after`` seconds; prints how many events it wrote."""
    from engine.session import Session

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # end the loop, then report
    w = Session.open(name, Path(root))
    w.update_job(job, state="running", pid=os.getpid(), heartbeat=time.time(), host=os.uname().nodename,
                 started=time.time(), current_step="train")
    per = max(1, round(rate / 20))
    t0 = time.perf_counter()
    n = step = 0
    while time.perf_counter() - t0 < stop_after and not stop:
        w.add_events(job, [("metric", {"name": "train_loss", "value": 1 / (step + i + 1), "step": step + i})
                           for i in range(per - 1)] + [("progress", {"done": step, "total": 10**6})])
        w.update_job(job, heartbeat=time.time())
        step += per
        n += per
        # keep the average rate whatever a batch cost
        time.sleep(max(0.0, t0 + n / rate - time.perf_counter()))
    w.finish_job(job, "finished")
    w.close()
    print(n / (time.perf_counter() - t0), flush=True)


def _read_until(master: int, marker: bytes, timeout: float) -> float | None:
    """Seconds until ``marker`` appears in the pty output (None: not within ``timeout``)."""
    t0 = time.perf_counter()
    seen = b""
    while time.perf_counter() - t0 < timeout:
        ready, _, _ = select.select([master], [], [], 0.01)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                return None
            if marker in seen:
                return time.perf_counter() - t0
    return None


def _drain(master: int, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        if select.select([master], [], [], 0.01)[0]:
            try:
                os.read(master, 65536)
            except OSError:
                return


def pty_latency(root: Path, name: str | None, rate: float = 200.0, presses: int = 30) -> dict:
    """Keystroke to redraw in a real pty while another process writes ``rate`` events/s.

    The key is ``j`` (open the jobs screen: a full redraw, the most a key asks for); the time
    runs from writing the key to the screen's heading arriving on the terminal.  ``escape``
    closes it between samples.
    """
    from engine.session import Session

    env = dict(os.environ, WORKBENCH_SESSIONS=str(root), TERM="xterm-256color", COLUMNS="120", LINES="40",
               WORKBENCH_CONFIG=str(root / "none.toml"))
    writer = None
    if name is not None:  # the bare anchor app reads no session
        with Session.open(name, root) as s:
            job = s.create_job("demo", ["train"], {}, job_id=f"{name}-live")
        writer = subprocess.Popen([sys.executable, "-c", "from benchmarks.bench_tui import _event_writer;"
                                   f" _event_writer({str(root)!r}, {name!r}, {job!r}, {rate}, 600)"],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 120x40 terminal
    proc = subprocess.Popen(_cmd(name), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                            start_new_session=True)
    os.close(slave)
    times = []
    try:
        if _read_until(master, b"Results", 30) is None:
            raise RuntimeError("the workbench did not paint in 30 s")
        _drain(master, 2.0)  # first poll and the live job's curve drawn
        for _ in range(presses):
            os.write(master, b"j")
            dt = _read_until(master, f"session {name or 'small'} ".encode(), 3)  # one plain span
            if dt is not None:
                times.append(dt)
            _drain(master, 0.15)
            os.write(master, b"\x1b")  # escape: back to the panes
            _drain(master, 0.35)
    finally:
        proc.terminate()
        proc.wait(10)
        os.close(master)
        out = "nan"
        if writer is not None:
            writer.terminate()
            out, _ = writer.communicate(10)
    if not times:
        raise RuntimeError("the jobs screen never appeared after j")
    times.sort()
    return {"median_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[max(0, int(0.95 * len(times)) - 1)],
            "samples": len(times), "missed": presses - len(times), "events_per_s": float(out.strip() or "nan")}


async def _latency(root: Path, name: str, rate: float = 200.0, presses: int = 40) -> dict:
    """The same in-process (Textual's Pilot): key handled and screen refreshed, no terminal."""
    from engine.session import Session
    from workbench.app import WorkbenchApp

    s = Session.open(name, root)
    job = s.create_job("demo", ["train"], {}, job_id=f"{name}-pilot-{int(rate)}")
    env = dict(os.environ, WORKBENCH_SESSIONS=str(root))
    writer = subprocess.Popen([sys.executable, "-c", "from benchmarks.bench_tui import _event_writer;"
                               f" _event_writer({str(root)!r}, {name!r}, {job!r}, {rate}, 600)"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    app = WorkbenchApp(session=s)
    times = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.5)
        for i in range(presses):
            key = "24"[i % 2]
            t0 = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()  # the key handled and the screen updated
            times.append(time.perf_counter() - t0)
        await pilot.press("2")  # the Training pane in front: the busiest one while a job streams
        app.update_ms.clear()
        await pilot.pause(10)
        updates = sorted(app.update_ms)
    writer.terminate()
    out, _ = writer.communicate(10)
    times.sort()
    return {"median_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[int(0.95 * len(times)) - 1],
            "update_median_ms": statistics.median(updates), "update_p95_ms": updates[int(0.95 * len(updates)) - 1],
            "updates": len(updates)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.parse_args(argv)  # --device is accepted (make bench passes it) and unused: no torch here
    # bytecode cached as an installed package has it: a machine with PYTHONDONTWRITEBYTECODE
    # set (as our CI is) would otherwise recompile every project module at each start
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.setdefault("PYTHONPYCACHEPREFIX", tempfile.mkdtemp(prefix="wb-pycache-"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _big_session(root, "small", jobs=1, events_per_job=10)
        first_paint_s(root, "small")  # fills the bytecode cache; not counted
        _big_session(root, "large", jobs=200, events_per_job=500)
        bare = statistics.median(first_paint_s(root, None) for _ in range(3))
        small = statistics.median(first_paint_s(root, "small") for _ in range(3))
        large = statistics.median(first_paint_s(root, "large") for _ in range(3))
        print(json.dumps({"name": "tui_startup", "first_paint_s": round(small, 3),
                          "first_paint_large_session_s": round(large, 3),
                          "large_session": "200 jobs, 100k events", "target_s": 0.5,
                          "anchor": "bare Textual app, same pty, same run", "anchor_s": round(bare, 3),
                          "ratio": round(large / bare, 2), "device": "cpu",
                          "load_avg_1m": round(os.getloadavg()[0], 1)}))
        rate = 200.0
        anchor = pty_latency(root, None, rate)
        real = pty_latency(root, "small", rate)
        pilot = asyncio.run(_latency(root, "small", rate))
        print(json.dumps({"name": "tui_latency", "keystroke_to_redraw_median_ms": round(real["median_ms"], 1),
                          "p95_ms": round(real["p95_ms"], 1), "samples": real["samples"],
                          "missed": real["missed"], "key": "j (jobs screen, full redraw) in a real pty",
                          "in_process_median_ms": round(pilot["median_ms"], 1),
                          "in_process_p95_ms": round(pilot["p95_ms"], 1),
                          # the store update itself (events folded in, panes redrawn) per poll
                          "store_update_median_ms": round(pilot["update_median_ms"], 1),
                          "store_update_p95_ms": round(pilot["update_p95_ms"], 1),
                          "store_updates": pilot["updates"],
                          "job_events_per_s": round(real["events_per_s"], 1),
                          "events_from": "a separate process", "target_ms": 50,
                          "anchor": "bare Textual app pushing a screen, same pty, same run",
                          "anchor_median_ms": round(anchor["median_ms"], 1),
                          "ratio": round(real["median_ms"] / anchor["median_ms"], 2), "device": "cpu",
                          "load_avg_1m": round(os.getloadavg()[0], 1)}))

if __name__ == "__main__":
    main()
