"""A private tmux server for the tests that drive the TUI in a real terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import threading
import time
import uuid


class Tmux:
    """A private tmux server (its own socket), so the test never touches the user's."""

    def __init__(self) -> None:
        self.socket = f"wb-test-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str, check: bool = True) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=10, check=check).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "wb")

    def wait_screen(self, *words: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if all(w in text for w in words):
                return text
            time.sleep(0.2)
        raise AssertionError(f"{words} not on screen after {timeout} s:\n{text}")

    def attach(self) -> tuple[subprocess.Popen, int]:
        """A client in a pty of its own, as an SSH login's terminal would be; its output drained."""
        master, slave = pty.openpty()
        proc = subprocess.Popen(["tmux", "-L", self.socket, "attach", "-t", "wb"], stdin=slave,
                                stdout=slave, stderr=slave, env=dict(os.environ, TERM="xterm-256color"),
                                start_new_session=True)
        os.close(slave)

        def drain() -> None:
            try:
                while os.read(master, 65536):
                    pass
            except OSError:
                pass

        threading.Thread(target=drain, daemon=True).start()
        return proc, master

    def clients(self) -> list[str]:
        return [c for c in self("list-clients", "-t", "wb", check=False).splitlines() if c]
