"""The retina's SINDy step, one trained model at a time (``engine.analyses.retina.steps.sindy`` calls it).

Hidden states of the CfC over the training frames → SINDy with the encoder's principal
components as control inputs (SINDYc).  What makes the equations readable:

* columns normalised before thresholding (``normalize``), coefficients in original units;
* saturated units (std below ``constant_tol``) reported and kept constant, not fitted;
* each equation at its own threshold (``select="per_equation"``), chosen by held-out
  teacher-forced rollouts in absolute units, so a dead unit cannot dominate and a support
  that diverges is never chosen;
* targets from the model itself (``targets="model"``): the CfC's one-step map at the
  collected states and at ``perturb`` copies pushed off the trajectory, compared with the
  finite differences; a map is written ``h0[k+1] = h0[k] + ...``;
* one control input per state.  ``control="step"`` (the default): the CfC's own one-step
  change of that state from a fixed reference state (its mean) under the frame's encoder
  features (:func:`step_drives`), so the input's nonlinear path through the gates is the
  CfC's and the equations say how the state moves away from it.  ``control="drives"``: the
  encoder-feature direction that moves it, as a polynomial of degree ``drive_degree``
  (:func:`drive_shapes`), since the CfC's gates answer the two signs of a drive unequally.
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


def step_drives(model, u: np.ndarray, h_ref: np.ndarray, discrete: bool) -> np.ndarray:
    """Each state's drive as the CfC itself computes it: its one-step change from the reference
    state ``h_ref`` under each frame's features, ``step(h_ref, u[k]) - h_ref`` (T, units); for a map
    paired with the state before it, like :func:`~engine.analyses.retina.sequences.control_inputs`."""
    d = cfc_step(model)(np.tile(h_ref, (len(u), 1)), u) - h_ref
    return np.concatenate([d[1:], d[-1:]]) if discrete else d


def _increments(xs: list[np.ndarray], us: list[np.ndarray], mean: np.ndarray, discrete: bool):
    """Rows ``(h[k], u - mean, h[k+1] - h[k])`` within each block, ``u`` the features the step
    reads (``u[k+1]`` for a map)."""
    X = np.concatenate([x[:-1] for x in xs])
    U = np.concatenate([(u[1:] if discrete else u[:-1]) - mean for u in us])
    Y = np.concatenate([x[1:] - x[:-1] for x in xs])
    return X, U, Y


def _lstsq_scaled(A: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Least squares of ``Y`` on ``[A, 1]`` with standardised columns; the coefficients of ``A``."""
    A = np.hstack([A, np.ones((len(A), 1))])
    scale = A.std(0) + 1e-9
    scale[-1] = 1.0
    coef = np.linalg.lstsq(A / scale, Y, rcond=None)[0]
    return (coef.T / scale).T[:-1]


def drive_directions(xs: list[np.ndarray], us: list[np.ndarray], mean: np.ndarray, discrete: bool) -> np.ndarray:
    """One control direction per state, ``(units, F)``: the encoder features' coefficients in a
    least-squares fit of that state's increments ``h[k+1] - h[k]`` on ``h[k]``, the features
    the step reads (``u[k+1]`` for a map) and a constant, within each block; each scaled so
    its drive has unit variance.  Unit i's equation then needs one control term, not a mix of
    principal components (the drives are what the CfC's input layer does to each unit)."""
    X, U, Y = _increments(xs, us, mean, discrete)
    B = _lstsq_scaled(np.hstack([X, U]), Y)[X.shape[1]:].T  # (units, F)
    std = (U @ B.T).std(0)
    return B / np.where(std > 1e-12, std, 1.0)[:, None]


def drive_shapes(xs: list[np.ndarray], us: list[np.ndarray], mean: np.ndarray, comps: np.ndarray,
                 discrete: bool, degree: int) -> np.ndarray:
    """Each drive's own nonlinearity, ``(units, degree)``: the coefficients of ``d, d^2, ...``
    of drive ``d_i`` (``comps[i]``) in a least-squares fit of state i's increments on all
    states, those powers of its drive and a constant, within each block; scaled so the
    polynomial has unit variance.  The CfC's gates saturate: a state moves more for one
    sign of its drive than for the other, which one linear control term cannot say."""
    X, U, Y = _increments(xs, us, mean, discrete)
    D = U @ comps.T
    out = np.zeros((comps.shape[0], degree))
    for i in range(comps.shape[0]):
        P = np.column_stack([D[:, i] ** (j + 1) for j in range(degree)])
        c = _lstsq_scaled(np.hstack([X, P]), Y[:, i])[X.shape[1]:]
        std = (P @ c).std()
        out[i] = c / std if std > 1e-12 else np.eye(1, degree)[0]
    return out


