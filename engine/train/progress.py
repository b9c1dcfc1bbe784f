"""Progress reports of the training loop: step rate, throughput, a steady ETA, GPU memory."""

from __future__ import annotations

import time

import torch

from engine.device import memory_stats
from engine.reporting import Reporter


class ProgressMeter:
    """Rates since the last report, and the ETA from the whole run's mean rate.

    The rate of the last interval alone made the ETA jump (13 s, 9 min, 24 s...) whenever
    a validation or another process took the CPU; the run's mean (validation and
    checkpoints included) does not.
    """

    def __init__(self, step: int) -> None:
        now = time.perf_counter()
        self.t_run, self.s_run = now, step
        self.t_log, self.s_log, self.n_log = now, step, 0
        self.samples = 0

    def count(self, n: int) -> None:
        self.samples += n
        self.n_log += n

    def report(self, reporter: Reporter, step: int, total: int, loss: float, device: torch.device) -> None:
        now = time.perf_counter()
        span = max(now - self.t_log, 1e-9)
        mean_rate = (step - self.s_run) / max(now - self.t_run, 1e-9)
        eta = (total - step) / mean_rate if mean_rate > 0 else None
        reporter.progress(
            step, total, f"step {step}/{total} loss {loss:.4g}",
            eta_s=eta, samples_per_s=self.n_log / span, steps_per_s=(step - self.s_log) / span, loss=loss,
        )
        for name, value in memory_stats(device).items():
            reporter.metric(name, value, step=step)
        self.t_log, self.s_log, self.n_log = now, step, 0
