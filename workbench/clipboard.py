"""Copying text out of the terminal (OSC 52), and saying when it cannot work.

Inside tmux an application's OSC 52 reaches the system clipboard only with
``set-clipboard on``; tmux's default (``external``) drops it silently, so "copied" would be
a lie.  We ask tmux, and when copies cannot get through we say how to turn them on and save
the text to a file as well.
"""

from __future__ import annotations

import os
import re
import subprocess

_TERMS = re.compile(r"\s+\[\d+ terms?\]\s*$")


def strip_term_counts(text: str) -> str:
    """Equations as one copies them: without the ``[13 terms]`` the pane adds for reading."""
    return "\n".join(_TERMS.sub("", line).rstrip() for line in text.splitlines()).strip() + "\n"


def tmux_blocks_osc52(env: dict[str, str] | None = None, run=subprocess.run) -> str | None:
    """None when copies can get through; otherwise one line saying why and how to fix it."""
    env = os.environ if env is None else env
    if not env.get("TMUX"):
        return None
    try:
        out = run(["tmux", "show-options", "-gv", "set-clipboard"], capture_output=True,
                  text=True, timeout=2).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None  # cannot tell: do not cry wolf
    if out == "on":
        return None
    return (f"tmux drops copies from applications (set-clipboard {out or 'external'}): "
            "add 'set -g set-clipboard on' to ~/.tmux.conf and run 'tmux source ~/.tmux.conf'")
