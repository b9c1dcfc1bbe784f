"""Device facts for the status line without importing torch into the TUI.

nvidia-smi answers in milliseconds and sees every process's memory (as nvitop
does); without it the machine is described by its CPU count.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def probe() -> tuple[str, list[dict]]:
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name,memory.used,memory.total,utilization.gpu",
                 "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=3, check=True,
            ).stdout
            gpus = []
            for line in out.strip().splitlines():
                name, used, total, util = [x.strip() for x in line.split(",")]
                gpus.append({"name": name, "mem_used": float(used), "mem_total": float(total),
                             "util": float(util)})
            if gpus:
                g = gpus[0]
                text = (f"{g['name']} {g['mem_used'] / 1024:.1f}/{g['mem_total'] / 1024:.0f} GiB "
                        f"{g['util']:.0f}%")
                if len(gpus) > 1:
                    text += f" (+{len(gpus) - 1} GPU)"
                return text, gpus
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    return f"CPU ({os.cpu_count()} cores)", []
