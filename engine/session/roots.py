"""Where sessions live, and what a session may be called."""

from __future__ import annotations

import os
import re
from pathlib import Path

from engine.errors import SessionError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# The one rule for where sessions live; the CLI's help, `workbench sessions` and the README
# say it in these words.
ROOT_RULE = ("--root, else $WORKBENCH_SESSIONS, else sessions/ in the workbench's own checkout "
             "(a source install), else the user data folder")


def root_and_reason() -> tuple[Path, str]:
    """Where sessions live when no --root is given, and why there (see ROOT_RULE)."""
    env = os.environ.get("WORKBENCH_SESSIONS")
    if env:
        return Path(env).expanduser(), "$WORKBENCH_SESSIONS"
    project = Path(__file__).resolve().parents[2] / "sessions"  # engine/session/roots.py
    if project.is_dir() and os.access(project, os.W_OK):
        return project, "the checkout's sessions/ folder"
    import platformdirs

    return Path(platformdirs.user_data_dir("neuro-workbench")) / "sessions", "the user data folder"


def default_root() -> Path:
    """Where sessions live: $WORKBENCH_SESSIONS, else the checkout's ``sessions/`` folder
    (a source install), else the platform's user data folder.  Never the current folder."""
    return root_and_reason()[0]


def check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise SessionError(
            f"invalid session name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    return name


def list_sessions(root: Path | None = None) -> list[str]:
    root = root or default_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "session.sqlite").is_file())
