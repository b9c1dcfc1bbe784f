"""What every analysis does to distil equations: fit SINDy, sweep its threshold,
store both so the Equations pane can move the threshold without refitting.

The equations payload (in the session) is an ``engine.sindy.equation_set.EquationSet``
(the model plus a small sweep summary); the sweep's coefficient stack (thresholds × states ×
terms) goes to an ``.npz`` artifact named in the payload as ``sweep_path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.analyses.base import ParamError, StepContext


def fit_and_sweep(ctx: StepContext, name: str, x, t, u=None, *, degree: int, threshold: float,
                  alpha: float, feature_names=None, control_names=None, n_thresholds: int = 64,
                  extra: dict[str, Any] | None = None, discrete_time: bool = False,
                  normalize_columns: bool = False, constant_tol: float | None = None, select: str = "rows",
                  x_dot=None, augment=None, rollout_steps: int = 20, n_rollouts: int = 16,
                  max_terms: int | None = None, stability_steps: int = 0):
    """Fit at ``threshold``, sweep ``n_thresholds`` thresholds, store equations + sweep.

    ``threshold <= 0`` means "let the data choose": the model is the sweep's knee
    (PySR-style best trade of terms against validation error), since the right
    threshold depends on the scale of the derivatives; with ``select="per_equation"``
    each equation at its own knee (teacher-forced held-out rollouts, absolute errors).
    ``normalize_columns``, ``constant_tol``: as :class:`engine.sindy.Sindy`; ``x_dot`` and
    ``augment``: targets from the model itself (see ``threshold_sweep``; ``augment`` enters
    the sweep's fits only); ``max_terms``: at most this many terms in all (per equation).  Returns ``(model, payload)``; the payload is what was saved
    under ``name``.
    """
    from engine.atomic import save_npz
    from engine.sindy import Sindy, threshold_sweep
    from engine.sindy.budget import LibraryTooLarge
    from engine.sindy.equation_set import EquationSet, SweepSummary

    def cancel() -> bool:  # polled between solves: a cancel stops a long fit within one solve
        return ctx.reporter.cancelled

    def make() -> Sindy:
        return Sindy(degree=degree, threshold=max(threshold, 1e-12), alpha=alpha, discrete_time=discrete_time,
                     normalize_columns=normalize_columns, constant_tol=constant_tol)

    try:
        sweep = threshold_sweep(x, t=t, u=u, x_dot=x_dot, model=make(), thresholds=n_thresholds,
                                feature_names=feature_names, control_names=control_names,
                                reporter=ctx.reporter, cancel=cancel, select=select, augment=augment,
                                rollout_steps=rollout_steps, n_rollouts=n_rollouts, max_terms=max_terms,
                                stability_steps=stability_steps)
    except LibraryTooLarge as exc:  # bad parameters: one line, no traceback
        raise ParamError(str(exc)) from None
    extra = dict(extra or {})
    if sweep.constants:
        ctx.reporter.log(f"{name}: constant (std below {constant_tol:g}), not fitted: "
                         + ", ".join(f"{k} = {v:.4g}" for k, v in sweep.constants.items()))
    if threshold > 0 or sweep.knee < 0:
        model = make()
        model.exact = False  # the sweep's Gram-only refits: no uninterruptible pass over the data
        model.fit(x, t=t, u=u, x_dot=x_dot, feature_names=feature_names, control_names=control_names, cancel=cancel)
    elif select == "per_equation" and sweep.selected is not None:
        assert sweep.rows is not None and sweep.equation_err is not None  # set with `selected`
        model = sweep.model("selected")
        err = sweep.equation_err
        rows = [int(r) for r in sweep.rows]
        extra.update(equation_rows=rows,
                     equation_thresholds=[None if r < 0 else float(sweep.thresholds[r]) for r in rows],
                     equation_rollout_err=[None if r < 0 or not np.isfinite(err[r, k])
                                           else float(err[r, k]) for k, r in enumerate(rows)])
        ctx.reporter.log(f"{name}: each equation at its own threshold ({int(np.count_nonzero(model.coef_))} "
                         f"terms in all; teacher-forced held-out rollouts, absolute errors)")
    else:
        model = sweep.model()  # the knee
        ctx.reporter.log(f"{name}: threshold {model.threshold:.3g} chosen at the sweep's knee "
                         f"({int(np.count_nonzero(model.coef_))} terms)")
    table = sweep.table
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    path = Path(ctx.workdir) / f"sweep_{safe}.npz"
    save_npz(path, **sweep.arrays())  # + Gram statistics and rollout starts: hand edits refit and score
    summary = SweepSummary(
        threshold=tuple(float(v) for v in table["threshold"]),
        n_terms=tuple(int(v) for v in table["n_terms"]),
        deriv_err=_clean(table["deriv_err"]),
        rollout_err=_clean(table["rollout_err"]),
        diverged_frac=_clean(table["diverged_frac"]),
        knee=int(sweep.knee),
        error_column=sweep.error_column,
    )
    eqs = EquationSet.from_model(model, sweep=summary, sweep_path=str(path), extra=extra)
    payload = eqs.to_payload()
    ctx.save_equations(name, payload)
    ctx.reporter.artifact(path.name, path, kind="sweep")
    return model, payload


def _clean(col) -> tuple[float | None, ...]:
    return tuple(None if not np.isfinite(v) else float(v) for v in np.asarray(col, dtype=float))
