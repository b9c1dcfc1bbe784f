"""The one place that picks a compute device: CUDA, then MPS, then CPU."""

from __future__ import annotations

from typing import Any


def pick_device(preferred: str | None = None):
    """Return a ``torch.device``; ``preferred`` ("cuda", "cpu", "cuda:1", "auto"/None) overrides."""
    import torch

    if preferred and preferred != "auto":
        dev = torch.device(preferred)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {preferred!r} asked for, but CUDA is not available here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe(device) -> dict[str, Any]:
    """Plain-data description recorded with every job: type, name, memory."""
    import torch

    info: dict[str, Any] = {"device": str(device), "type": device.type}
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        info.update(name=props.name, memory_total=props.total_memory)
    elif device.type == "cpu":
        import os
        import platform

        info.update(name=platform.processor() or platform.machine(), threads=torch.get_num_threads(), cores=os.cpu_count())
    else:
        info.update(name=device.type.upper())
    return info


def memory_stats(device) -> dict[str, float]:
    """GPU memory in use / peak in MiB (empty on CPU)."""
    import torch

    if device.type != "cuda":
        return {}
    return {
        "gpu_mem_mib": torch.cuda.memory_allocated(device) / 2**20,
        "gpu_mem_peak_mib": torch.cuda.max_memory_allocated(device) / 2**20,
    }
