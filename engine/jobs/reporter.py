"""A Reporter that writes a job's events to its session.

Progress is throttled (a few writes a second) so a fast loop cannot flood the
store; the last progress of a step and every metric, log and artifact are kept.
ETA is computed here, once, for every engine function that reports progress.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from engine.session import Session

PROGRESS_INTERVAL_S = 0.25


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
        self._t0: float | None = None
        self._lock = threading.Lock()

    def start_step(self, name: str) -> None:
        self._t0 = None
        self._write("step", {"step": name})

    def _write(self, kind: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self.session.add_event(self.job_id, kind, payload)
        if self._echo is not None:
            self._echo(kind, payload)

    def progress(self, done: int, total: int, message: str = "", **extra: Any) -> None:
        now = time.monotonic()
        if self._t0 is None or done <= 0:
            self._t0 = (now, done)
        finished = total and done >= total
        if not finished and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        t0, d0 = self._t0
        rate = (done - d0) / (now - t0) if now > t0 and done > d0 else None
        eta = (total - done) / rate if rate and total else None
        self._write("progress", {"done": done, "total": total, "message": message,
                                 "rate": rate, "eta_s": eta, **extra})

    def metric(self, name: str, value: float, step: int | None = None, **extra: Any) -> None:
        self._write("metric", {"name": name, "value": float(value), "step": step, **extra})

    def log(self, message: str, level: str = "info") -> None:
        self._write("log", {"message": message, "level": level})

    def artifact_dir(self) -> Path:
        return self._workdir

    def artifact(self, name: str, path: Path, kind: str = "file") -> None:
        self._write("artifact", {"name": name, "path": str(path), "artifact_kind": kind})

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()
