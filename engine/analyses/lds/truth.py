"""The ``truth`` step of ``lds``: the inferred latents and their SINDy fit against the generator.

Reads what ``evaluate`` and ``sindy`` wrote and the stored truth (latents, A0);
it fits nothing that a reported model depends on.  The maps fitted here (true
latents from inferred ones; modes matched to true latents) are part of the
scores, fitted on training trials and scored on the test trials.

Table ``lds truth``, one row per latent set:

* ``inferred (modal basis)``: the ``sindy`` step's fit on the RNN's latents;
* ``true latents (reference)``: the same procedure (threshold chosen on the same
  validation trials) on the generator's latents: what a perfect encoder allows.

Columns: the chosen threshold, the true diagonal terms found, the extra terms
(most in one equation and in all), the missed ones, the largest error of a
diagonal coefficient against ``A0 - I``, and the cross-validated latent R².
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.analyses.lds.sindy import SINDY_FILE, fit_select, split_fit_val
from engine.truth import support_vs_truth


def latent_r2_cv(q: np.ndarray, y: np.ndarray, train: slice, test: slice) -> float:
    """R² of the true latents ``y`` predicted linearly from ``q`` (map fitted on ``train`` trials, scored on ``test``)."""
    k = q.shape[-1]
    X = np.column_stack([np.ones(q[:, train].size // k), q[:, train].reshape(-1, k)])
    M = np.linalg.lstsq(X, y[:, train].reshape(-1, y.shape[-1]), rcond=None)[0]
    Xt = np.column_stack([np.ones(q[:, test].size // k), q[:, test].reshape(-1, k)])
    yt = y[:, test].reshape(-1, y.shape[-1])
    res = ((yt - Xt @ M) ** 2).sum()
    return float(1 - res / ((yt - yt.mean(0)) ** 2).sum())


def match_modes(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """For each true latent j, the mode ``z[..., perm[j]]`` most correlated with it (one-to-one, Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    a = z.reshape(-1, z.shape[-1])
    b = y.reshape(-1, y.shape[-1])
    a = (a - a.mean(0)) / a.std(0)
    b = (b - b.mean(0)) / b.std(0)
    c = np.abs(a.T @ b) / len(a)                    # (modes, true)
    rows, cols = linear_sum_assignment(-c)
    perm = np.empty(b.shape[1], dtype=int)
    perm[cols] = rows
    return perm


def score_fit(coef: np.ndarray, truth: np.ndarray, tol: float = 0.0) -> dict[str, Any]:
    """Support and diagonal error of ``coef`` against ``truth`` (both (source, target), same order)."""
    s = support_vs_truth(coef.T, truth.T, tol)
    diag_found = int((np.abs(np.diag(coef)) > tol).sum())
    return {"diag_found": diag_found, "n_latents": len(truth), "extra_max_per_eq": int(s["extra"].max()),
            "extra_total": int(s["extra"].sum()), "missed": int(s["missed"].sum()),
            "diag_max_abs_err": float(np.abs(np.diag(coef) - np.diag(truth)).max())}


def truth(ctx, p: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    from engine.session import TableMeta

    from engine.analyses.lds.steps import PRED_FILE, load_data, trial_split
    from engine.analyses.lds.sindy import to_modal

    data = load_data(ctx, p)
    if getattr(data, "latents", None) is None or getattr(data, "A0", None) is None:
        return ctx.no_truth("true latents")
    for f in (PRED_FILE, SINDY_FILE):
        if not (ctx.workdir / f).exists():
            raise FileNotFoundError(f"{ctx.workdir / f} is missing: run the 'evaluate' and 'sindy' steps first")
    with np.load(ctx.workdir / PRED_FILE) as f:
        q = f["latents_inferred"].astype(float)
    with np.load(ctx.workdir / SINDY_FILE) as f:
        s = {k: f[k] for k in f.files}
    y = np.asarray(data.latents, float)
    A = np.asarray(data.A0, float) - np.eye(len(data.A0))
    tr, te = trial_split(data, p)
    fit_tr, val_tr = split_fit_val(tr, p["sindy_val_trials"])
    score_trials = te if te.stop > te.start else tr
    r2 = latent_r2_cv(q, y, tr, score_trials)
    # the inferred fit: modes matched to true latents on the fitting trials, coefficients put in that order
    z = to_modal(q, (s["mean"], s["V"], s["scale"]))
    perm = match_modes(z[:, fit_tr], y[:, fit_tr])
    inferred = score_fit(s["coef"][np.ix_(perm, perm)], A)
    unmatched = np.setdiff1d(np.arange(len(s["coef"])), perm)
    if len(unmatched):  # more RNN modes than true latents: their terms in the matched equations are extra
        extra = (s["coef"][np.ix_(unmatched, perm)] != 0).sum(0)
        inferred["extra_total"] += int(extra.sum())
        inferred["extra_max_per_eq"] = max(inferred["extra_max_per_eq"], int(extra.max()))
    ref = fit_select(y[:, fit_tr], y[:, val_tr], horizon=p["sindy_horizon"])
    reference = score_fit(ref.coef, A)
    # the true-latent fit is the reference (a ceiling), never the best model of the table
    rows = [{"latents": "inferred (modal basis)", "role": "model", "threshold": float(s["threshold"]), **inferred,
             "latent_r2_cv": r2},
            {"latents": "true latents (reference)", "role": "ceiling", "threshold": ref.threshold, **reference,
             "latent_r2_cv": 1.0}]
    table = pd.DataFrame(rows).set_index("latents")
    ctx.save_table("lds truth", table, meta=TableMeta.of(
        higher=["diag_found", "latent_r2_cv"], lower=["diag_max_abs_err", "missed", "extra_total", "extra_max_per_eq"]))
    out = {"latent_r2_cv": r2, "latent_r2_trials": "test" if te.stop > te.start else "train",
           **{f"inferred_{k}": v for k, v in inferred.items()},
           **{f"reference_{k}": v for k, v in reference.items()}, "reference_threshold": ref.threshold}
    for k in ("latent_r2_cv", "inferred_diag_found", "inferred_extra_max_per_eq", "inferred_diag_max_abs_err"):
        ctx.reporter.metric(k, float(out[k]))
    return out
