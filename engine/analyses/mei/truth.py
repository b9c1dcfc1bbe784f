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
* ``model_vs_true``: what the model predicts for the MEI over its true response (an
  ensemble's prediction is the mean of its members', the objective the MEI climbed).

The RF scaled to the MEI's contrast can leave the pixel range (a Gabor of unit norm
peaks near 0.25, so at the natural images' contrast ~6.3 its peak is ~1.5 above the
mean): no displayable image reaches it.  Each ratio is also given against
:func:`contrast_match_in_range` of the RF, the best image at the same mean and contrast with pixels in
[0, 1] (``*_vs_in_range_optimum``), the natural images and the Gabor then
contrast-matched inside [0, 1] as well.  Measured with the generator's own neuron as the
model (a diagnostic, seed 0, 300 steps): its MEI reaches 0.85 of the first, 0.998 of the second.

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


def contrast_match_in_range(imgs: np.ndarray, mean: float, contrast: float,
                            value_range: tuple[float, float] = (0.0, 1.0), iters: int = 40) -> np.ndarray:
    """``clip(mean + lam * d + mu)`` per image, ``d`` the image minus its mean: the pattern at
    mean ``mean`` and contrast ``contrast`` (or the most its range allows) with pixels kept in
    ``value_range``.  ``mu`` keeps the mean, ``lam`` sets the contrast; both are monotone and
    found by bisection, for a stack (n, h, w) or one image at once.

    Applied to a receptive field it is the optimum a displayable image can reach: the
    image of largest drive ``<img - mean, rf>`` under these constraints (its KKT
    conditions have exactly this form).  Where the scaled pattern fits in the range it
    is :func:`contrast_match`.
    """
    lo, hi = value_range
    x = np.asarray(imgs, float)
    one = x.ndim == 2
    d = (x[None] if one else x).reshape(-1 if not one else 1, x.shape[-2] * x.shape[-1])
    d = d - d.mean(axis=1, keepdims=True)
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-300)

    def image(lam: np.ndarray) -> np.ndarray:
        a, b = -(hi - lo) - lam, (hi - lo) + lam  # |d| <= 1: past these the clip saturates
        for _ in range(iters):
            mu = (a + b) / 2
            low = np.clip(mean + lam[:, None] * d + mu[:, None], lo, hi).mean(axis=1) < mean
            a, b = np.where(low, mu, a), np.where(low, b, mu)
        return np.clip(mean + lam[:, None] * d + ((a + b) / 2)[:, None], lo, hi)

    def spread(y: np.ndarray) -> np.ndarray:
        return np.linalg.norm(y - y.mean(axis=1, keepdims=True), axis=1)

    plain = mean + d * contrast
    fits = (plain.min(axis=1) >= lo) & (plain.max(axis=1) <= hi)  # contrast_match already in range
    if fits.all():
        return plain.reshape(x.shape)
    if fits.any():
        out = plain.copy()
        out[~fits] = contrast_match_in_range(d[~fits].reshape(-1, *x.shape[-2:]), mean, contrast,
                                             value_range, iters).reshape(-1, d.shape[1])
        return out.reshape(x.shape)
    top = np.full(len(d), max(contrast, 1e-12))
    for _ in range(60):  # grow until the clipped image reaches the contrast (or saturates)
        short = spread(image(top)) < contrast
        if not short.any():
            break
        top = np.where(short, 2 * top, top)
    bottom = np.zeros(len(d))
    for _ in range(iters):
        lam = (bottom + top) / 2
        short = spread(image(lam)) < contrast
        bottom, top = np.where(short, lam, bottom), np.where(short, top, lam)
    out = image(bottom).reshape(x.shape if not one else (1, *x.shape))
    return out[0] if one else out


def true_response(imgs: np.ndarray, rf: np.ndarray, gain: float, scale: float, cfg) -> np.ndarray:
    from engine.data.allen import true_rates

    r, _ = true_rates(np.asarray(imgs, float)[None] if np.ndim(imgs) == 2 else np.asarray(imgs, float),
                      np.asarray(rf, float)[None], np.array([gain]), cfg, scale=np.array([scale]))
    return r[:, 0]


