"""Stimulus: recover the input from voltages alone with a GNN + SIREN (seed 003, issue 9).

The same PDE_N4 network as ``connectome`` (:mod:`engine.data.pde_n4`), but the
input adds to the drive of the grid neurons (``input="additive"``, the
visual-stimulus setting of seed 003) and there is process noise (sigma =
``noise``)::

    dx_i/dt = -x_i/tau_i + s_i tanh(x_i) + g sum_j W_ij psi_j(x_j) + I_i(t) + sigma xi_i(t)

The GNN (:mod:`engine.models.gnn`) adds the SIREN's ``I*(t, x, y)`` to its
update, ``phi*(a_i, x_i) + I*_i``.  The stimulus is then identifiable up to an
offset (``phi*``'s bias absorbs a constant), so it is judged by the corrected
R² (:func:`engine.metrics.corrected_r2`): a global fit ``I_true ~ a I* + b``;
``a``, ``b``, raw and corrected R² are reported.  Seed 003 feeds ``I*`` into
``phi*`` as an MLP input (``--set input_through_phi=true``); that adds a scale
*per cell type*, sign included, and a run learned the stimulus with opposite
signs for different types (global corrected R² 0.0, per type 0.3-0.98).

Noise.  Seed 003 uses sigma = 0.05 in the fly-visual model.  In this network
the default is sigma = 1 (seed 001's Fig. 3): at 0.05 the activity is too
low-dimensional for W (and with it the stimulus) to be identified at 256
neurons (stimulus corrected R² 0.35, W R² 0.12; ``--set noise=0.05``); see
:mod:`engine.analyses.connectome`.

Steps: ``generate`` (``pde_n4.h5``), ``train`` (shared with ``connectome``:
a full-rate phase, then the GNN at ``refine_factor`` x its rates with the
SIREN's unchanged, seed 003's alternation), ``evaluate`` (table "stimulus
recovery", ``field.npz`` with true and learned stimulus for views,
``functions.npz``).

Seed-size configuration (GPU preset; not yet run)::

    workbench run stimulus --set n_neurons=2048 --set grid=32 --set n_frames=50000 \\
        --set n_runs=1 --set steps=8000 --set refine_steps=2000 --set batch_size=32 \\
        --set hidden=64 --set siren_hidden=256 --set siren_layers=4 --detach

Imported when the workbench lists analyses: nothing heavy at module level.
"""

from __future__ import annotations

from engine.analyses.base import Analysis, Param, Step
from engine.analyses.connectome import EVAL_DEFAULTS, SIM_DEFAULTS, TRAIN_DEFAULTS, VIEWS, declared

STIM_DEFAULTS = {**SIM_DEFAULTS, "input_amplitude": 1.0}

ANALYSIS = Analysis(
    name="stimulus",
    title="Stimulus: GNN + SIREN recover the input from voltages (seed 003)",
    help="Additive stimulus on a grid, process noise; corrected R² of the recovered stimulus.",
    steps=(
        Step("generate", "engine.analyses.stimulus.steps:generate",
             "simulate the network with an additive stimulus into pde_n4.h5", declared(STIM_DEFAULTS)),
        Step("train", "engine.analyses.connectome.steps:train", "GNN + SIREN on the derivative loss",
             declared(TRAIN_DEFAULTS)),
        Step("evaluate", "engine.analyses.connectome.steps:evaluate",
             "without the truth: number of types (silhouette), fit on a fresh run of the network",
             declared(EVAL_DEFAULTS)),
        Step("truth", "engine.analyses.stimulus.steps:truth",
             "against the generator: corrected R² of the stimulus, W R²/slope, types ARI",
             {"table": Param("stimulus recovery", "name of the truth table")}),
    ),
    views=VIEWS,
)
