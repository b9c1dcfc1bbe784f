"""A session whose contents are fixed, so the TUI snapshots are stable."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from engine.session import Session

T0 = 1_790_000_000.0  # a fixed clock for every stored timestamp


def make_snapshot_session(root: Path, name: str = "snap") -> Session:
    import h5py

    s = Session.open(name, root)
    job = s.create_job("demo", ["generate", "train"], {"lr": 0.003}, job_id="snap-0001")
    s.update_job(job, state="running", device="cpu", current_step="train", started=T0,
                 heartbeat=T0, pid=None)
    items = [("step", {"step": "train"}), ("log", {"message": "device cpu (2 threads)"})]
    for i in range(1, 31):
        step = i * 50
        items.append(("metric", {"name": "train_loss", "value": 2.0 * math.exp(-i / 8) + 0.1, "step": step}))
        if i % 3 == 0:
            items.append(("metric", {"name": "val_loss", "value": 2.1 * math.exp(-i / 9) + 0.15, "step": step}))
            items.append(("metric", {"name": "val_corr", "value": 0.9 * (1 - math.exp(-i / 6)), "step": step}))
    items.append(("artifact", {"name": "step_001500.pt", "path": "x", "artifact_kind": "checkpoint"}))
    items.append(("progress", {"done": 1500, "total": 1500, "message": "", "rate": 120.0, "eta_s": 0.0}))
    s.add_events(job, items)
    s.finish_job(job, "finished", result={"val_mse": 0.12})
    frame = pd.DataFrame(
        {"diverged": [False, False, False, True], "mae": [0.081, 0.083, 0.142, float("nan")],
         "mae:0": [0.07, 0.071, 0.15, float("nan")], "mae:1": [0.09, 0.095, 0.13, float("nan")]},
        index=["CfC", "CfC-pruned", "SINDy", "SINDy-pruned"])
    s.save_table("retina MAE", frame, job_id=job)
    s.save_equations("demo: SINDy on trajectories", {
        "state_names": ["x0", "x1"], "feature_names": ["1", "x0", "x1", "x0^3", "x1^3"],
        "coef": [[0.0, 0.0, 0.0, -0.1, 2.0], [0.0, 0.0, 0.0, -2.0, -0.1]],
        "threshold": 0.05, "val_error": 0.0012}, job_id=job)
    with s._write() as c:  # freeze every timestamp for stable snapshots
        c.execute("UPDATE events SET ts=?", (T0,))
        c.execute("UPDATE jobs SET created=?, ended=?, seen=1", (T0, T0 + 60))
    demo = s.artifact_dir("demo") / "demo.h5"
    with h5py.File(demo, "w") as f:
        t = np.linspace(0, 4 * np.pi, 200)
        f.create_dataset("latents", data=np.stack([np.sin(t), np.cos(t)], 1).astype("f4"))
        f.create_dataset("frames", data=(np.indices((10, 12, 12)).sum(0) % 7).astype("u1"))
    return s