def compare_one(mei, gabor, images, rf, gain, scale, cfg) -> dict[str, float]:
    """True responses of the MEI, the optimum, the best natural image and the Gabor at the MEI's contrast.

    Two optima: the RF scaled to the contrast (``*_vs_optimum``; its pixels may leave
    [0, 1]) and the best image with pixels in [0, 1] (``*_vs_in_range_optimum``, rivals
    contrast-matched inside [0, 1] too), which is what an MEI, itself clipped to
    [0, 1], can reach at all.
    """
    mean, contrast = float(np.mean(mei)), float(np.linalg.norm(mei - np.mean(mei)))
    opt = true_response(contrast_match(rf, mean, contrast), rf, gain, scale, cfg)[0]
    opt_in = true_response(contrast_match_in_range(rf, mean, contrast), rf, gain, scale, cfg)[0]
    r_mei = true_response(mei, rf, gain, scale, cfg)[0]
    nat = true_response(np.stack([contrast_match(im, mean, contrast) for im in images]), rf, gain, scale, cfg)
    r_gab = true_response(contrast_match(gabor, mean, contrast), rf, gain, scale, cfg)[0]
    # the rivals as displayable images too: contrast-matched inside [0, 1]
    nat_in = true_response(contrast_match_in_range(images, mean, contrast), rf, gain, scale, cfg)
    gab_in = true_response(contrast_match_in_range(gabor, mean, contrast), rf, gain, scale, cfg)[0]
    return {"mei_vs_optimum": r_mei / opt, "best_natural_vs_optimum": float(nat.max()) / opt,
            "gabor_vs_optimum": r_gab / opt, "mei_vs_in_range_optimum": r_mei / opt_in,
            "best_natural_vs_in_range_optimum": float(nat_in.max()) / opt_in, "gabor_vs_in_range_optimum": gab_in / opt_in,
            "true_mei": r_mei, "true_optimum": opt, "true_in_range_optimum": opt_in, "contrast": contrast}


def truth(ctx, p: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    from engine.analyses.mei.steps import MEIS, _data_source, _load_responses
    from engine.data.allen import TRUTH, SyntheticV1Config
    from engine.session import TableMeta

    src = _data_source(ctx, p)
    if p.get("data") and not (src / TRUTH).exists():
        return ctx.no_truth("generator truth")
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
    # model_vs_true is best near 1, not high: no direction, no star
    ctx.save_table("mei truth", table, meta=TableMeta.of(higher=[
        "mei_vs_optimum", "best_natural_vs_optimum", "gabor_vs_optimum", "mei_vs_in_range_optimum",
        "best_natural_vs_in_range_optimum", "gabor_vs_in_range_optimum"]))
    r = table["mei_vs_optimum"]
    out = {"mei_vs_optimum_median": float(r.median()), "mei_vs_optimum_min": float(r.min()),
           "best_natural_vs_optimum_median": float(table["best_natural_vs_optimum"].median()),
           "gabor_vs_optimum_median": float(table["gabor_vs_optimum"].median()),
           "frac_mei_above_natural": float((r > table["best_natural_vs_optimum"]).mean()),
           "frac_mei_above_gabor": float((r > table["gabor_vs_optimum"]).mean()),
           "model_vs_true_median": float(table["model_vs_true"].median()),
           "mei_vs_in_range_optimum_median": float(table["mei_vs_in_range_optimum"].median()),
           "mei_vs_in_range_optimum_min": float(table["mei_vs_in_range_optimum"].min()),
           "best_natural_vs_in_range_optimum_median": float(table["best_natural_vs_in_range_optimum"].median()),
           "gabor_vs_in_range_optimum_median": float(table["gabor_vs_in_range_optimum"].median()),
           "frac_mei_above_gabor_in_range": float((table["mei_vs_in_range_optimum"]
                                                   > table["gabor_vs_in_range_optimum"]).mean())}
    for k, v in out.items():
        ctx.reporter.metric(k, v)
    return out
