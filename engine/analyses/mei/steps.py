"""The mei analysis's steps (torch, sklearn and rastermap are imported here, not in mei.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.analyses.base import StepContext
from engine.analyses.mei.ensemble import MODEL  # the ensemble's first member
from engine.atomic import save_npz
from engine.session import TableMeta

DATA_DIR = "allen"
RESPONSES = "responses.npz"
MEIS = "meis.npz"


def _data_source(ctx: StepContext, p: dict[str, Any]) -> Path:
    src = Path(p.get("data") or ctx.workdir / DATA_DIR)
    if not src.exists():
        raise FileNotFoundError(f"{src} is missing: run the 'generate' step first or set data=PATH")
    return src


def generate(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    from engine.data.allen import SyntheticV1Config
    from engine.data.allen import generate as gen

    if (recording := ctx.recording_instead(p)) is not None:
        return recording

    from engine.resources import require_memory

    cfg = SyntheticV1Config(seed=p["seed"], n_neurons=p["n_neurons"], n_images=p["n_images"],
                            repeats=p["repeats"], size=p["size"], noise=p["noise"])
    # rates, gains and counts per presentation and neuron (float64); the images
    require_memory(cfg.n_images * cfg.repeats * cfg.n_neurons * 8 * 4 + cfg.n_images * cfg.size**2 * 9,
                   "the synthetic V1 population", {"n_neurons": cfg.n_neurons, "n_images": cfg.n_images,
                                                   "repeats": cfg.repeats})
    ctx.reporter.progress(0, 1, "simulating V1 responses")
    out = gen(ctx.workdir / DATA_DIR, cfg)
    ctx.reporter.artifact("allen tables", ctx.workdir / DATA_DIR, kind="folder")
    ctx.reporter.progress(1, 1, "done")
    return {"data": out["folder"], "spikes": out["spikes"], "expected_oracle_mean": out["expected_oracle_mean"]}


def reliability(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    from engine.data import allen, allen_nwb
    from engine.reliability import reliability_table, reliable

    src = _data_source(ctx, p)
    ctx.reporter.progress(0, 3, f"reading {src.name}")
    tables = (allen_nwb.read_for_params(src, p, log=ctx.reporter.log) if src.is_file()  # .nwb through pynwb
              else allen.load_tables(src))
    if tables.images is None:
        raise FileNotFoundError(f"{src}: no {allen.IMAGES} (the natural-scene images)")
    counts = allen.spike_counts(tables, (p["window_start"], p["window_stop"]))
    trials, image_ids = allen.trial_responses(counts, tables.presentations["frame"])
    unit_ids = np.asarray(counts.columns)
    ctx.reporter.progress(1, 3, "reliability measures")
    table, corr, info = reliability_table(trials, unit_ids, contamination=p["contamination"], sort=p["sort"])
    keep = reliable(table, oracle_percentile=p["oracle_percentile"], variance_percentile=p["variance_percentile"],
                    min_oracle=p["min_oracle"], drop_outliers=p["drop_outliers"])
    if not keep.any():
        raise ValueError("the reliability filter kept no neuron: lower min_oracle or the percentiles")
    table["kept"] = keep
    ctx.save_table("mei reliability", table, meta=TableMeta.of(higher=["oracle_corr"]))
    ctx.reporter.progress(2, 3, "saving responses")
    mean = allen.mean_responses(counts, tables.presentations["frame"]).loc[image_ids].to_numpy(float)
    save_npz(ctx.workdir / RESPONSES, trials=trials.astype(np.float32), mean=mean.astype(np.float32),
             image_ids=image_ids, unit_ids=unit_ids, keep=keep, images=tables.images[image_ids],
             corr=corr.astype(np.float32), sort_order=np.argsort(table["sort_rank"].to_numpy()))
    table.to_csv(ctx.workdir / "reliability.csv")
    ctx.reporter.progress(3, 3, "done")
    if info["sort_method"] != "rastermap":
        ctx.reporter.log(f"neurons sorted by {info['sort_method']} (rastermap not installed)"
                         if p["sort"] == "auto" else f"neurons sorted by {info['sort_method']}")
    return {"n_units": int(len(unit_ids)), "n_kept": int(keep.sum()), "n_images": int(len(image_ids)),
            "repeats": int(trials.shape[0]), "oracle_corr_median": float(np.nanmedian(table["oracle_corr"])),
            "n_outliers": int(table["outlier"].sum()), "sort_method": info["sort_method"]}


def _load_responses(ctx: StepContext) -> dict[str, np.ndarray]:
    path = ctx.workdir / RESPONSES
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the 'reliability' step first")
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _split(n_images: int, val_fraction: float, seed: int,
           test_fraction: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) image indices.  Validation picks the checkpoint; the
    test images are touched by nothing but the final score (issue 18)."""
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be "
                         "fractions leaving training images")
    perm = np.random.default_rng(seed).permutation(n_images)
    n_val = max(1, int(round(val_fraction * n_images)))
    n_test = int(round(test_fraction * n_images)) if test_fraction > 0 else 0
    if test_fraction > 0:
        n_test = max(2, n_test)
    if n_val + n_test >= n_images:
        raise ValueError(f"{n_images} images leave none to train on after {n_val} validation and {n_test} test")
    return np.sort(perm[n_val + n_test:]), np.sort(perm[:n_val]), np.sort(perm[n_val:n_val + n_test])


