"""What every benchmark shares: best-of-N timing and the machine's state beside the figures."""

from __future__ import annotations

import os
import time


def best_of(fn, repeats: int) -> tuple[float, object]:
    """Fastest of ``repeats`` calls of ``fn`` (seconds) and the last result: on a shared machine
    the minimum is the figure least moved by other work."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def machine() -> dict:
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover
        load = None
    return {"cpu_count": os.cpu_count(), "load_avg": load}
