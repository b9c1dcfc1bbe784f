"""Per-step cost of ``engine.train.fit`` against a bare ncps training loop.

Both loops train the same RetinaCfC (conv encoder + ncps CfC) from the same
initial weights on the same pre-made batches with AdamW and the Poisson loss;
the bare loop is a plain ``for`` loop (zero_grad, forward, loss, backward,
step).  ``fit`` runs with clipping, AMP and validation off so the arithmetic is
identical and the difference is the loop's own overhead (cancel checks,
batch plumbing, loss bookkeeping, progress/metric events).  Blocks of the two
are interleaved and the median per-step time of each is reported, so a noisy
shared machine hurts both alike.

Prints one JSON line.  ``python -m benchmarks.bench_train [--device cuda]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _TimedBatches:
    """Cycles pre-made batches and timestamps the fetches that bracket the timed steps."""

    def __init__(self, batches, warmup: int, steps: int, device):
        self.batches, self.warmup, self.steps, self.device = batches, warmup, steps, device
        self.marks: list[float] = []
        self.cpu_marks: list[float] = []

    def __call__(self, epoch: int = 0):
        i = 0
        while True:
            if i in (self.warmup, self.warmup + self.steps):
                _sync(self.device)
                self.marks.append(time.perf_counter())
                self.cpu_marks.append(time.process_time())
            yield self.batches[i % len(self.batches)]
            i += 1

    def ms_per_step(self) -> float:
        return (self.marks[1] - self.marks[0]) * 1000 / self.steps

    def cpu_ms_per_step(self) -> float:
        # CPU time of this process: far less sensitive than wall time to other
        # jobs on a shared machine (meaningful on CPU only; on CUDA it is host time).
        return (self.cpu_marks[1] - self.cpu_marks[0]) * 1000 / self.steps


def _bare_loop(model, timed: _TimedBatches, lr: float) -> None:
    import torch
    import torch.nn.functional as F

    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for i, (x, y) in enumerate(timed()):
        if i == timed.warmup + timed.steps:
            break
        opt.zero_grad(set_to_none=True)
        rates, _ = model(x)
        loss = F.poisson_nll_loss(rates, y, log_input=False, eps=1e-8)
        loss.backward()
        opt.step()


def main(argv=None) -> dict:
    import torch

    from engine.device import describe, pick_device
    from engine.models.retina_cfc import RetinaCfC, RetinaCfCConfig
    from engine.reporting import NullReporter
    from engine.train import TrainConfig, fit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per block")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=6, help="interleaved blocks of each loop")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: 1 on CPU, as is on GPU)")
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    # One thread on CPU: this small model runs faster and steadier that way on a
    # shared 2-core box, and the timing then measures our code, not contention.
    if args.threads or device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    cfg = RetinaCfCConfig()  # the real retina shape: 10 frames of 50x50, 9 cells
    torch.manual_seed(0)
    model = RetinaCfC(cfg).to(device)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.rand(args.batch_size, args.seq_len, cfg.n_frames, *cfg.frame_size, generator=g).to(device),
            torch.poisson(torch.full((args.batch_size, args.seq_len, cfg.n_cells), 0.5), generator=g).to(device),
        )
        for _ in range(4)
    ]
    lr = 1e-3
    total = args.warmup + args.steps + 1
    ours, bare, ours_amp, ours_cpu, bare_cpu = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        def run_bare():
            model.load_state_dict(init)
            timed = _TimedBatches(batches, args.warmup, args.steps, device)
            _bare_loop(model, timed, lr)
            bare.append(timed.ms_per_step())
            bare_cpu.append(timed.cpu_ms_per_step())

        def run_ours(block):
            model.load_state_dict(init)
            timed = _TimedBatches(batches, args.warmup, args.steps, device)
            fit(model, timed, None, tcfg, NullReporter(tmp), f"{tmp}/run{block}", resume=False)
            ours.append(timed.ms_per_step())
            ours_cpu.append(timed.cpu_ms_per_step())

        tcfg = TrainConfig(steps=total, lr=lr, loss="poisson", clip_grad=None, amp=False, device=str(device),
                           checkpoint_every=10**9, log_every=20)
        for block in range(args.blocks):
            # Alternate which loop goes first so drift in machine load hits both alike.
            if block % 2 == 0:
                run_bare()
                run_ours(block)
            else:
                run_ours(block)
                run_bare()

            if device.type == "cuda":
                model.load_state_dict(init)
                timed = _TimedBatches(batches, args.warmup, args.steps, device)
                fit(model, timed, None, TrainConfig(**{**tcfg.to_dict(), "amp": True}), NullReporter(tmp),
                    f"{tmp}/amp{block}", resume=False)
                ours_amp.append(timed.ms_per_step())

    ours_ms, bare_ms = statistics.median(ours), statistics.median(bare)
    out = {
        "name": "train_step",
        "ours_ms_per_step": round(ours_ms, 3),
        "bare_ms_per_step": round(bare_ms, 3),
        "overhead_ratio": round(ours_ms / bare_ms, 4),
        "anchor": "bare ncps loop, same model and data",
        "device": describe(device).get("name", str(device)),
        "device_type": device.type,
        "batch": [args.batch_size, args.seq_len, cfg.n_frames, *cfg.frame_size],
        "steps_per_block": args.steps,
        "blocks": args.blocks,
        "ours_blocks_ms": [round(v, 3) for v in ours],
        "bare_blocks_ms": [round(v, 3) for v in bare],
        "threads": torch.get_num_threads(),
        "ours_cpu_ms_per_step": round(statistics.median(ours_cpu), 3),
        "bare_cpu_ms_per_step": round(statistics.median(bare_cpu), 3),
        "overhead_ratio_cpu_time": round(statistics.median(ours_cpu) / statistics.median(bare_cpu), 4),
    }
    if ours_amp:
        out["ours_amp_ms_per_step"] = round(statistics.median(ours_amp), 3)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