def _load_model(ctx: StepContext):
    """The trained model (one CNN, or the mean of an ensemble) and what it was trained on."""
    from engine.analyses.mei.ensemble import load_members

    return load_members(ctx.workdir)


def _train_member(ctx: StepContext, p: dict[str, Any], cfg, data, k: int):
    """Member ``k`` of the ensemble: the same architecture and images, seed ``train_seed + k``."""
    import torch

    from engine.models.cnn_readout import CnnReadout
    from engine.train import TrainConfig, fit, poisson_loss

    seed = int(p["train_seed"]) + k
    torch.manual_seed(seed)
    model = CnnReadout(cfg)
    tcfg = TrainConfig(steps=p["train_steps"], lr=p["lr"], batch_size=p["batch_size"], val_every=50,
                       checkpoint_every=200, device=p["device"], seed=seed, log_every=25)
    if k:
        ctx.reporter.log(f"ensemble member {k + 1} of {p['ensemble']} (seed {seed})")
    result = fit(model, data[0], data[1], tcfg, ctx.reporter, ctx.checkpoint_dir("cnn" if k == 0 else f"cnn_{k}"),
                 resume=ctx.resuming, loss_fn=lambda pred, t: poisson_loss(pred, t) + model.regularizer())
    return model.cpu().eval(), result


