"""TUI figures: ``tui_startup`` (process start to first paint, in a real pty) and
``tui_latency`` (keystroke to redraw while a job writes events at a high rate)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import threading
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


def first_paint_s(root: Path, name: str) -> float:
    """Seconds from spawning ``workbench`` in a pty until its header is on screen."""
    env = dict(os.environ, WORKBENCH_SESSIONS=str(root), TERM="xterm-256color", COLUMNS="80", LINES="24")
    master, slave = pty.openpty()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "--session", name],
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


async def _latency(root: Path, name: str, presses: int = 40) -> dict:
    from engine.session import Session
    from workbench.app import WorkbenchApp

    s = Session.open(name, root)
    job = s.create_job("demo", ["train"], {}, job_id=f"{name}-live")
    s.update_job(job, state="running", pid=os.getpid(), heartbeat=time.time(), host=os.uname().nodename)
    stop = threading.Event()
    written = [0]

    def writer() -> None:  # a job logging ~500 events/s in bursts
        w = Session.open(name, root)
        step = 0
        while not stop.is_set():
            w.add_events(job, [("metric", {"name": "train_loss", "value": 1 / (step + i + 1), "step": step + i})
                               for i in range(25)] + [("progress", {"done": step, "total": 10**6})])
            step += 25
            written[0] += 26
            time.sleep(0.05)
        w.close()

    app = WorkbenchApp(session=s)
    times = []
    async with app.run_test(size=(120, 40)) as pilot:
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        await pilot.pause(1.0)
        for i in range(presses):
            key = "24"[i % 2]
            t0 = time.perf_counter()
            await pilot.press(key)
            await pilot.pause()  # the key handled and the screen updated
            times.append(time.perf_counter() - t0)
        stop.set()
        t.join(5)
    with Session.open(name, root) as done:  # the app closed its own connection
        done.update_job(job, state="finished")
    times.sort()
    return {"median_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[int(0.95 * len(times)) - 1],
            "events_per_s": written[0] / max(1e-9, presses * statistics.mean(times) + 1.0)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _big_session(root, "small", jobs=1, events_per_job=10)
        _big_session(root, "large", jobs=200, events_per_job=500)
        small = statistics.median(first_paint_s(root, "small") for _ in range(3))
        large = statistics.median(first_paint_s(root, "large") for _ in range(3))
        print(json.dumps({"name": "tui_startup", "first_paint_s": round(small, 3),
                          "first_paint_large_session_s": round(large, 3),
                          "large_session": "200 jobs, 100k events", "target_s": 1.0,
                          "anchor": "1 s budget", "ratio": round(1.0 / large, 2), "device": "cpu"}))
        lat = asyncio.run(_latency(root, "small"))
        print(json.dumps({"name": "tui_latency", "keystroke_to_redraw_median_ms": round(lat["median_ms"], 1),
                          "p95_ms": round(lat["p95_ms"], 1), "job_events_per_s": 520,
                          "target_ms": 50, "anchor": "50 ms budget",
                          "ratio": round(50 / lat["median_ms"], 2), "device": "cpu"}))


if __name__ == "__main__":
    main()
