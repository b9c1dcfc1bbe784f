"""BLAS thread policy: one thread for the many small solves, the idle cores for the Gram.

Small factorisations gain nothing from threads, and on a shared machine (a GPU server with
training jobs) OpenBLAS's spinning threads make them 10-100x slower; the one big Gram product
is level-3 BLAS and scales with the cores nobody else is using.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

__all__ = ["single_threaded_blas", "gram_blas_threads"]

_CONTROLLER: Any = None


def single_threaded_blas():
    """Context manager: BLAS/LAPACK on one thread for the many small solves.

    The big Gram product keeps the library's default threads (:func:`gram_blas_threads`).
    A no-op if threadpoolctl is missing.
    """
    return _blas_limit(1)


def _blas_limit(n: int):
    """``threadpoolctl`` limit of the BLAS threads to ``n`` (the limit applies on creation)."""
    global _CONTROLLER
    try:
        if _CONTROLLER is None:
            import scipy.linalg.lapack  # noqa: F401  (load scipy's BLAS before scanning)
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        return _CONTROLLER.limit(limits=n, user_api="blas")
    except Exception:  # pragma: no cover - threadpoolctl absent or failing
        return contextlib.nullcontext()


def gram_blas_threads():
    """Context manager for the one big Gram product: BLAS threads for the idle cores only.

    An idle machine gets all its cores (the product is level-3 BLAS and scales); a busy one
    (other runnable tasks right now, from ``/proc/loadavg``: e.g. training jobs beside the
    TUI) gets what is left, at least one, since oversubscribed OpenBLAS threads spin and run
    10-30x slower.
    """
    try:
        ncpu = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        ncpu = os.cpu_count() or 1
    busy: float  # other runnable tasks, or the load average where /proc cannot say
    try:  # runnable tasks right now (the 4th field of /proc/loadavg counts this one too)
        with open("/proc/loadavg") as fh:
            busy = int(fh.read().split()[3].split("/")[0]) - 1
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0
    n = max(1, min(ncpu, int(ncpu - busy + 0.5)))
    if n >= ncpu:
        return contextlib.nullcontext()
    return _blas_limit(n)
