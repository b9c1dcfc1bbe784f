"""What every subcommand shares: the sessions root, opening a session, asking y/N, step lists."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import UserError


def _root(args: argparse.Namespace) -> Path:
    from engine.session import default_root

    return Path(args.root).expanduser() if args.root else default_root()


def _root_reason(args: argparse.Namespace) -> str:
    from engine.session import root_and_reason

    return "--root" if args.root else root_and_reason()[1]


def _open_session(args: argparse.Namespace, name: str | None = None, create: bool = True):
    from engine.session import Session

    return Session.open(name or args.session, _root(args), create=create)


def _split_steps(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def _confirm(question: str, flag: str = "--yes") -> bool:
    """Ask y/N on the terminal; without one, refuse and name the flag that skips the question."""
    if not sys.stdin.isatty():
        raise UserError(f"{question.rstrip('? ')}: no terminal to ask on; add {flag} to go ahead")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
