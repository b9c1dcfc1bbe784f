"""The retina's SINDy step, one trained model at a time (``retina_steps.sindy`` calls it).

Hidden states of the CfC over the training frames → SINDy with the encoder's principal
components as control inputs (SINDYc).  What makes the equations readable:

* columns normalised before thresholding (``normalize``), coefficients in original units;
* saturated units (std below ``constant_tol``) reported and kept constant, not fitted;
* each equation at its own threshold (``select="per_equation"``), chosen by held-out
  teacher-forced rollouts in absolute units, so a dead unit cannot dominate and a support
  that diverges is never chosen;
* targets from the model itself (``targets="model"``): the CfC's one-step map at the
  collected states and at ``perturb`` copies pushed off the trajectory, compared with the
  finite differences; a map is written ``h0[k+1] = h0[k] + ...``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.analyses.base import StepContext


def cfc_step(model):
    """The CfC's one-step map on numpy arrays: ``(h (B, units), u (B, features)) -> h_next``."""
    import torch

    def step(h: np.ndarray, u: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            _, s = model.step(torch.as_tensor(u, dtype=torch.float32), torch.as_tensor(h, dtype=torch.float32))
        return s.double().numpy()

    return step


def distil(ctx: StepContext, tag: str, model, u: np.ndarray, x: np.ndarray, p: dict[str, Any]) -> dict[str, Any]:
    """Fit and store the equations of one model from its encoder features ``u`` (T, F) and
    states ``x`` (T, units); returns the step's results for this model."""
    from engine.analyses.retina.steps import _control
    from engine.analyses.sindy_fit import fit_and_sweep
    from engine.atomic import save_npz
    from engine.sindy import Sindy
    from engine.sindy.targets import compare_targets, map_targets

    dt, discrete = p["dt"], p["discrete_time"]
    mean = u.mean(0)
    # control inputs: the first principal components of the encoder features (SINDYc)
    _, _, vt = np.linalg.svd(u - mean, full_matrices=False)
    comps = vt[: p["control_pcs"]]
    upc = _control(u, mean, comps, discrete)
    names = [f"h{i}" for i in range(x.shape[1])]
    cnames = [f"u{i}" for i in range(upc.shape[1])]
    n_val = max(200, len(x) // 5)
    out: dict[str, Any] = {}
    # without control first: the score to beat (the seed's equations had no input)
    plain = Sindy(degree=p["degree"], threshold=1e-12, alpha=p["alpha"], discrete_time=discrete)
    plain.fit(x[:-n_val], t=dt, feature_names=names)
    val_plain = plain.score(x[-n_val:], t=dt, metric="r2")

    x_fit, u_fit = x[:-n_val], upc[:-n_val]
    x_dot = augment = None
    targets = p.get("targets", "fd")
    if targets == "model" and discrete:
        # the CfC's own map: exact increments at the collected states (the step from x[k]
        # reads the encoder features of frame k+1) and at states perturbed off the path
        step = cfc_step(model)
        t = map_targets(step, x_fit[:-1], u[1:len(x_fit)], dt, n_perturb=int(p.get("perturb", 1)),
                        sigma=float(p.get("perturb_sigma", 0.1)), seed=0)
        fd = (x_fit[1:] - x_fit[:-1]) / dt
        gap = float(compare_targets(t.y_on, fd).max())
        ctx.reporter.log(f"{tag}: model targets vs finite differences at the collected states: largest "
                         f"relative RMS gap {gap:.2e} (float32 steps); {len(t.x_off)} perturbed states added")
        out[f"sindy_target_gap_{tag}"] = gap
        x_dot = np.concatenate([t.y_on, t.y_on[-1:]])  # the last sample keeps its neighbour's target
        if len(t.x_off):
            augment = (t.x_off, u_fit[t.base], t.y_off)
    ctx.reporter.log(f"{tag}: fitting SINDy with {p['control_pcs']} control inputs, sweeping thresholds")
    best, payload = fit_and_sweep(
        ctx, f"retina {tag}", x_fit, dt, u_fit, degree=p["degree"],
        threshold=p["threshold"], alpha=p["alpha"], feature_names=names, control_names=cnames,
        discrete_time=discrete, normalize_columns=bool(p.get("normalize", False)),
        constant_tol=(p.get("constant_tol") or None), select=p.get("select", "rows"),
        x_dot=x_dot, augment=augment, rollout_steps=int(p.get("rollout_steps", 20)),
        max_terms=(int(p["max_terms"]) if p.get("max_terms") else None),
        stability_steps=int(p.get("stability_steps", 2000)),
        extra={"model": tag, "dt": dt, "data_path": str(ctx.workdir / f"sindy_{tag}.npz"), "targets": targets,
               "control": f"{p['control_pcs']} principal components of the encoder features"
                          + (" at the next frame (the CfC's step input)" if discrete else "")})
    val = best.score(x[-n_val:], t=dt, u=upc[-n_val:], metric="r2")
    ctx.reporter.metric(f"{tag} SINDy val R2 (control)", val)
    ctx.reporter.metric(f"{tag} SINDy val R2 (no control, all terms)", val_plain)
    save_npz(ctx.workdir / f"sindy_{tag}.npz", coef=best.coef_, u_mean=mean, u_components=comps, x=x, u=upc)
    out[f"sindy_terms_{tag}"] = int(np.count_nonzero(best.coef_))
    out[f"sindy_constants_{tag}"] = sorted(best.constants_)
    out[f"sindy_val_r2_{tag}"] = val
    out[f"sindy_val_r2_no_control_{tag}"] = val_plain
    return out
