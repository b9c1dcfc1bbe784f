"""The truth step of ``mei``: each MEI shown to the generator's true neuron (issue 18).

The synthetic V1 cell's mean count is ``base + a softplus(2 z - 1)`` with ``z``
its drive ``<image - 0.5, rf> / scale`` (:func:`engine.data.allen.true_rates`):
increasing in the drive, so at a fixed mean luminance and contrast (L2 norm of
the image minus its mean) the true optimum is the receptive field itself,
zero-meaned and scaled to that contrast.  Every stimulus is compared at the
MEI's own luminance and contrast (:func:`contrast_match`):

* ``mei_vs_optimum``: the MEI's true response over the true optimum's;
* ``best_natural_vs_optimum``: the best of the contrast-matched natural images;
* ``gabor_vs_optimum``: the Gabor fitted to the MEI (the most driving stimulus,
  as in seed 002), contrast-matched;
* ``model_vs_true``: what the model predicts for the MEI over its true response.

Reads the ``mei`` step's ``meis.npz``, the images and ``ground_truth.npz``; it
fits and selects nothing.  Table ``mei truth`` (one row per neuron).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np


def contrast_match(img: np.ndarray, mean: float, contrast: float) -> np.ndarray:
    """``img`` with its mean set to ``mean`` and the L2 norm of ``img - mean`` set to ``contrast``."""
    c = np.asarray(img, float) - np.mean(img)
    n = np.linalg.norm(c)
    return mean + (c * (contrast / n) if n > 0 else c)


def true_response(imgs: np.ndarray, rf: np.ndarray, gain: float, scale: float, cfg) -> np.ndarray:
    from engine.data.allen import true_rates

    r, _ = true_rates(np.asarray(imgs, float)[None] if np.ndim(imgs) == 2 else np.asarray(imgs, float),
                      np.asarray(rf, float)[None], np.array([gain]), cfg, scale=np.array([scale]))
    return r[:, 0]


def compare_one(mei, gabor, images, rf, gain, scale, cfg) -> dict[str, float]:
    """True responses of the MEI, the optimum, the best natural image and the Gabor at the MEI's contrast."""
    mean, contrast = float(np.mean(mei)), float(np.linalg.norm(mei - np.mean(mei)))
    opt = true_response(contrast_match(rf, mean, contrast), rf, gain, scale, cfg)[0]
    r_mei = true_response(mei, rf, gain, scale, cfg)[0]
    nat = true_response(np.stack([contrast_match(im, mean, contrast) for im in images]), rf, gain, scale, cfg)
    r_gab = true_response(contrast_match(gabor, mean, contrast), rf, gain, scale, cfg)[0]
    return {"mei_vs_optimum": r_mei / opt, "best_natural_vs_optimum": float(nat.max()) / opt,
            "gabor_vs_optimum": r_gab / opt, "true_mei": r_mei, "true_optimum": opt, "contrast": contrast}


def truth(ctx, p: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    from engine.analyses.mei.steps import MEIS, _data_source, _load_responses
    from engine.data.allen import TRUTH, SyntheticV1Config

    src = _data_source(ctx, p)
    if not (src / TRUTH).exists():
        raise FileNotFoundError(f"{src / TRUTH} is missing: the truth step needs the generated data ('generate')")
    if not (ctx.workdir / MEIS).exists():
        raise FileNotFoundError(f"{ctx.workdir / MEIS} is missing: run the 'mei' step first")
    gen = json.loads((src / "generator.json").read_text()) if (src / "generator.json").exists() else {}
    cfg = SyntheticV1Config(**{k: v for k, v in gen.items() if k in SyntheticV1Config.__dataclass_fields__})
    with np.load(src / TRUTH) as f:
        t = {k: f[k] for k in f.files}
    with np.load(ctx.workdir / MEIS) as f:
        m = {k: f[k] for k in ("meis", "gabors", "unit_ids", "activation") if k in f.files}
    images = _load_responses(ctx)["images"].astype(float)
    ids = list(t["unit_ids"])
    rows = []
    for i, u in enumerate(m["unit_ids"]):
        j = ids.index(u)
        row = compare_one(m["meis"][i], m["gabors"][i], images, t["rfs"][j], float(t["gabor_gain"][j]),
                          float(t["drive_scale"][j]), cfg)
        row["model_vs_true"] = float(m["activation"][i]) / row["true_mei"] if "activation" in m else float("nan")
        rows.append({"unit_id": int(u), **row})
    table = pd.DataFrame(rows).set_index("unit_id")
    ctx.save_table("mei truth", table)
    r = table["mei_vs_optimum"]
    out = {"mei_vs_optimum_median": float(r.median()), "mei_vs_optimum_min": float(r.min()),
           "best_natural_vs_optimum_median": float(table["best_natural_vs_optimum"].median()),
           "gabor_vs_optimum_median": float(table["gabor_vs_optimum"].median()),
           "frac_mei_above_natural": float((r > table["best_natural_vs_optimum"]).mean()),
           "frac_mei_above_gabor": float((r > table["gabor_vs_optimum"]).mean()),
           "model_vs_true_median": float(table["model_vs_true"].median())}
    for k, v in out.items():
        ctx.reporter.metric(k, v)
    return out
