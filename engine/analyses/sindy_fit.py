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
                  extra: dict[str, Any] | None = None, discrete_time: bool = False):
    """Fit at ``threshold``, sweep ``n_thresholds`` thresholds, store equations + sweep.

    ``threshold <= 0`` means "let the data choose": the model is the sweep's knee
    (PySR-style best trade of terms against validation error), since the right
    threshold depends on the scale of the derivatives.  Returns ``(model, payload)``;
    the payload is what was saved under ``name``.
    """
    from engine.atomic import save_npz
    from engine.sindy import Sindy, threshold_sweep
    from engine.sindy.budget import LibraryTooLarge
    from engine.sindy.equation_set import EquationSet, SweepSummary

    def cancel() -> bool:  # polled between solves: a cancel stops a long fit within one solve
        return ctx.reporter.cancelled

    settings = Sindy(degree=degree, threshold=max(threshold, 1e-12), alpha=alpha, discrete_time=discrete_time)
    try:
        sweep = threshold_sweep(x, t=t, u=u, model=settings, thresholds=n_thresholds,
                                feature_names=feature_names, control_names=control_names,
                                reporter=ctx.reporter, cancel=cancel)
    except LibraryTooLarge as exc:  # bad parameters: one line, no traceback
        raise ParamError(str(exc)) from None
    if threshold > 0 or sweep.knee < 0:
        model = Sindy(degree=degree, threshold=max(threshold, 1e-12), alpha=alpha, discrete_time=discrete_time)
        model.fit(x, t=t, u=u, feature_names=feature_names, control_names=control_names, cancel=cancel)
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
