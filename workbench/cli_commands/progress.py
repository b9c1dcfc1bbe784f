"""The progress of a job on stderr: one updating line on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any

from workbench.format import fmt_duration


class _ProgressPrinter:
    """One updating progress line on a terminal, plain lines otherwise; all on stderr."""

    def __init__(self, quiet: bool = False):
        self.tty = sys.stderr.isatty()
        self.quiet = quiet
        self.step = ""
        self._open_line = False
        self.gone = False

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "step":
            self.step = payload["step"]
            self._line(f"[{self.step}] started", final=True)
        elif kind == "progress":
            done, total = payload["done"], payload["total"]
            if not total and payload.get("message") == "starting":
                return  # a step's fresh start: its "[step] started" line says it
            pct = f"{100 * done / total:5.1f}%" if total else ""
            eta = payload.get("eta_s")
            eta_s = f" ETA {fmt_duration(eta)}" if eta is not None else ""
            msg = payload.get("message") or ""
            self._line(f"[{self.step}] {done}/{total} {pct}{eta_s} {msg}".rstrip(),
                       final=not self.tty)
        elif kind == "log":
            self._line(f"[{self.step}] {payload['message']}", final=True)
        elif kind == "metric" and not self.tty and not self.quiet:
            pass  # metrics go to the session; the progress message carries the headline

    def _line(self, text: str, final: bool) -> None:
        if self.gone:
            return
        from engine.text import safe_text

        text = safe_text(text)  # a step's messages may quote a file's names
        try:
            if self.tty:
                sys.stderr.write("\r\033[K" + text + ("\n" if final else ""))
                self._open_line = not final
            elif final or not self.quiet:
                sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except OSError:  # the terminal hung up (EIO/EPIPE): the job must not fail for it
            self.gone = True

    def close(self) -> None:
        if self._open_line and not self.gone:
            try:
                sys.stderr.write("\n")
            except OSError:
                self.gone = True
