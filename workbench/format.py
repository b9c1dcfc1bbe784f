"""Formatting shared by the CLI and the TUI (no textual import: the CLI stays light)."""

from __future__ import annotations


def fmt_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``; ``?`` when unknown (an ETA before any progress)."""
    if seconds is None:
        return "?"
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def fmt_eta(progress: dict | None, now: float) -> str:
    """The ETA a progress payload gives, counted down from when it was written; ``?`` when
    unknown or overdue (a loop paused to validate must not show ``ETA 1s`` for ten seconds)."""
    if not progress or progress.get("eta_s") is None:
        return "?"
    eta = float(progress["eta_s"])
    written = progress.get("ts")
    if written is None:
        return fmt_duration(eta)
    left = eta - max(0.0, now - float(written))
    if left < -max(3.0, 0.5 * eta):  # well past it: the estimate no longer means anything
        return "?"
    return fmt_duration(max(left, 0.0))


def current_progress(progress: dict | None, current_step: str | None) -> dict | None:
    """The progress payload if it belongs to the job's current step, else None (the last
    step's ``2/2 100%`` must not show as the next step's)."""
    if not progress:
        return None
    step = progress.get("step")
    if step and current_step and step != current_step:
        return None
    return progress
