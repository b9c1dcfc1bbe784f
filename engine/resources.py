"""Memory estimates before large allocations: a request beyond the machine is one line.

``--set trajectories=100000000`` used to reach numpy and the kernel, which answered with a
MemoryError traceback minutes later or with the OOM killer.  A step that is about to
allocate in proportion to its parameters first calls :func:`require_memory` with what it
will need; beyond what the machine can give, it raises :class:`ResourceError` (a
:class:`ParamError`, so the CLI and the job log show one line) naming the parameters and
the need, before anything is allocated.
"""

from __future__ import annotations

import math
import os
from typing import Any

from engine.errors import ResourceError

__all__ = ["ResourceError", "available_memory", "fmt_bytes", "memory_problem", "require_memory"]

# at most this share of the available memory for one request: the rest is the OS, other
# jobs, and what the estimate leaves out (temporaries)
USABLE_FRACTION = 0.8
ENV_LIMIT = "WORKBENCH_MEMORY_LIMIT"  # bytes; a lower ceiling (tests, shared machines)


def available_memory() -> int:
    """Bytes this process can still allocate: available RAM, capped by a cgroup limit and
    by ``$WORKBENCH_MEMORY_LIMIT``."""
    avail = _meminfo_available()
    for cap in (_cgroup_room(), _env_limit()):
        if cap is not None:
            avail = min(avail, cap)
    return avail


def _meminfo_available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 62


def _cgroup_room() -> int | None:
    """Room left under a cgroup v2 memory limit (containers, batch schedulers)."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as fh:
            used = int(fh.read().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def _env_limit() -> int | None:
    value = os.environ.get(ENV_LIMIT, "").strip()
    if not value:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def fmt_bytes(n: float) -> str:
    """1536 -> '1.5 KiB', 6.4e11 -> '596 GiB'."""
    if not math.isfinite(n):
        return "an unbounded amount"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit in ("bytes", "PiB") or n >= 100 else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def memory_problem(nbytes: float, what: str, params: dict[str, Any] | str | None = None) -> str | None:
    """The one line :func:`require_memory` would raise, or None when ``nbytes`` fits."""
    avail = available_memory()
    if nbytes <= USABLE_FRACTION * avail:
        return None
    if isinstance(params, dict):
        named = ", ".join(f"{k}={v}" for k, v in params.items())
        lower = " or ".join(params)
    else:
        named = lower = params or ""
    because = f" ({named})" if named else ""
    advice = f"; lower {lower}" if lower else ""
    return (f"{what} needs about {fmt_bytes(nbytes)} of memory{because}, more than this machine "
            f"can give ({fmt_bytes(avail)} available){advice}")


def require_memory(nbytes: float, what: str, params: dict[str, Any] | str | None = None,
                   error: type[Exception] = ResourceError) -> None:
    """Raise ``error`` with one line if ``nbytes`` is more than this machine can give.

    ``params`` names what the user can change: ``{"trajectories": 10**8, "timesteps": 400}``
    or just ``"hidden"``.  The data layer passes ``error=DataError`` (a file, not a
    parameter, is what is too big)."""
    problem = memory_problem(nbytes, what, params)
    if problem is not None:
        raise error(problem)
