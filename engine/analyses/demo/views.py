"""Figures of the ``demo`` analysis (see :mod:`engine.views`): a held-out trajectory's true
states against the MLP's and the SINDy equations' rollouts (``rollouts.npz``, evaluate step)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.views import Figure, Panel, Series, clamp, need


def rollouts(workdir: Path, index: int, option: str | None) -> Figure:
    with np.load(need(workdir / "rollouts.npz", "evaluate")) as f:
        truth, mlp, sindy = f["truth"], f["MLP"], f["SINDy"]
    k = clamp(index, len(truth))
    t = np.arange(truth.shape[1], dtype=float)
    panels = [Panel(f"x{i}", [Series("true", t, truth[k, :, i], role="background"),
                              Series("MLP", t, mlp[k, :, i]), Series("SINDy", t, sindy[k, :, i])],
                    xlabel="step") for i in range(truth.shape[2])]
    err = {name: float(np.nanmean(np.abs(r[k] - truth[k]))) for name, r in (("MLP", mlp), ("SINDy", sindy))}
    return Figure(f"Held-out trajectory {k}: true vs rollouts", panels, n_index=len(truth), index=k,
                  caption=" · ".join(f"{n} MAE {v:.3g}" for n, v in err.items()))
