"""An analysis for the fault suite: a tiny real training through ``engine.train.fit``.

Registered by the fault tests as ``fault=tests.fault_analysis``.  The ``train`` step
checkpoints every step (so a kill at a random moment often lands inside a checkpoint
write) and can inject faults on request:

* ``nan_at=k``   the loss of training step k is NaN;
* ``oom_at=k``   the model raises ``torch.cuda.OutOfMemoryError`` at step k;
* ``stall_at=k`` the checkpoint of step k is half written, then the write stalls (a
  marker file ``stalled`` says so) until the process is killed;
* ``sleep``      seconds slept per step (spreads random kills over the step).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.analyses.base import Analysis, Step, StepContext


def _model(width: int):
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Tanh(), torch.nn.Linear(width, 4))


class _Faulty:
    """Counts training forward passes; raises a simulated CUDA OOM at the chosen one."""

    def __init__(self, model, oom_at: int, sleep: float):
        self.model, self.oom_at, self.sleep, self.calls = model, oom_at, sleep, 0

    def __call__(self, x):
        self.calls += 1
        if self.sleep:
            time.sleep(self.sleep)
        if self.oom_at and self.calls == self.oom_at:
            import torch

            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.1 GiB total capacity)")
        return self.model(x)


def _stall_checkpoint(step: int, marker: Path) -> None:
    """Make the write of ``step_<step>.pt`` stop half way, as if killed during it."""
    import engine.train.checkpoint as T

    real = T.write_with
    name = f"step_{step:08d}.pt"

    def write_with(path, writer):
        if Path(path).name != name:
            return real(path, writer)

        def torn(tmp):
            writer(tmp)
            size = tmp.stat().st_size
            with open(tmp, "r+b") as fh:
                fh.truncate(size // 2)
            marker.write_text(str(tmp))
            time.sleep(120)  # killed here

        return real(path, torn)

    T.write_with = write_with


def train(ctx: StepContext, p: dict) -> dict:
    import torch

    from engine.train import TrainConfig, fit

    torch.set_num_threads(1)
    workdir = ctx.checkpoint_dir("train")
    if p["stall_at"] and not (ctx.workdir / "stalled").exists():  # once: a resume writes it whole
        _stall_checkpoint(p["stall_at"], ctx.workdir / "stalled")
    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, p["width"], generator=g)
    y = torch.tanh(x[:, :4])
    net = _model(p["width"])
    faulty = _Faulty(net, p["oom_at"], p["sleep"])
    model = torch.nn.Module()
    model.net = net
    model.forward = faulty  # type: ignore[method-assign]
    nan_at = p["nan_at"]
    seen = {"n": 0}

    def loss_fn(pred, target):
        seen["n"] += 1
        loss = torch.nn.functional.mse_loss(pred, target)
        if nan_at and seen["n"] == nan_at:
            loss = loss * float("nan")
        return loss

    cfg = TrainConfig(steps=p["steps"], batch_size=p["batch_size"], lr=1e-3, checkpoint_every=p["ckpt_every"],
                      keep_checkpoints=3, log_every=1, val_every=10_000, device="cpu", amp=False)
    res = fit(model, (x, y), None, cfg, reporter=ctx.reporter, workdir=workdir, resume=ctx.resuming,
              loss_fn=loss_fn)
    (ctx.workdir / "history.json").write_text(json.dumps(res.history["train_loss"]))
    return {"step": res.step, "resumed_from": res.resumed_from, "status": res.status,
            "device": res.device.get("device", "cpu")}


ANALYSIS = Analysis(
    name="fault",
    title="fault-injection analysis (tests only)",
    steps=(
        Step("train", "tests.fault_analysis:train", "tiny MLP trained through engine.train.fit",
             {"steps": 40, "width": 64, "batch_size": 16, "ckpt_every": 1, "sleep": 0.0,
              "nan_at": 0, "oom_at": 0, "stall_at": 0}),
    ),
)
