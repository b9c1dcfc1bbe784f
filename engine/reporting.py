"""How engine code reports progress without knowing who listens.

Every long-running engine function takes a ``reporter`` (the job runner wires it
to the session's event log, tests use :class:`NullReporter` or
:class:`RecordingReporter`).  The reporter also carries the cancel flag: long
loops check ``reporter.cancelled`` at safe points, checkpoint, and raise
:class:`Cancelled`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine.errors import Cancelled as Cancelled  # re-exported: most engine code imports it from here


class Reporter(Protocol):
    """What a step may tell the outside world.  All methods are cheap and thread-safe."""

    def progress(self, done: int, total: int, message: str = "", **extra: Any) -> None: ...

    def metric(self, name: str, value: float, step: int | None = None, **extra: Any) -> None: ...

    def log(self, message: str, level: str = "info") -> None: ...

    def artifact_dir(self) -> Path: ...

    def artifact(self, name: str, path: Path, kind: str = "file") -> None: ...

    @property
    def cancelled(self) -> bool: ...


class NullReporter:
    """Discards everything; artifacts go to a directory given at construction (or a temp dir)."""

    def __init__(self, artifact_dir: Path | str | None = None, cancel: threading.Event | None = None):
        if artifact_dir is None:
            import tempfile

            artifact_dir = tempfile.mkdtemp(prefix="wb-artifacts-")
        self._dir = Path(artifact_dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        self.cancel_event = cancel or threading.Event()

    def progress(self, done: int, total: int, message: str = "", **extra: Any) -> None:
        pass

    def metric(self, name: str, value: float, step: int | None = None, **extra: Any) -> None:
        pass

    def log(self, message: str, level: str = "info") -> None:
        pass

    def artifact_dir(self) -> Path:
        return self._dir

    def artifact(self, name: str, path: Path, kind: str = "file") -> None:
        pass

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


@dataclass
class RecordingReporter(NullReporter):
    """Keeps every call in ``events`` (a list of dicts); for tests and in-process runs."""

    artifact_root: Path | str | None = None
    events: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        NullReporter.__init__(self, self.artifact_root)

    def _add(self, kind: str, **payload: Any) -> None:
        self.events.append({"kind": kind, "ts": time.time(), **payload})

    def progress(self, done: int, total: int, message: str = "", **extra: Any) -> None:
        self._add("progress", done=done, total=total, message=message, **extra)

    def metric(self, name: str, value: float, step: int | None = None, **extra: Any) -> None:
        self._add("metric", name=name, value=float(value), step=step, **extra)

    def log(self, message: str, level: str = "info") -> None:
        self._add("log", message=message, level=level)

    def artifact(self, name: str, path: Path, kind: str = "file") -> None:
        self._add("artifact", name=name, path=str(path), artifact_kind=kind)

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["kind"] == kind]
