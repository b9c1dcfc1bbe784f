"""Figures of the ``lds`` analysis (see :mod:`engine.views`).

* ``raster``: for a chosen trial, the held-out neurons' spikes, true rates and the
  RNN's predicted rates as neurons x time heatmaps (true and predicted share one
  colour scale); ``m`` switches between "true vs predicted" and "spikes vs predicted".
* ``latents``: the true latents against the RNN's inferred latents for the trial.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.views import Figure, Panel, Series, clamp, need, pick

PAIRS = ["true vs predicted", "spikes vs predicted"]


def _data(workdir: Path):
    from engine.data.lds_gen import read_h5

    data = read_h5(need(workdir / "lds.h5", "generate"))
    pred = np.load(need(workdir / "lds_predictions.npz", "evaluate"))
    return data, pred


def _trial_label(pred, trial: int) -> str:
    return "test trial" if trial in set(pred["test_trials"].tolist()) else "training trial"


def raster(workdir: Path, index: int, option: str | None) -> Figure:
    data, pred = _data(workdir)
    n_trials = data.spikes.shape[1]
    trial = clamp(index, n_trials)
    out = pred["heldout"]
    truth = data.rates[:, trial, out].T  # (neurons, time)
    model = pred["rates_heldout"][:, trial].T
    top = float(np.quantile(np.concatenate([truth.ravel(), model.ravel()]), 0.99)) or 1.0
    pair = pick(PAIRS, option)
    first = (Panel(f"true rates, {len(out)} held-out neurons x {truth.shape[1]} steps", image=truth,
                   vmin=0.0, vmax=top) if pair == PAIRS[0] else
             Panel(f"spikes, {len(out)} held-out neurons", image=data.spikes[:, trial, out].T, cmap="magma"))
    r = np.corrcoef(truth.ravel(), model.ravel())[0, 1]
    return Figure(f"LDS trial {trial} ({_trial_label(pred, trial)}): {pair}",
                  [first, Panel("RNN predicted rates", image=model, vmin=0.0, vmax=top)],
                  n_index=n_trials, index=trial, options=PAIRS, option=pair,
                  caption=f"trial {trial}: corr(predicted, true rates) {r:.3f} · spikes {int(data.spikes[:, trial, out].sum())}")


def latents(workdir: Path, index: int, option: str | None) -> Figure:
    data, pred = _data(workdir)
    n_trials = data.spikes.shape[1]
    trial = clamp(index, n_trials)
    z, q = data.latents[:, trial], pred["latents_inferred"][:, trial]  # (time, k)
    t = np.arange(len(z), dtype=float)
    k = min(2, z.shape[1], q.shape[1])
    panels = [Panel(f"latent {i}", [Series("true", t, z[:, i], role="background"),
                                    Series("RNN state", t, q[:, i])], xlabel="step") for i in range(k)]
    # the RNN's state is the latents up to a linear map: say how much of them it holds
    coef, *_ = np.linalg.lstsq(np.c_[q, np.ones(len(q))], z, rcond=None)
    fit = np.c_[q, np.ones(len(q))] @ coef
    r2 = 1 - ((z - fit) ** 2).sum() / ((z - z.mean(0)) ** 2).sum()
    return Figure(f"LDS trial {trial}: true latents and the RNN's hidden state", panels,
                  n_index=n_trials, index=trial,
                  caption=f"linear decoding of the {z.shape[1]} true latents from the RNN state: R² {r2:.3f}")
