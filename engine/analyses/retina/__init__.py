"""Seed 000: retina recording → encoder (difference-of-Gaussians or conv) + CfC → pruning → SINDy → MAE.

Declaration only (cheap to import); the steps live in ``steps`` (and ``sequences``, ``sindy``, ``scoring``, ``prune_sweep``).
Run everything with ``workbench run retina --headless --json``; on a real
``naturalscene.h5`` pass ``--set data=PATH``.
"""

from __future__ import annotations

from engine.analyses.base import Analysis, Param, Step
from engine.views import View

_S = "engine.analyses.retina.steps:"
_V = "engine.analyses.retina.views:"

ANALYSIS = Analysis(
    name="retina",
    title="Retina: CfC → pruning → SINDy → MAE (seed 000)",
    help="Encoder (difference-of-Gaussians filters, or convolutions) + CfC predicting 9 cells' firing rates, pruned, distilled into SINDy "
         "equations with the encoder features as control inputs, compared by MAE.",
    steps=(
        Step("generate", _S + "generate", "synthetic naturalscene.h5 (skipped when data= is set)",
             {"data": Param("", "recording (naturalscene.h5 layout); empty: generate one"), "cells": Param(9, "ganglion cells", 1, 10**4),
              "frames": Param(12000, "training frames", 100, 10**8),
              "test_frames": Param(3000, "test frames", 10, 10**8), "seed": Param(0, "random seed", 0, 2**32 - 1),
              # the real file's structure, so the synthetic file tests the real path
              "blocks": Param(3, "recording blocks of the synthetic train split (time jumps between them)", 1, 1000),
              "repeats": Param(5, "trials of the synthetic test stimulus (test/repeats; 0: none)", 0, 1000)}),
        # On data seeds 1 and 2 the CfC used to predict the mean rate (whole-validation corr
        # 0.07): the encoder's ReLU output had died on 12 of 16 features and the live ones sat
        # near 10, saturating the CfC's gates.  A batch norm there (RetinaCfCConfig.encoder_out)
        # fixed it (0.37 at the old 400 steps); 25 frames of history cover the synthetic
        # filters' latency and negative lobe; a cosine schedule at 3e-3 for 1200 steps reaches
        # 0.61-0.76 of the noise ceiling on data seeds 0-4 (mean 0.69 at 12000 frames, 0.67 at
        # 30000; target 0.8).  2400 steps, seq_len 48, a constant 2e-3, wider or pooled
        # encoders, larger first kernels: all within +-0.04 on seeds 1-2 (README, retina).
        # Issue 17, 600 steps at 12000 frames, whole-validation corr / ceiling on data seeds 1 / 2:
        # default 0.718 / 0.693; frame_diff 0.733 / 0.710 (and on 24 px, 200-step runs it learns at
        # all: 0.41 / 0.31 vs -0.06 / -0.02, tests/test_retina_learns.py), so it is the default;
        # with frame_diff, batch 16 x seq_len 12 0.747 / 0.705, batch 24 x 8 0.727 (seed 1), 16
        # first-conv channels 0.695 (seed 1): not kept.  Without it, units 24 (a readout from
        # more units) 0.706, a coarse surround path (enc_surround 4) 0.700 (seed 1): no gain.
        # Probes of a 600-step model (seed 1): a Poisson GLM on the CfC states with 3 lags
        # reaches 0.79, an MLP on 6 lags of the encoder features 0.78: the CfC uses its states
        # and its input's recent past less well than a readout could.
        # This session (data seed 0, 12000 frames unless "30k"; pool 1 x 1200 steps: 0.745, 30k
        # 0.708): 2400 steps 0.735 (best checkpoint at step 960: it overfits), 30k 0.741 (best at
        # 1920); pool 2 x 2400 steps 0.734, 30k 0.747, at about half the time (the pool now
        # comes first), so it is the default; pool 2 x 3600 steps seed 1 0.736 (1 x 1200: 0.762),
        # 30k seed 1 0.730.  Not kept: AdamW weight decay 0.5 0.731; a factorised readout (a
        # spatial mask x channel weights per feature, Klindt et al. 2017) 0.722 (seed 1 0.721);
        # concatenated ReLU after a 9-px first conv at pool 2 0.730 (30k 0.706); linear
        # space-time separable filters over the whole frame, both polarities 0.679; a learned
        # output filter on the rates +0.006.  What the data allow: the errors sit in the size of
        # each response to a scene change (per-cell corr of the response sums with the truth
        # 0.32-0.76, of the response shapes 0.90; exact sizes would give 0.90), i.e. in each
        # cell's receptive field estimated from ~250 scene changes; the generator's own LNP
        # family fitted to the same frames reaches 0.67 (full resolution) / 0.72 (pool 2) from a
        # random start, and drifts from 1.0 to 0.84 when started at the truth
        # (benchmarks/bench_retina_limit.py).  At the new defaults, a Laplacian smoothness
        # penalty on the first conv's kernels (weight 0.01 / 0.1 / 1): seed 0 0.781 / 0.797 / 0.789
        # (no penalty 0.791, and 0.773 on a second run), seed 2 at 1: 0.714 (none 0.714).
        # The stronger prior (engine/models/dog_front.py, enc_front=dog): 16 difference-of-Gaussians
        # filters with learned centres, widths and surrounds, 2 temporal filters each, both signs
        # rectified.  At 2400 steps, seed 0 / 1: 0.815 / 0.793, but 0.800 / 0.772 with centres in
        # pixels (they stayed on their starting grid, moving under 1 px); 4800 steps at 12000 frames,
        # seeds 0-4: 0.864 / 0.853 / 0.851 / 0.851 / 0.856, at 30000 frames 0.806 / 0.808 / 0.877 /
        # 0.883 / 0.832, still improving at the last step; 7200 steps at 30000: seeds 0 / 1 0.906 /
        # 0.893 (9600: seed 0 0.895; at 12000 seed 2 0.846, best at step 6720), so 7200 it is (105 s
        # at 12000 frames, 2 threads).  The synthetic cells are DoGs, so here this prior is exact: on
        # a real recording compare enc_front=conv on the validation split before trusting it.
        Step("train", _S + "train", "train the encoder + CfC (shared training loop)",
             {"n_frames": Param(25, "frames of history the encoder sees", 1, 1000),
              "units": Param(9, "CfC units", 1, 4096), "mode": Param("default", "CfC mode (ncps)", choices=("default", "pure", "no_gate")),
              "iterations": Param(7200, "optimiser steps", 1, 10**8), "batch_size": Param(8, "sequences per step", 1, 10**6),
              "seq_len": Param(24, "frames per training sequence", 1, 10**5), "lr": Param(3e-3, "learning rate", 1e-8, 10.0),
              "lr_schedule": Param("cosine", "learning-rate schedule (empty: constant)", choices=("cosine", "")),
              "amp": Param(True, "mixed precision on CUDA"),
              "enc_front": Param("dog", "encoder: dog (difference-of-Gaussians filters with learned centres) or "
                                        "conv (convolutions; the enc_* settings below)", choices=("dog", "conv")),
              "enc_dogs": Param(16, "difference-of-Gaussians filters of the dog encoder", 1, 4096),
              "enc_channels": Param(8, "channels of the first conv layer (the second has twice)", 1, 1024),
              "encoder_features": Param(16, "encoder features fed to the CfC", 1, 4096),
              "enc_pool": Param(1, "average-pool frames by this factor first", 1, 64),
              "enc_kernel": Param(5, "first conv kernel size", 1, 101),
              "enc_surround": Param(0, "coarse surround path: average-pool by this factor, add a linear conv "
                                       "to the first conv before its ReLU (0: none)", 0, 64),
              "frame_diff": Param(True, "encoder reads the newest frame and successive frame differences, "
                                        "batch-normalised (false: the raw frames)"),
              "enc_temporal": Param(0, "linear temporal filters per pixel before the first conv (0: none)", 0, 1000), "val_batches": Param(8, "validation batches (checkpoint selection)", 1, 10**4),
              "val_fraction": Param(0.15, "share of frames held out", 0.01, 0.9),
              "skip_after_block": Param(0, "frames dropped after each recording block starts, while the retina "
                                           "adapts (deep-retina's later loader: 6000)", 0, 10**7),
              "train_blocks": Param(0, "recording blocks of the train split: 0 from the jumps of its time, N equal "
                                       "blocks (deep-retina's rule; 6 for 15-10-07)", 0, 10**5), "device": Param("auto", "auto, cpu, cuda, cuda:N or mps"), "loss": Param("poisson", "training loss", choices=("poisson", "mse")),
              "nproc": Param(1, "processes (GPUs) to train on", 1, 1024)}),  # > 1: DDP ranks under torchrun
        Step("ln", _S + "ln", "fit the LN baseline (regularised Poisson GLM on the frame history)",
             {"ln_lags": Param(30, "frames of history of the LN filter", 1, 1000),
              "ln_basis": Param(10, "raised-cosine temporal basis functions", 1, 100),
              "ln_pool": Param(5, "pixels pooled per side", 1, 100)}),
        Step("prune", _S + "prune", "global L1 pruning of the CfC weights (the seed's 20 lowest)",
             {"prune_amount": Param(20, "weights to prune (the lowest |w|)", 0, 10**9),
              "finetune_iterations": Param(0, "fine-tuning steps after pruning (with the training loss)", 0, 10**8),
              # its own setting, not the training rate read silently (issue 20): a third of it
              "finetune_lr": Param(1e-3, "learning rate of the fine-tuning after pruning", 1e-8, 10.0)}),
        Step("sindy", _S + "sindy", "collect hidden states, fit SINDy with control (threshold 0 = the sweep's knee)",
             # discrete time, degree 1: the CfC steps once per frame, and an ODE fitted to its
             # jumps gave RK4 rollouts that all diverged (the knee then kept no term at all); as
             # a map, degree 2 still diverged in every validation rollout, degree 1 in none
             # (97 terms, one-step R² 0.65 with control vs 0.42 without; raise it with --set)
             {"samples": Param(20000, "hidden-state samples fitted", 10, 10**8),
              "degree": Param(1, "polynomial degree of the library", 1),
              "threshold": Param(0.0, "STLSQ threshold (0: the sweep's knee)", 0.0, 1e6),
              "alpha": Param(1e-6, "ridge penalty (on unit-norm columns when normalize)", 0.0, 1e6),
              "control_pcs": Param(3, "control inputs (PCs; control=pcs)", 0, 1000),
              # issue 17: 3 PCs of the encoder features left each equation a mix of inputs; one
              # drive per state (the feature direction that moves it, by least squares of its
              # increments) raised the free-running test corr / the CfC's from 0.69 to 0.88 (data
              # seed 1) and kept 0.88 (seed 2; reset-50 rollouts 0.42 -> 0.59), 29 terms each
              # (CfCs of 600 steps at 12000 frames)
              # With the DoG CfCs (7200 steps) one drive per state, however shaped, left SINDy at 0.83-0.95
              # of the CfC; "step" -- each state's drive the CfC's own one-step change from its mean
              # state under the frame's features -- gives, on the CfC's validation frames (never
              # fitted, never the test split), 0.95-1.00 of the CfC's free-running corr on the 10 runs
              # of the README table, against 0.73-0.95 for cubic drives, with at most 30 terms.
              "control": Param("step", "control inputs: each state's drive as the CfC's own step from its mean "
                                       "state (step), the feature direction that moves each state (drives), or "
                                       "principal components of the encoder features (pcs)",
                               choices=("step", "drives", "pcs")),
              # issue 17, free-running test corr / the CfC's (CfCs of 1200 steps at 12000 frames, data
              # seeds 0 / 1 / 2): degree-1 drives 0.84 / 0.84 / 0.89, and least squares on all 171
              # degree-1 terms is no better (0.84, seed 0): the CfC's gates answer the two signs of a
              # drive unequally.  Each drive a polynomial of its direction, still one control term
              # per state, fitted without the held-out tail: degree 3 0.93 / 0.91 / 0.95 (30 / 30 / 25
              # terms; reset-50 rollouts 0.93 / 0.92 / 0.96; none diverged).  The degree was chosen on
              # that tail (free-running corr / the CfC's, degree 1 / 2 / 3: 0.87 / 0.91 / 0.91,
              # 0.77 / 0.75 / 0.89, 0.80 / 0.81 / 0.91), never on the test split.  With the DoG CfCs
              # (7200 steps) the library is what limits, not the selection: on data seed 2 at 12000
              # frames / seed 1 at 30000, all 171 degree-1 terms give 0.832 / 0.840 of the CfC, the
              # 23 / 27 chosen ones 0.839 / 0.825; degree 2 with linear drives 0.50 / 0.36 (<= 30
              # terms), 0.79 with 85 terms (seed 2).
              "drive_degree": Param(3, "each drive as a polynomial of this degree of its direction, fitted to "
                                       "its state's increments (control=drives; 1: the direction itself)", 1, 5),
              "dt": Param(0.01, "time step between frames (s)", 1e-6, 1e3), "smooth": Param(True, "smooth the states before differencing (targets=fd)"),
              "discrete_time": Param(True, "fit a map h[k+1] = f(h[k], u[k]) (false: an ODE)"),
              # readable equations (issue 17): threshold on unit-norm columns, saturated units
              # constant, each equation at its own threshold by held-out teacher-forced
              # rollouts in absolute units, at most max_terms terms in all (0: no cap)
              "normalize": Param(True, "normalise library columns before thresholding"),
              "constant_tol": Param(0.003, "a state with a smaller std is a constant (0: none)", 0.0, 1e6),
              "select": Param("per_equation", "threshold choice", choices=("per_equation", "rows")),
              "max_terms": Param(30, "most terms in all (0: no cap)", 0, 10**6),
              # the CfC's own step map at the states and at 2 perturbed copies of each: data seed 1,
              # 27 terms, free-running test corr 0.438 vs 0.324 from finite differences (CfC 0.483)
              "targets": Param("model", "derivative targets: finite differences or the CfC's own step map",
                               choices=("fd", "model")),
              "perturb": Param(2, "perturbed copies per state (targets=model)", 0, 100),
              # 100 instead (free-running test corr / the CfC's over the 10 runs of the README table): as
              # often worse as better (seed 1 0.97 -> 1.00, 30k seed 2 0.93 -> 0.89, seed 3 0.81 -> 0.84)
              "rollout_steps": Param(20, "held-out rollout length used to choose (frames)", 2, 10**5),
              "stability_steps": Param(2000, "the chosen model must stay bounded this many held-out frames "
                                             "(0: off)", 0, 10**7)}),
        Step("evaluate", _S + "evaluate", "score models, baselines (zeros, mean, LN) and the ceiling on the test frames",
             {"horizon": Param(50, "rollout steps", 1, 10**6), "max_test_frames": Param(3000, "test frames scored", 1, 10**8)}),
        Step("prune_sweep", "engine.analyses.retina.prune_sweep:prune_sweep",
             "prune 10-90 % of the CfC weights, with and without fine-tuning: test error and SINDy terms vs sparsity",
             {"sweep_amounts": Param("0.1,0.3,0.5,0.7,0.9", "fractions of the weights pruned, comma-separated"),
              "sweep_finetune": Param(60, "fine-tuning steps per pruned model (0: none)", 0, 10**7),
              "sweep_samples": Param(5000, "hidden-state samples per SINDy fit", 100, 10**8)}),
    ),
    views=(
        View("validation", "CfC vs recorded rate (validation)", _V + "validation", index="cell", pane="training"),
        View("traces", "Predicted vs target (test)", _V + "traces", index="cell"),
        View("pruning", "Test correlation and SINDy terms vs sparsity", _V + "pruning"),
    ),
)
