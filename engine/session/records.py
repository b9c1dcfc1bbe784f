"""The rows the store hands out: a job and one of its events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.session.schema import ACTIVE_STATES


@dataclass
class Job:
    id: str
    analysis: str
    steps: list[str]
    params: dict[str, Any]
    state: str
    pid: int | None
    host: str | None
    device: str | None
    created: float
    started: float | None
    ended: float | None
    heartbeat: float | None
    current_step: str | None
    error: str | None
    result: dict[str, Any] | None
    resume_of: str | None = None
    seen: bool = False
    workdir: str | None = None  # relative to the session; None: a job from before schema 3
    source: str | None = None  # the earlier job whose files this job started from
    pid_start: str | None = None  # the worker's process start time (engine.jobs.liveness)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass
class Event:
    id: int
    job_id: str
    ts: float
    kind: str
    payload: dict[str, Any]
