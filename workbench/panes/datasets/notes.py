"""What a browser of the Datasets pane tells the pane: a status line, and what the info box shows."""

from __future__ import annotations

from typing import Any

from textual.message import Message
from textual.worker import get_current_worker

__all__ = ["PaneNote", "WorkerStop"]


class PaneNote(Message):
    """A status line for the pane (``error``: shown whole, in the error style) and, when
    given, a new renderable for the info box above it."""

    def __init__(self, status: str | None = None, *, error: bool = False, info: Any = None) -> None:
        super().__init__()
        self.status, self.error, self.info = status, error, info


class WorkerStop:
    """The current thread worker's cancel flag as the event h5tree checks between reads."""

    def __init__(self) -> None:
        self._worker = get_current_worker()

    def is_set(self) -> bool:
        return self._worker.is_cancelled
