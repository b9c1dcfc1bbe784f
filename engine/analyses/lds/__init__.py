"""Latent dynamics: LDS-Poisson data, bidirectional RNN co-smoothing (seed 004, issue 8).

Steps
-----
generate
    Simulate the seed's linear dynamical system with Poisson spikes into
    ``lds.h5`` (kept when a file with the same settings is already there).
train
    Train the seed's bidirectional RNN (:class:`engine.models.rnn.BiRNN`) to
    predict the *held-out* half of the neurons (the seed's ``x0``, first half)
    from the *held-in* half (``x1``, second half), full batch, Adam, the seed's
    Poisson cost, through :func:`engine.train.fit`.  Then a softplus readout from
    the frozen latents to the held-in neurons is fitted the same way, so that
    held-in bits/spike can be reported as in the Neural Latents Benchmark.
evaluate
    Poisson loss, bits/spike (held-in), co-bps (held-out), per-neuron
    correlation with the true rates and with the spikes, on training and
    held-out trials; the true rates give the ceiling.
sindy
    Degree-1 sparse regression on the RNN's *inferred* latents in their modal
    basis, the threshold chosen on validation trials by ``sindy_horizon``-step
    predictions
    (:mod:`engine.analyses.lds.sindy`); the true dynamics are
    ``x_{t+1} - x_t = x_t (A0 - I) + noise``.
truth
    Against the generator (:mod:`engine.analyses.lds.truth`): latent R²
    cross-validated across trials, the SINDy terms found against ``A0 - I``,
    and the same procedure on the true latents as a reference row.
    (:func:`sindy` below is the seed's fit on the true latents at a fixed
    threshold, kept for comparison; no step runs it.)

Departures from the notebook, all switchable: the last ``heldout_trials`` trials
are kept out of training so that co-bps is measured on unseen trials
(``heldout_trials=0`` trains on all trials, as the seed does); torch is seeded
(``train_seed``) so runs repeat.  ``bias_init="seed"`` copies the notebook's
initialisation of the readout bias with the mean count of the *input* neurons;
``"target"`` uses the predicted neurons' own means.

This module is imported when the workbench lists analyses: it imports nothing
heavy at module level.
"""


from __future__ import annotations

from engine.analyses.base import Analysis, Param, Step
from engine.views import View

GENERATE_PARAMS = {
    "seed": Param(42, "random seed of the simulation", 0, 2**32 - 1),
    "trials": Param(100, "simulated trials", 2, 10**6),
    "neurons": Param(400, "recorded neurons (half held in, half held out)", 2, 10**6),
    "steps": Param(250, "time steps per trial", 2, 10**7),
    "latents": Param(10, "latent dimensions of the LDS", 1, 10**4),
}
# data="" trains on the generated lds.h5; data=PATH.nwb on an NLB-style file (engine.data.nlb)
NLB_PARAMS = {
    "data": Param("", "an NLB-style .nwb file (empty: the generated lds.h5)"),
    "bin_ms": Param(5.0, "NLB: bin width (ms)", 0.1, 10_000.0),
    "align": Param("start_time", "NLB: trial column the window is aligned on"),
    "train_split": Param("train", "NLB: trials (split column) to train on"),
    "eval_split": Param("val", "NLB: trials (split column) to score on"),
    "behavior": Param("", "NLB: time series nlb_tools decodes (hand_vel); empty: none"),
}
TRAIN_PARAMS = {
    **NLB_PARAMS,
    "hidden": Param(10, "hidden units of the bidirectional RNN", 1, 65536),
    "iterations": Param(1000, "full-batch gradient steps", 1, 10**8),
    "lr": Param(0.005, "learning rate", 1e-8, 10.0),
    "heldout_trials": Param(20, "trials held out for scoring (0: train on all)", 0, 10**6),
    "bias_init": Param("seed", "readout bias start", choices=("seed", "target", "none")),
    "train_seed": Param(0, "random seed of the training", 0, 2**32 - 1),
    "device": Param("auto", "auto, cpu, cuda, cuda:N or mps"),
    "log_every": Param(10, "steps between logged losses", 1, 10**6),
    "readout_iterations": Param(300, "steps of the readout fit", 0, 10**8),
    # > 1: DDP ranks under torchrun (one per GPU), each on its block of training trials
    "nproc": Param(1, "processes (GPUs) to train on", 1, 1024),
}

ANALYSIS = Analysis(
    name="lds",
    title="Latent dynamics (LDS-Poisson + bidirectional RNN)",
    help="Seed 004: predict half of the neurons from the other half through 10 latents; co-bps.",
    steps=(
        Step("generate", "engine.analyses.lds.steps:generate", "simulate the LDS with Poisson spikes into lds.h5",
             GENERATE_PARAMS),
        Step("train", "engine.analyses.lds.steps:train", "train the bidirectional RNN (held-in -> held-out)",
             TRAIN_PARAMS),
        Step("evaluate", "engine.analyses.lds.steps:evaluate", "Poisson loss, bits/spike, co-bps, correlations",
             {"heldout_trials": Param(20, "trials held out for scoring (0: train on all)", 0, 10**6), **NLB_PARAMS,
              "nlb_dataset": Param("mc_maze", "NLB: dataset name of the submission", choices=(
                  "mc_maze", "mc_rtt", "area2_bump", "dmfc_rsg", "mc_maze_large", "mc_maze_medium", "mc_maze_small"))}),
        # issue 18: SINDy on the RNN's inferred latents, threshold chosen on validation trials
        # (engine.analyses.lds.sindy); the truth step scores it and fits the true-latent reference
        Step("sindy", "engine.analyses.lds.sindy:sindy_step",
             "degree-1 SINDy on the inferred latents (modal basis), threshold chosen on validation trials",
             {"sindy_val_trials": Param(16, "training trials kept out of the SINDy fit to choose its threshold",
                                        1, 10**6),
              # the threshold's validation error looks 1..H steps ahead (1-SE rule). Diagonal of
              # A0 - I found on seeds 0/1/2/42, inferred (true-latent reference) latents:
              # H=1: 9/10/10/10 (10 each); H=25, 50, 100: 10/10/10/10 (10 each), <= 1 extra
              # term per equation; the bare minimum at H=50 took 41 reference terms on seed 42.
              # A mode at A0=0.994 with 3 faster ones, 20 draws (all 4 found): H=1 1/20, 25 3/20,
              # 50 10/20, 100 13/20, 150 13/20 (one with > 2 extras); one-step minimum 4/20
              "sindy_horizon": Param(100, "steps ahead the SINDy threshold's validation error looks", 1, 10**6)}),
        Step("truth", "engine.analyses.lds.truth:truth",
             "against the generator: cross-validated latent R², SINDy terms vs A0 - I (and the true-latent reference)",
             {}),
    ),
    views=(
        View("raster", "Spikes and rates, true vs predicted", "engine.analyses.lds.views:raster", index="trial"),
        View("latents", "True latents vs the RNN state", "engine.analyses.lds.views:latents", index="trial"),
    ),
)
