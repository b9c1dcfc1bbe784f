"""A Reporter that writes a job's events to its session.

Progress is throttled (a few writes a second) so a fast loop cannot flood the
store; the last progress of a step and every metric, log and artifact are kept.
ETA is computed here, once, for every engine function that reports progress: from the
rate over the last few seconds (not since the start, whose warm-up made the first ETA
of a 22 s job read 3 minutes), and only once that window is long enough to mean
something.  Each progress payload names its step and carries its wall time, so a
reader can tell a stale ETA (a loop paused to validate) from a live one.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

from engine.session import Session

PROGRESS_INTERVAL_S = 0.25
RATE_WINDOW_S = 8.0    # the rate behind an ETA is measured over this much recent time
RATE_MIN_SPAN_S = 1.5  # ... and no ETA is given before the window spans this much
# the one training loop's announcement (engine.train): the job's device is known from here on
_DEVICE_LINE = re.compile(r"^training on (\S+)")


class SessionReporter:
    def __init__(self, session: Session, job_id: str, workdir: Path,
                 cancel: threading.Event | None = None,
                 echo: Callable[[str, dict[str, Any]], None] | None = None):
        self.session = session
        self.job_id = job_id
        self._workdir = Path(workdir)
        self.cancel_event = cancel or threading.Event()
        self._echo = echo
        self._last_progress = 0.0
        self._t0: tuple[float, int] | None = None  # (time, done) where the current count began
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._step = ""
        self._lock = threading.Lock()

    def start_step(self, name: str) -> None:
        self._t0 = None
        self._samples.clear()
        self._step = name
        self._write("step", {"step": name})
        # a fresh progress line: the previous step's "2/2 100% ETA 0s" must not stand for this one
        self._write("progress", {"done": 0, "total": 0, "message": "starting", "rate": None,
                                 "eta_s": None, "step": name, "ts": time.time()})

    def _write(self, kind: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self.session.add_event(self.job_id, kind, payload)
        if self._echo is not None:
            self._echo(kind, payload)

    def progress(self, done: int, total: int, message: str = "", **extra: Any) -> None:
        now = time.monotonic()
        if self._t0 is None or done <= 0 or (self._samples and done < self._samples[-1][1]):
            self._t0 = (now, done)  # a new count (a new loop within the step) starts afresh
            self._samples.clear()
        if not self._samples or now - self._samples[-1][0] >= 0.1:
            self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_S:
            self._samples.popleft()
        finished = total and done >= total
        if not finished and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        t0, d0 = self._samples[0]
        span = now - t0
        rate = (done - d0) / span if span >= RATE_MIN_SPAN_S and done > d0 else None
        eta = 0.0 if finished else (total - done) / rate if rate and total else None
        self._write("progress", {"done": done, "total": total, "message": message,
                                 "rate": rate, "eta_s": eta, "step": self._step,
                                 "ts": time.time(), **extra})

    def metric(self, name: str, value: float, step: int | None = None, **extra: Any) -> None:
        self._write("metric", {"name": name, "value": float(value), "step": step, **extra})

    def log(self, message: str, level: str = "info") -> None:
        self._write("log", {"message": message, "level": level})
        m = _DEVICE_LINE.match(message)
        if m:  # the device shows while training, not only once the step has returned
            with self._lock:
                self.session.update_job(self.job_id, device=m.group(1))

    def artifact_dir(self) -> Path:
        return self._workdir

    def artifact(self, name: str, path: Path, kind: str = "file") -> None:
        self._write("artifact", {"name": name, "path": str(path), "artifact_kind": kind})

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()
