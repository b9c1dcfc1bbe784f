"""Figures of the ``mei`` analysis (see :mod:`engine.views`).

* ``mei``: for a chosen neuron, its MEI, the best-fitting Gabor, the mean of its
  top-3 natural images and (synthetic data) its true receptive field, side by side,
  with the activations and correlations in the caption.
* ``correlations``: the neuron-neuron correlation matrix of the per-image
  responses, rows and columns in the Rastermap (or fallback) order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.mei import pixel_corr
from engine.views import Figure, Panel, clamp, need


def mei(workdir: Path, index: int, option: str | None) -> Figure:
    with np.load(need(workdir / "meis.npz", "mei")) as f:
        d = {k: f[k] for k in f.files if k != "gabor_params"}
    n = len(d["meis"])
    i = clamp(index, n)
    act, best = float(d["activation"][i]), float(d["best_image_activation"][i])
    panels = [Panel("MEI", image=d["meis"][i], cmap="gray", aspect=True),
              Panel("Gabor fit", image=d["gabors"][i], cmap="gray", aspect=True),
              Panel("top-3 images", image=d["top3_mean"][i], cmap="gray", aspect=True)]
    caption = (f"unit {d['unit_ids'][i]}: activation MEI {act:.3g} vs best image {best:.3g} "
               f"({act / best if best else float('nan'):.2f}x) · val corr {float(d['val_corr'][i]):.2f}")
    if "true_rfs" in d:
        rf = d["true_rfs"][i]
        panels.append(Panel("true RF", image=rf, cmap="gray", aspect=True))
        caption += f" · |corr| with RF: MEI {abs(pixel_corr(d['meis'][i], rf)):.2f}, top-3 {abs(pixel_corr(d['top3_mean'][i], rf)):.2f}"
    return Figure(f"Neuron {i} of {n}: most exciting input", panels, n_index=n, index=i, caption=caption)


def correlations(workdir: Path, index: int, option: str | None) -> Figure:
    with np.load(need(workdir / "responses.npz", "reliability")) as f:
        corr, order, keep = f["corr"], f["sort_order"], f["keep"]
    c = corr[np.ix_(order, order)] if len(order) == len(corr) else corr
    off = c[~np.eye(len(c), dtype=bool)]
    return Figure(f"Neuron-neuron correlations ({len(c)} neurons, sorted)",
                  [Panel("corr", image=c, cmap="coolwarm", vmin=-1.0, vmax=1.0, aspect=True)],
                  caption=f"mean off-diagonal corr {np.nanmean(off):.3f} · {int(np.sum(keep))} reliable neurons kept")