def train(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    import torch

    from engine.analyses.mei.ensemble import Ensemble, save_members
    from engine.models.cnn_readout import CnnReadoutConfig
    from engine.train import pearson_per_channel

    r = _load_responses(ctx)
    images, y = r["images"].astype(np.float32), r["mean"][:, r["keep"]].astype(np.float32)
    tr, va, te = _split(len(images), p["val_fraction"], p["train_seed"], p.get("test_fraction", 0.0))
    cfg = CnnReadoutConfig(n_neurons=y.shape[1], height=images.shape[1], width=images.shape[2],
                           hidden_channels=p["hidden_channels"], layers=p["layers"], input_kernel=p["input_kernel"],
                           hidden_kernel=p["hidden_kernel"], readout=p["readout"], gamma_input=p["gamma_input"],
                           input_mean=float(images[tr].mean()), input_std=float(images[tr].std()))
    x_t, y_t = torch.as_tensor(images), torch.as_tensor(y)
    data = ((x_t[tr], y_t[tr]), (x_t[va], y_t[va]))
    # members one after another: each is a checkpointed, resumable, cancellable fit with
    # its own progress; they share the split, so the test images stay untouched by all
    fits = [_train_member(ctx, p, cfg, data, k) for k in range(int(p.get("ensemble", 1)))]
    members = [m for m, _ in fits]
    model = Ensemble(members).eval() if len(members) > 1 else members[0]
    with torch.no_grad():
        pred = model(x_t).numpy()
    val_corr = pearson_per_channel(pred[va], y[va])
    test_corr = pearson_per_channel(pred[te], y[te]) if len(te) > 1 else np.full(y.shape[1], np.nan)
    kept_units = r["unit_ids"][r["keep"]]
    save_members(ctx.workdir, members, {"train_images": tr.tolist(), "val_images": va.tolist(),
                                        "val_corr": val_corr.tolist(), "test_images": te.tolist(),
                                        "test_corr": test_corr.tolist(), "unit_ids": kept_units.tolist()})
    import pandas as pd

    ctx.save_table("mei model fit", pd.DataFrame(
        {"test_corr": test_corr, "val_corr": val_corr, "train_corr": pearson_per_channel(pred[tr], y[tr])},
        index=pd.Index(kept_units, name="unit_id")), meta=TableMeta.of(higher=["test_corr", "val_corr", "train_corr"]))
    result = fits[-1][1]
    status = ",".join(sorted({f[1].status for f in fits}))
    return {"n_neurons": int(y.shape[1]), "n_models": len(members), "median_val_corr": float(np.nanmedian(val_corr)),
            "median_test_corr": float(np.nanmedian(test_corr)) if len(te) > 1 else None,
            "n_test_images": int(len(te)),
            "train_status": status, "train_s": round(sum(f[1].elapsed_s for f in fits), 2),
            "device": result.device.get("device", "cpu")}


def _compare(meis, images, mean_kept, gabors, val_corr, truth, activation, best_nat, unit_ids):
    """One row of comparisons per modelled neuron."""
    import pandas as pd

    from engine.mei import (circular_mask, masked_contrast, masked_luminance, pixel_corr, symmetry_index,
                            top_images_mean)

    rows, tops = [], []
    h, w = meis.shape[1:]
    for i in range(len(meis)):
        top, idx = top_images_mean(images, mean_kept[:, i], 3)
        tops.append(top)
        g = gabors[i]
        mask = circular_mask(h, w, (g.x0, g.y0), float(np.clip(2.5 * g.sigma, 3, min(h, w) / 2)))
        row = {"unit_id": unit_ids[i], "val_corr": val_corr[i], "mei_activation": activation[i],
               "best_image_activation": best_nat[i], "activation_ratio": activation[i] / best_nat[i],
               "gabor_r2": g.r2, "gabor_theta_deg": np.degrees(g.theta), "gabor_wavelength": g.wavelength,
               "mei_gabor_corr": pixel_corr(meis[i], g.image), "mei_top3_corr": pixel_corr(meis[i], top),
               "mei_luminance": masked_luminance(meis[i], mask), "mei_contrast": masked_contrast(meis[i], mask),
               "top1_luminance": masked_luminance(images[idx[0]], mask),
               "top1_contrast": masked_contrast(images[idx[0]], mask),
               "mei_symmetry_1": symmetry_index(meis[i], 1), "mei_symmetry_2": symmetry_index(meis[i], 2),
               "gabor_symmetry_1": symmetry_index(g.image, 1), "gabor_symmetry_2": symmetry_index(g.image, 2)}
        if truth is not None:
            rf = truth[i]
            row.update({"mei_rf_corr": abs(pixel_corr(meis[i], rf)),
                        "top1_rf_corr": abs(pixel_corr(images[idx[0]], rf)),
                        "top3_rf_corr": abs(pixel_corr(top, rf)),
                        "gabor_rf_corr": abs(pixel_corr(g.image, rf))})
        rows.append(row)
    return pd.DataFrame(rows).set_index("unit_id"), np.stack(tops)


def mei(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    import torch

    from engine.device import pick_device
    from engine.mei import MEIConfig, fit_gabor, optimize_meis, optimize_meis_joblib, power_spectrum
    from engine.png import tile, write_gray

    r = _load_responses(ctx)
    if not (ctx.workdir / MODEL).exists():
        raise FileNotFoundError(f"{ctx.workdir / MODEL} is missing: run the 'train' step first")
    model, info = _load_model(ctx)
    images = r["images"].astype(np.float32)
    mean_kept = r["mean"][:, r["keep"]]
    n = mean_kept.shape[1]
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    norm = float(np.linalg.norm(centred.reshape(len(images), -1), axis=1).mean())
    cfg = MEIConfig(steps=p["mei_steps"], lr=p["mei_lr"], starts=p["mei_starts"], precondition=(p["precondition"], 0.0),
                    blur=(p["blur_start"], p["blur_end"]), mean=float(images.mean()), norm=norm, jitter=p["jitter"], seed=p["mei_seed"])
    ctx.reporter.log(f"MEI contrast budget: L2 norm {norm:.2f} (mean of the images), mean luminance {cfg.mean:.3f}")
    if p["n_jobs"] > 1:
        res = optimize_meis_joblib(model, np.arange(n), images.shape[1:], cfg, n_jobs=p["n_jobs"],
                                   chunk_size=max(1, int(np.ceil(n / p["n_jobs"]))))
    else:
        dev = pick_device(p["device"])
        model = model.to(dev)
        res = optimize_meis(model, np.arange(n), images.shape[1:], cfg, reporter=ctx.reporter, device=dev)
        model = model.cpu()
    with torch.no_grad():
        nat = model(torch.as_tensor(images)).numpy()
    best_nat = nat.max(axis=0)
    ctx.reporter.progress(0, n, "fitting Gabors")
    gabors = []
    for i in range(n):
        gabors.append(fit_gabor(res.images[i]))
        if ctx.cancelled:
            from engine.reporting import Cancelled

            raise Cancelled("cancelled while fitting Gabors")
    truth = None
    truth_path = _data_source(ctx, p) / "ground_truth.npz" if (p.get("data") or (ctx.workdir / DATA_DIR).exists()) else None
    if truth_path is not None and truth_path.exists():
        with np.load(truth_path) as f:
            ids = list(f["unit_ids"])
            truth = f["rfs"][[ids.index(u) for u in r["unit_ids"][r["keep"]]]]
    val_corr = np.asarray(info["val_corr"], float)
    unit_ids = r["unit_ids"][r["keep"]]
    table, tops = _compare(res.images, images, mean_kept, gabors, val_corr, truth, res.activation, best_nat, unit_ids)
    ctx.save_table("mei comparison", table, meta=TableMeta.of(higher=[
        "mei_rf_corr", "gabor_rf_corr", "top1_rf_corr", "top3_rf_corr", "mei_gabor_corr", "mei_top3_corr", "gabor_r2",
        "val_corr", "activation_ratio"]))
    table.to_csv(ctx.workdir / "mei_comparison.csv")
    gab = np.stack([g.image for g in gabors]).astype(np.float32)
    save_npz(ctx.workdir / MEIS, meis=res.images, gabors=gab, top3_mean=tops.astype(np.float32),
             activation=res.activation, all_activations=res.all_activations, trace=res.trace,
             best_image_activation=best_nat, unit_ids=unit_ids, val_corr=val_corr,
             power_mei=np.stack([power_spectrum(m) for m in res.images]).astype(np.float32),
             power_gabor=np.stack([power_spectrum(g) for g in gab]).astype(np.float32),
             gabor_params=json.dumps([g.params() for g in gabors]),
             **({"true_rfs": truth.astype(np.float32)} if truth is not None else {}))
    ctx.reporter.artifact("meis.npz", ctx.workdir / MEIS, kind="npz")
    png_dir = ctx.workdir / "png"
    for name, arr in (("meis", res.images), ("gabors", gab), ("top3", tops)):
        write_gray(png_dir / f"{name}.png", tile(arr), scale=3)
        ctx.reporter.artifact(f"{name}.png", png_dir / f"{name}.png", kind="png")
    if truth is not None:
        write_gray(png_dir / "true_rfs.png", tile(truth), scale=3)
    well = val_corr >= p["min_val_corr"]
    out = {"n_neurons": int(n), "median_val_corr": float(np.nanmedian(val_corr)),
           "mei_activation_ratio": float(np.median(table["activation_ratio"])),
           "mei_activation_ratio_min": float(table["activation_ratio"].min()),
           "n_well_fitted": int(well.sum()), "median_gabor_r2": float(table["gabor_r2"].median())}
    if truth is not None and well.any():
        t = table[well]
        out.update({"mei_rf_corr_median": float(t["mei_rf_corr"].median()),
                    "top1_rf_corr_median": float(t["top1_rf_corr"].median()),
                    "top3_rf_corr_median": float(t["top3_rf_corr"].median()),
                    "frac_mei_beats_top1": float((t["mei_rf_corr"] > t["top1_rf_corr"]).mean())})
    return out
