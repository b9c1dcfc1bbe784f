"""The truth step of ``connectome`` and ``stimulus``: every recovery scored against the generator.

Runs after ``train`` and ``evaluate`` and only reads what they wrote (the model,
the chosen clusters, ``evaluate.json``) and the generator's stored truth; it
fits and selects nothing.  Table rows carry a ``section`` (``held-out``: what
the data alone say, from ``evaluate``; ``truth``: against the generator) and the
``target`` the model was trained on (realistic or oracle).

Arrays for the views (every file an ``.npz`` in the analysis folder):

``connectivity.npz``
    ``W_true``, ``W_learned`` (n, n): both in the common gauge
    ``<Omega_i> W_ij psi_j'(0)`` (what ``W_r2``/``W_slope`` compare; the
    diagonal is 0); ``W_true_raw`` (g W of the simulator) and
    ``W_learned_raw`` (the model's W*); ``psi_slope`` (n,) learned
    ``psi*'(0)``; ``omega_mean`` (n,) learned ``<Omega*_i>``.
``functions.npz``
    ``x`` (G,) grid of activities; ``phi_true``, ``phi_learned``,
    ``psi_true``, ``psi_learned`` (n_types, G), psi in the gauge
    ``psi'(0) = 1``, learned curves the median over the neurons of each
    true type; ``embedding`` (n, d) and ``types`` (n,) true cell types.
``field.npz`` (when an input was learned)
    ``true``, ``learned`` (n_frames, n_input) Omega/I and the SIREN's
    Omega*/I*; ``learned_corrected`` = ``a * learned + b`` (the global
    linear fit of the corrected R²); ``t`` (n_frames,); ``pos``
    (n_input, 2) grid positions in [0, 1]² (row-major ``grid x grid``).
``rollout.npz``
    ``t`` (T,), ``x_true``, ``x_pred`` (T, n): a noise-free simulation of a
    *fresh* run of the same network (``heldout_seed``: an initial state the
    model never saw) and the learned model integrated from it; ``rollout_r2``
    is their R².
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from engine.analyses.base import StepContext
from engine.analyses.connectome.steps import (CLUSTERS_FILE, CONNECTIVITY_FILE, CURVES_FILE, EVALUATE_FILE,
                                              FIELD_FILE, ROLLOUT_FILE, _true_psi_slope, fresh_run, frame_times,
                                              gauge_fixed_W, integrate, load, load_model)
from engine.truth import adjusted_rand, r2_per_row, r2_slope


def _need(path, step: str):
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the {step!r} step first")
    return path


def truth(ctx: StepContext, p: dict[str, Any]) -> dict[str, Any]:
    """W R²/slope, ARI of the chosen types, phi/psi per type, the field, a fresh-run rollout."""
    import pandas as pd
    import torch

    from engine.atomic import save_npz
    from engine.data.pde_n4 import phi, psi
    from engine.metrics import corrected_r2
    from engine.session import TableMeta

    data = load(ctx)
    model, _ = load_model(ctx)
    held = json.loads(_need(ctx.workdir / EVALUATE_FILE, "evaluate").read_text())
    with np.load(_need(ctx.workdir / CLUSTERS_FILE, "evaluate")) as f:
        labels = f["labels"]
    cfg = model.config
    n, g = cfg.n_neurons, cfg.grid**2
    ctx.reporter.progress(0, 4, "W, cell types")
    t_norm = torch.as_tensor(frame_times(data.x.shape[1]))
    with torch.no_grad():
        a = model.embedding.detach()
        W_learned = model.W_masked().numpy().astype(float)
        h = 0.1 * float(np.std(data.x))
        xs = torch.tensor([[-h], [h]], dtype=torch.float32).expand(2, n)
        pv = model.psi_of(xs, a).numpy()
        psi_slope = (pv[1] - pv[0]) / (2 * h)
        field = None
        if cfg.input != "none":
            field = torch.cat([model.omega(t_norm[i:i + 512]) for i in range(0, len(t_norm), 512)]).numpy()
    omega_learned, omega_true = np.ones(n), np.ones(n)
    if cfg.input == "modulate":
        assert field is not None  # a model with an input always learned a field
        omega_learned[:g] = field.mean(0)
        omega_true[:g] = data.field.mean(0)
    elif data.config.input == "modulate":  # no input learned: the model can only learn the mean gain
        omega_true[: data.config.n_input] = data.field.mean(0)
    # the model's W* also carries the global gain g (g W psi is what the data see)
    W_true_g = gauge_fixed_W(data.config.gain * data.W, _true_psi_slope(data), omega_true)
    W_learn_g = gauge_fixed_W(W_learned, psi_slope, omega_learned)
    off = ~np.eye(n, dtype=bool)
    W_r2, W_slope = r2_slope(W_true_g[off], W_learn_g[off])
    W_r2_raw, W_slope_raw = r2_slope(data.config.gain * data.W[off], W_learned[off])
    save_npz(ctx.workdir / CONNECTIVITY_FILE, W_true=W_true_g, W_learned=W_learn_g,
             W_true_raw=data.config.gain * data.W, W_learned_raw=W_learned, psi_slope=psi_slope,
             omega_mean=omega_learned)
    ctx.reporter.artifact(CONNECTIVITY_FILE, ctx.workdir / CONNECTIVITY_FILE, kind="npz")
    emb = a.numpy()
    n_types = len(data.params)
    out: dict[str, Any] = {"W_r2": W_r2, "W_slope": W_slope, "W_r2_raw": W_r2_raw, "W_slope_raw": W_slope_raw,
                           "types_ari": adjusted_rand(labels, data.types), "n_types_true": n_types}

    ctx.reporter.progress(1, 4, "update and edge functions per type")
    lim = float(np.percentile(np.abs(data.x), 99))
    grid_x = np.linspace(-lim, lim, 101)
    inp0, fit = None, None
    if cfg.input == "additive":
        fit = corrected_r2(data.field, field)
        if model.phi_takes_input:
            # phi* is read at the learned input that corresponds to no stimulus (I = a I* + b = 0)
            inp0 = -fit.b / fit.a if fit.a else 0.0
        out.update(r2_raw=fit.r2_raw, r2_corrected=fit.r2_corrected, a=fit.a, b=fit.b)
    elif cfg.input == "modulate":
        fit = corrected_r2(data.field, field)
        out.update(omega_r2_raw=fit.r2_raw, omega_r2_corrected=fit.r2_corrected, omega_a=fit.a, omega_b=fit.b)
    with torch.no_grad():
        gx = torch.as_tensor(grid_x, dtype=torch.float32)[:, None].expand(-1, n)
        inp = None if inp0 is None else torch.full_like(gx, float(inp0))
        phi_n = model.phi_of(gx, a, inp).numpy().T            # (n, G)
        psi_n = (model.psi_of(gx, a).numpy() / psi_slope).T   # in the gauge psi'(0) = 1
    phi_l, psi_l, phi_t, psi_t = (np.zeros((n_types, len(grid_x))) for _ in range(4))
    for k in range(n_types):
        sel = data.types == k
        tau, s, gam, th = data.params[k]
        phi_l[k], psi_l[k] = np.median(phi_n[sel], 0), np.median(psi_n[sel], 0)
        phi_t[k], psi_t[k] = phi(grid_x, tau, s), psi(grid_x, gam, th) / ((1 / gam) - th)
    out["phi_r2"], _ = r2_slope(phi_t, phi_l)
    out["psi_r2"], _ = r2_slope(psi_t, psi_l)
    for k, (rp, rs) in enumerate(zip(r2_per_row(phi_t, phi_l), r2_per_row(psi_t, psi_l))):
        out[f"phi_r2_type{k}"], out[f"psi_r2_type{k}"] = rp, rs
    save_npz(ctx.workdir / CURVES_FILE, x=grid_x, phi_learned=phi_l, phi_true=phi_t, psi_learned=psi_l,
             psi_true=psi_t, embedding=emb, types=data.types)
    ctx.reporter.artifact(CURVES_FILE, ctx.workdir / CURVES_FILE, kind="npz")
    if field is not None:
        assert fit is not None  # fitted above whenever there is a field
        save_npz(ctx.workdir / FIELD_FILE, true=data.field, learned=field, learned_corrected=fit.a * field + fit.b,
                 t=data.t, pos=data.pos)
        ctx.reporter.artifact(FIELD_FILE, ctx.workdir / FIELD_FILE, kind="npz")

    ctx.reporter.progress(2, 4, "rollout on a fresh run")
    clean = fresh_run(data.config, int(p.get("heldout_seed", 1)), noise=False)
    T = min(int(p.get("rollout_frames", 250)), clean.x.shape[1])
    x_pred = integrate(model, clean.x[0, 0], data.config.dt, T, clean.x.shape[1])
    x_true = clean.x[0, :len(x_pred)]
    save_npz(ctx.workdir / ROLLOUT_FILE, t=clean.t[:len(x_pred)], x_true=x_true, x_pred=x_pred)
    ctx.reporter.artifact(ROLLOUT_FILE, ctx.workdir / ROLLOUT_FILE, kind="npz")
    out["rollout_r2"] = r2_slope(x_true, x_pred)[0] if len(x_pred) > 1 else float("nan")
    out["rollout_frames"] = len(x_pred)

    ctx.reporter.progress(3, 4, "tables")
    out = {k: (float(v) if v is not None and math.isfinite(float(v)) else None) for k, v in out.items()}
    numeric_held = {k: v for k, v in held.items() if k != "target"}
    rows = [{"metric": k, "section": "held-out", "value": v} for k, v in numeric_held.items()]
    rows += [{"metric": k, "section": "truth", "value": v} for k, v in out.items()]
    table = pd.DataFrame(rows).set_index("metric")
    table["value"] = table["value"].astype(float)
    table["target"] = held["target"]
    # one "value" column of metrics that point different ways: no column is a score to star
    ctx.save_table(p.get("table", "connectome recovery"), table, meta=TableMeta())
    for key, value in out.items():
        if value is not None:
            ctx.reporter.metric(key, value)
    ctx.reporter.progress(4, 4, "done")
    return {**out, **held}
