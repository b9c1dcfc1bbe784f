"""Is a job's worker process alive?  By pid, process start time and host — never by heartbeat.

A pid alone is not an identity: after the worker dies the kernel may hand the same pid to
an unrelated process, and ``os.kill(pid, 0)`` would call the job alive (or ``cancel``
would signal a stranger).  A late heartbeat alone is not death either: a worker stopped by
SIGSTOP or Ctrl-Z, a suspended laptop or a paused VM beats again when it continues.  So
a worker is recorded as (host, pid, start time), and it is alive exactly when this host
has a process with that pid that started at that time.
"""

from __future__ import annotations

import os
import socket
from enum import Enum
from pathlib import Path


class Liveness(Enum):
    ALIVE = "alive"
    DEAD = "dead"
    ELSEWHERE = "elsewhere"  # another machine's worker: only that host can judge it


def host() -> str:
    return os.uname().nodename or socket.gethostname()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def start_time(pid: int) -> str | None:
    """An identity for the process ``pid`` that a reused pid does not share; None if there
    is no such process (or no way to tell here)."""
    try:  # Linux: starttime in clock ticks since boot (field 22), plus which boot
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        if fields[0] == "Z":  # a zombie is dead for our purposes
            return None
        return f"{_boot_id()}:{fields[19]}"
    except FileNotFoundError:
        return None
    except (OSError, IndexError):
        pass
    try:  # elsewhere (macOS): psutil when installed
        import psutil

        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return f"{p.create_time():.2f}"
    except ImportError:
        return "" if _pid_exists(pid) else None
    except Exception:  # noqa: BLE001 - NoSuchProcess and friends
        return None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check(pid: int | None, pid_start: str | None, job_host: str | None) -> Liveness:
    """Whether the worker recorded as (pid, pid_start, job_host) still runs."""
    if job_host and job_host != host():
        return Liveness.ELSEWHERE
    if not pid:
        return Liveness.DEAD
    now = start_time(pid)
    if now is None:
        return Liveness.DEAD
    if pid_start and now and now != pid_start:
        return Liveness.DEAD  # the pid now belongs to another process
    return Liveness.ALIVE
