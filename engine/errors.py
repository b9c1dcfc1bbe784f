"""Every error a user can cause, in one leaf module.

The CLI and the TUI catch :class:`UserError` and show ``str(err)`` as one line, with no
traceback; anything else is a bug and keeps its traceback.  This module imports nothing
from ``engine`` so that every layer (the lowest included) can raise these.  The old homes
(``engine.analyses.base.ParamError``, ``engine.data.errors.DataError``,
``engine.reporting.Cancelled``, ...) re-export the same classes.
"""

from __future__ import annotations

__all__ = [
    "UserError",
    "ParamError",
    "ResourceError",
    "ParallelError",
    "DataError",
    "SessionError",
    "SessionBusy",
    "TrainingError",
    "NonFiniteLoss",
    "LibraryTooLarge",
    "Cancelled",
]


class UserError(Exception):
    """Something the user can fix; ``str(err)`` is a one-line message that says what."""


class ParamError(UserError, ValueError):
    """A parameter given with --set (or in the TUI) is unknown, has the wrong type or is out of range."""


class ResourceError(ParamError):
    """A request needs more memory (or other resources) than this machine can give."""


class ParallelError(ParamError):
    """A bad backend setting, a missing optional package, or an unreachable cluster."""


class DataError(UserError, ValueError):
    """Bad or unreadable input data; ``str(err)`` is a one-line message for the user."""


class SessionError(UserError):
    """A session cannot be opened or written; the message says why and what to do."""


class SessionBusy(SessionError):
    """Another process held the store's lock for longer than the busy timeout."""


class TrainingError(UserError, RuntimeError):
    """Base class of errors raised by the training loop."""


class NonFiniteLoss(TrainingError):
    """The loss became NaN or infinite; ``step`` is where, ``last_good_step`` the last checkpoint."""

    def __init__(self, message: str, step: int, last_good_step: int | None):
        super().__init__(message)
        self.step = step
        self.last_good_step = last_good_step


class LibraryTooLarge(UserError, ValueError):
    """A SINDy library refused before allocation (one line: features, memory, the limit)."""


class Cancelled(Exception):
    """Raised by engine code when it stopped at a safe point after a cancel request.

    Not a :class:`UserError`: a cancel is no mistake, and the job runner records it as
    ``cancelled`` rather than ``failed``."""
