"""Running the workbench as a user would, and waiting for what it does."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout the tests run against


def cli(*args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter, as a user would."""
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"workbench {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def free_port() -> int:
    """A free TCP port on the loopback (for servers the tests start)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
