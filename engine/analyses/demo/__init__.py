"""The demo analysis: small, real, and fast (about 20 s on a laptop CPU).

A damped cubic oscillator (the classic SINDy example,
x' = -0.1 x^3 + 2 y^3, y' = -2 x^3 - 0.1 y^3) is simulated from random initial
states.  ``train`` fits an MLP vector field to it through the shared training
loop; ``sindy`` distils sparse equations from the same trajectories; ``evaluate``
rolls both models out on held-out trajectories and scores them against the truth.
Every pane of the workbench has something to show after one run.
"""

from __future__ import annotations

from engine.analyses.base import Analysis, Param, Step
from engine.views import View

TRUE_COEF = {"x0": {"x0^3": -0.1, "x1^3": 2.0}, "x1": {"x0^3": -2.0, "x1^3": -0.1}}


ANALYSIS = Analysis(
    name="demo",
    title="Demo: cubic oscillator — MLP vs SINDy",
    help="A 20-second end-to-end run that exercises every pane.",
    steps=(
        Step("generate", "engine.analyses.demo.steps:generate", "simulate trajectories into demo.h5",
             {"seed": Param(0, "random seed", 0, 2**32 - 1),
              "trajectories": Param(48, "simulated trajectories (test_fraction of them held out)", 2, 10**7),
              "timesteps": Param(400, "time steps per trajectory", 8, 10**8),
              "dt": Param(0.01, "time step of the simulation (s)", 1e-6, 1.0),
              "neurons": Param(12, "recorded neurons (mixtures of the two latents)", 1, 10**5),
              "noise": Param(0.02, "observation noise (std)", 0.0, 1e3),
              "test_fraction": Param(0.25, "share of trajectories held out for scoring", 0.05, 0.9)}),
        Step("train", "engine.analyses.demo.steps:train", "fit an MLP vector field (shared train loop)",
             {"hidden": Param(64, "hidden units per layer of the MLP", 1, 65536),
              "iterations": Param(1500, "optimiser steps", 1, 10**8),
              "lr": Param(3e-3, "learning rate", 1e-8, 10.0),
              "batch_size": Param(256, "samples per step", 1, 10**7),
              "device": Param("auto", "auto, cpu, cuda, cuda:N or mps")}),
        Step("sindy", "engine.analyses.demo.steps:sindy", "distil sparse equations",
             {"degree": Param(3, "polynomial degree of the library", 1),
              "threshold": Param(0.05, "STLSQ threshold", 0.0, 1e6),
              "alpha": Param(0.0, "ridge penalty", 0.0, 1e6),
              "sweep": Param(48, "thresholds in the sweep", 1, 10_000)}),
        Step("evaluate", "engine.analyses.demo.steps:evaluate", "roll out both models, MAE table",
             {"horizon": Param(200, "rollout steps scored", 2, 10**8)}),
    ),
    views=(View("rollouts", "True vs MLP and SINDy rollouts", "engine.analyses.demo.views:rollouts",
                index="trajectory"),),
)