def _hold_out_tail(arrays: list[np.ndarray], n_val: int, min_fit: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split per-block arrays into (fit, held out): the last ``n_val`` rows of the last
    blocks are held out.  Held-out pieces under 2 rows are dropped, fitted pieces under
    ``min_fit`` rows too (the sweep holds out a fifth of each for its rollouts) unless
    that would leave none (then the longest stays)."""
    fit: list[np.ndarray] = []
    val: list[np.ndarray] = []
    left = n_val
    for a in reversed(arrays):
        k = min(left, len(a))
        if k >= 2:
            val.insert(0, a[len(a) - k:])
        if len(a) - k >= 2:
            fit.insert(0, a[: len(a) - k])
        left -= k
    long = [a for a in fit if len(a) >= min_fit]
    return (long or [max(fit, key=len)] if fit else []), val


def distil(ctx: StepContext, tag: str, model, us: list[np.ndarray], xs: list[np.ndarray],
           p: dict[str, Any]) -> dict[str, Any]:
    """Fit and store the equations of one model from its encoder features ``us`` and states
    ``xs``, one ``(T_b, F)`` / ``(T_b, units)`` array per recording block (SINDy trajectories:
    no increment pairs frames of two blocks); returns the step's results for this model."""
    from engine.analyses.retina.scoring import sindy_rollout
    from engine.analyses.retina.sequences import control_inputs
    from engine.analyses.sindy_fit import fit_and_sweep
    from engine.metrics import pearson
    from engine.atomic import save_npz
    from engine.sindy import Sindy
    from engine.sindy.targets import compare_targets, map_targets

    if isinstance(xs, np.ndarray):  # one block
        us, xs = [us], [xs]
    dt, discrete = p["dt"], p["discrete_time"]
    n_val = max(200, sum(len(x) for x in xs) // 5)
    # a fitted block must hold the sweep's held-out fifth with room for its rollouts
    min_fit = 5 * (int(p.get("rollout_steps", 20)) + 2)
    # the held-out tail chooses the threshold: the controls are built without it
    x_fit, x_val = _hold_out_tail(xs, n_val, min_fit)
    raw_fit, _ = _hold_out_tail(us, n_val, min_fit)  # the CfC's own inputs, for its step map
    u_all = np.concatenate(raw_fit)
    mean = u_all.mean(0)
    control = p.get("control", "pcs")
    h_ref = None
    if control == "drives":
        comps = drive_directions(x_fit, raw_fit, mean, discrete)
        degree = int(p.get("drive_degree", 1))
    elif control == "step":
        h_ref = np.concatenate(x_fit).mean(0)
        comps, degree = np.eye(xs[0].shape[1], len(mean)), 1  # shapes only: the drives come from the CfC
    else:  # the first principal components of the encoder features (SINDYc)
        _, _, vt = np.linalg.svd(u_all - mean, full_matrices=False)
        comps, degree = vt[: p["control_pcs"]], 1
    names = [f"h{i}" for i in range(xs[0].shape[1])]
    cnames = [f"u{i}" for i in range(comps.shape[0])]
    out: dict[str, Any] = {}
    # without control first: the score to beat (the seed's equations had no input)
    plain = Sindy(degree=p["degree"], threshold=1e-12, alpha=p["alpha"], discrete_time=discrete)
    plain.fit(x_fit, t=dt, feature_names=names)
    val_plain = plain.score(x_val, t=dt, metric="r2")

    targets = p.get("targets", "fd")
    maps = None
    if targets == "model" and discrete:
        # the CfC's own map: exact increments at the collected states (the step from x[k]
        # reads the encoder features of frame k+1, in the same block) and at states
        # perturbed off the path
        step = cfc_step(model)
        maps = [map_targets(step, x[:-1], u[1:len(x)], dt, n_perturb=int(p.get("perturb", 1)),
                            sigma=float(p.get("perturb_sigma", 0.1)), seed=i)
                for i, (x, u) in enumerate(zip(x_fit, raw_fit))]
        gap = max(float(compare_targets(t.y_on, (x[1:] - x[:-1]) / dt).max()) for t, x in zip(maps, x_fit))
        n_off = sum(len(t.x_off) for t in maps)
        ctx.reporter.log(f"{tag}: model targets vs finite differences at the collected states: largest "
                         f"relative RMS gap {gap:.2e} (float32 steps); {n_off} perturbed states added")
        out[f"sindy_target_gap_{tag}"] = gap

    def readout(h: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return model.readout(torch.as_tensor(h, dtype=torch.float32)).double().numpy()

    def fit(degree: int):
        """Equations with these controls (drives of this degree where control="drives"), and their
        free run's rates over the held-out tail correlated with the CfC's there."""
        shape = bounds = None
        if degree > 1:
            shape = drive_shapes(x_fit, raw_fit, mean, comps, discrete, degree)
            d = (u_all - mean) @ comps.T  # the drives the polynomials are fitted on
            bounds = np.column_stack([d.min(0), d.max(0)])
        if h_ref is not None:
            upcs = [step_drives(model, u, h_ref, discrete) for u in us]
        else:
            upcs = [control_inputs(u, mean, comps, discrete, shape, bounds) for u in us]
        u_fit, u_val = _hold_out_tail(upcs, n_val, min_fit)
        x_dot = augment = None
        if maps is not None:
            x_dot = [np.concatenate([t.y_on, t.y_on[-1:]]) for t in maps]  # a block's last sample keeps its neighbour's
            if sum(len(t.x_off) for t in maps):
                augment = (np.concatenate([t.x_off for t in maps]), np.concatenate([uc[t.base] for t, uc in zip(maps, u_fit)]),
                           np.concatenate([t.y_off for t in maps]))
        drives = (f"{comps.shape[0]} drives: the encoder-feature direction that moves each state most "
                  "(least squares of its increments)" + ("" if shape is None else
                  f", each a degree-{shape.shape[1]} polynomial of that direction (its nonlinearity, by least "
                  "squares), held at its edge value beyond the range it was fitted on"))
        ctx.reporter.log(f"{tag}: fitting SINDy with {comps.shape[0]} control inputs ({control}) on "
                         f"{len(x_fit)} block(s), sweeping thresholds")
        best, payload = fit_and_sweep(
            ctx, f"retina {tag}", x_fit, dt, u_fit, degree=p["degree"],
            threshold=p["threshold"], alpha=p["alpha"], feature_names=names, control_names=cnames,
            discrete_time=discrete, normalize_columns=bool(p.get("normalize", False)),
            constant_tol=(p.get("constant_tol") or None), select=p.get("select", "rows"),
            x_dot=x_dot, augment=augment, rollout_steps=int(p.get("rollout_steps", 20)),
            max_terms=(int(p["max_terms"]) if p.get("max_terms") else None),
            stability_steps=int(p.get("stability_steps", 2000)),
            extra={"model": tag, "dt": dt, "data_path": str(ctx.workdir / f"sindy_{tag}.npz"), "targets": targets,
                   "control": (drives if control == "drives" else
                               f"{comps.shape[0]} drives: each state's one-step change in the CfC itself, "
                               "from the state's mean over the fitted frames, under the frame's encoder "
                               "features (the CfC's input path, its recurrence left to the equations)"
                               if control == "step" else
                               f"{comps.shape[0]} principal components of the encoder features")
                              + (" at the next frame (the CfC's step input)" if discrete else "")})
        runs = [sindy_rollout(best, x, u, readout, None, dt) for x, u in zip(x_val, u_val)]
        pred = np.concatenate([r.pred for r in runs])
        # None: the free run left the finite range (the stability check makes that rare)
        score = float(pearson(readout(np.concatenate(x_val)), pred)) if np.isfinite(pred).all() else None
        return score, best, shape, bounds, upcs, u_val

    # choosing the drives' degree by this tail score (1, 2 or 3 each run) was tried on 10 runs
    # (DoG CfCs of 4800 steps, data seeds 0-4 x 12000 / 30000 frames): it took 3 in 9 of them and
    # 2 in the tenth, where the test figure fell (0.94 -> 0.91); the degree stays a parameter, and
    # the score a figure to read
    tail, best, shape, bounds, upcs, u_val = fit(degree)
    if tail is not None:
        ctx.reporter.metric(f"{tag} SINDy free-run corr with the CfC's rates, held-out tail", tail)
    out[f"sindy_tail_corr_{tag}"] = tail
    val = best.score(x_val, t=dt, u=u_val, metric="r2")
    ctx.reporter.metric(f"{tag} SINDy val R2 (control)", val)
    ctx.reporter.metric(f"{tag} SINDy val R2 (no control, all terms)", val_plain)
    save_npz(ctx.workdir / f"sindy_{tag}.npz", coef=best.coef_, u_mean=mean, u_components=comps,
             **({} if shape is None else {"u_shape": shape, "u_bounds": bounds}),
             **({} if h_ref is None else {"u_step_ref": h_ref}),
             x=np.concatenate(xs), u=np.concatenate(upcs), block_lengths=np.array([len(x) for x in xs]))
    out[f"sindy_terms_{tag}"] = int(np.count_nonzero(best.coef_))
    out[f"sindy_constants_{tag}"] = sorted(best.constants_)
    out[f"sindy_val_r2_{tag}"] = val
    out[f"sindy_val_r2_no_control_{tag}"] = val_plain
    return out
