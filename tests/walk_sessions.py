"""One session holding a small finished run of EVERY analysis, made by the analyses' own
steps with tiny parameters (seconds, not minutes): what the TUI walk tests browse."""

from __future__ import annotations

from pathlib import Path

from engine.session import Session

# the smallest sizes each analysis runs end to end with (every step, real code)
TINY: dict[str, dict] = {
    "demo": {"trajectories": 6, "timesteps": 60, "iterations": 30, "sweep": 6, "horizon": 20,
             "hidden": 8, "batch_size": 64},
    "lds": {"trials": 6, "neurons": 20, "steps": 30, "latents": 2, "hidden": 4, "iterations": 20,
            "heldout_trials": 2, "readout_iterations": 20, "log_every": 5, "sindy_val_trials": 2},
    "retina": {"cells": 3, "frames": 800, "test_frames": 300, "n_frames": 5, "units": 3,
               "iterations": 10, "batch_size": 4, "seq_len": 8, "samples": 600, "horizon": 10,
               "max_test_frames": 300, "control_pcs": 1, "sweep_amounts": "0.5", "sweep_finetune": 0,
               "sweep_samples": 600},
    "mei": {"n_neurons": 6, "n_images": 20, "repeats": 3, "size": 12, "train_steps": 20,
            "mei_steps": 5, "mei_starts": 1, "hidden_channels": 4, "layers": 1, "input_kernel": 5},
    "connectome": {"n_neurons": 32, "grid": 4, "n_frames": 60, "n_runs": 1, "steps": 20,
                   "refine_steps": 5, "hidden": 8, "siren_hidden": 8, "siren_layers": 1,
                   "rollout_frames": 10, "batch_size": 8},
    "stimulus": {"n_neurons": 32, "grid": 4, "n_frames": 60, "n_runs": 1, "steps": 20,
                 "refine_steps": 5, "hidden": 8, "siren_hidden": 8, "siren_layers": 1,
                 "rollout_frames": 10, "batch_size": 8},
}


def make_walk_session(root: Path, name: str = "walk", analyses: tuple[str, ...] = tuple(TINY)) -> dict[str, str]:
    """Run each analysis (all steps, in this process) into one session; {analysis: job state}."""
    from engine.jobs import runner

    states = {}
    with Session.open(name, root) as s:
        for analysis in analyses:
            job = runner.submit(s, analysis, None, TINY[analysis])
            done = runner.run_job(s, job)
            states[analysis] = done.state if not done.error else f"{done.state}: {done.error}"
    return states
