"""Messages posted by the app's background workers.

The one way a thread worker reaches the UI: it builds one of these and calls
``post_message`` (thread-safe); the handler runs on the UI thread.  Workers never
call widget methods, and never ``call_from_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from engine.session import Event, Job


@dataclass
class StoreUpdate(Message):
    """What changed in the session store since the last poll."""

    jobs: list[Job]
    events: list[Event]
    tables_max_id: int = 0
    equations_max_id: int = 0
    first: bool = False
    progress: dict[str, dict] = field(default_factory=dict)  # latest progress of active jobs


@dataclass
class DeviceInfo(Message):
    """The compute device the status line shows (probed without importing torch)."""

    text: str
    gpus: list[dict] = field(default_factory=list)


@dataclass
class JobEventsLoaded(Message, bubble=False):
    """A job's events (and those of the jobs it resumed), read for the Training pane."""

    job_id: str
    events: list[Event]


@dataclass
class FigureLoaded(Message, bubble=False):
    """A view's figure, or the one line that says why there is none."""

    figure: Any
    error: str | None


@dataclass
class ReportWritten(Message, bubble=False):
    """The session report is on disk."""

    text: str


@dataclass
class TablesLoaded(Message, bubble=False):
    """The session's metric tables and seed sweeps, read for the Results pane."""

    tables: list[dict]
    sweeps: list[Any]
