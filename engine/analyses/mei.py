"""Most exciting inputs of visual-cortex neurons (seed 002, issue 10).

Steps
-----
generate
    Write AllenSDK-style tables (units, presentationwise spike times, natural-scene
    presentations, images) of a synthetic V1 population with known Gabor receptive
    fields into ``allen/`` (:func:`engine.data.allen.generate`).
reliability
    Read the tables (``data`` = a folder of CSV/parquet tables or an ``.nwb``
    file; default: the generated ``allen/``), count spikes per presentation in
    ``[window_start, window_stop)`` after onset, arrange them as repeats x images x
    units, and tabulate oracle correlation, entropy, variance, outliers, best
    partner and Rastermap order per neuron (``mei reliability`` table); the
    filter (``min_oracle``, percentiles, outliers) picks the neurons to model.
train
    CNN core + Gaussian readout (:class:`engine.models.cnn_readout.CnnReadout`)
    on the per-image mean counts of the kept neurons, Poisson loss, through
    :func:`engine.train.fit`; per-neuron validation correlation on held-out images.
mei
    MEIs of all modelled neurons in one batch (or joblib chunks, ``n_jobs > 1``),
    compared with the best-fitting Gabor, the mean of the top-3 natural images,
    masked luminance/contrast, 1- and 2-fold symmetry and power spectra; with the
    generator's ground truth, each is also correlated with the true receptive
    field.  Writes ``meis.npz`` and PNG grids.

This module imports nothing heavy; the steps live in ``mei_steps.py``.
"""

from __future__ import annotations

from engine.analyses.base import Analysis, Step
from engine.views import View

ANALYSIS = Analysis(
    name="mei",
    title="MEI: V1 reliability, CNN + readout, most exciting inputs",
    help="Seed 002: Allen natural-scene responses -> reliability -> CNN -> MEIs vs Gabors.",
    steps=(
        Step("generate", "engine.analyses.mei_steps:generate", "synthetic V1 population as AllenSDK tables",
             {"seed": 0, "n_neurons": 50, "n_images": 118, "repeats": 10, "size": 32, "noise": 0.3}),
        Step("reliability", "engine.analyses.mei_steps:reliability",
             "spike counts per image; oracle corr, entropy, variance, outliers, sorting",
             {"data": "", "window_start": 0.0, "window_stop": 0.25, "sort": "auto", "contamination": 0.1,
              "min_oracle": 0.2, "oracle_percentile": 0.0, "variance_percentile": 0.0, "drop_outliers": False,
              # .nwb only (engine.data.allen_nwb): AllenSDK's unit-quality cut-offs (< 0: off), the area
              "area": "VISam", "amplitude_cutoff_max": 0.1, "presence_ratio_min": 0.95,
              "isi_violations_max": 0.5, "good_only": True}),
        Step("train", "engine.analyses.mei_steps:train", "CNN core + Gaussian readout, Poisson loss",
             {"hidden_channels": 8, "layers": 2, "input_kernel": 9, "hidden_kernel": 3, "readout": "gaussian",
              "train_steps": 600, "lr": 3e-3, "batch_size": 32, "val_fraction": 0.2, "device": "auto",
              "train_seed": 0}),
        Step("mei", "engine.analyses.mei_steps:mei", "MEIs by preconditioned gradient ascent; comparisons",
             {"mei_steps": 100, "mei_starts": 2, "mei_lr": 0.1, "precondition": 1.0, "blur_start": 2.0,
              "blur_end": 0.0, "n_jobs": 1, "min_val_corr": 0.5, "device": "auto", "mei_seed": 0}),
    ),
    views=(
        View("mei", "MEI, Gabor, top images, true RF", "engine.analyses.mei_views:mei", index="neuron"),
        View("correlations", "Neuron-neuron correlations", "engine.analyses.mei_views:correlations"),
    ),
)
