"""Messages posted by the app's background workers."""

from __future__ import annotations

from dataclasses import dataclass, field

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
