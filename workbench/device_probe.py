"""Device facts for the status line and the jobs screen without importing torch into the TUI.

nvidia-smi answers in milliseconds and sees every process's memory (as nvitop
does); without it the machine is described by its CPU count.  Each GPU dict has
``index, name, mem_used, mem_total, util`` (MiB, %) and ``procs``: {pid: MiB} of the
compute processes on it, so the jobs screen can show each job's GPU memory.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def _smi(smi: str, query: str, what: str) -> list[list[str]]:
    out = subprocess.run([smi, f"--query-{what}={query}", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=3, check=True).stdout
    return [[x.strip() for x in line.split(",")] for line in out.strip().splitlines() if line.strip()]


def parse_gpus(gpu_rows: list[list[str]], app_rows: list[list[str]]) -> list[dict]:
    """GPU dicts from nvidia-smi's CSV rows (split out for tests without a GPU)."""
    gpus, by_uuid = [], {}
    for index, uuid, name, used, total, util in gpu_rows:
        g = {"index": int(index), "name": name, "mem_used": float(used), "mem_total": float(total),
             "util": float(util) if util.replace(".", "", 1).isdigit() else 0.0, "procs": {}}
        gpus.append(g)
        by_uuid[uuid] = g
    for uuid, pid, mem in app_rows:
        if uuid in by_uuid and pid.isdigit():
            try:
                by_uuid[uuid]["procs"][int(pid)] = float(mem)
            except ValueError:
                pass  # "[N/A]" under some drivers
    return gpus


def describe(gpus: list[dict]) -> str:
    g = gpus[0]
    text = f"{g['name']} {g['mem_used'] / 1024:.1f}/{g['mem_total'] / 1024:.0f} GiB {g['util']:.0f}%"
    if len(gpus) > 1:
        text += f" (+{len(gpus) - 1} GPU)"
    return text


def probe() -> tuple[str, list[dict]]:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            gpus = parse_gpus(
                _smi(smi, "index,uuid,name,memory.used,memory.total,utilization.gpu", "gpu"),
                _smi(smi, "gpu_uuid,pid,used_memory", "compute-apps"))
            if gpus:
                return describe(gpus), gpus
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    return f"CPU ({os.cpu_count()} cores)", []
