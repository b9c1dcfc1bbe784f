"""Threshold sweeps: every threshold in one batched STLSQ, scored on held-out data.

``threshold_sweep`` fits every threshold in one batched STLSQ (default 64 log-spaced
thresholds spanning the first ridge solution's coefficient sizes) and scores each model on
held-out data (:mod:`.holdout`): the derivative error (``1 - R²`` of ``ẋ``) and a short-rollout
error (batched RK4 from several held-out states, all models at once).  The result is a table
(pandas) with the Pareto front and a knee picked the way PySR picks its "best" equation
(:mod:`.pareto`); :meth:`SweepResult.arrays` is what :func:`~engine.sindy.stored.load_sweep`
reads back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np

from ._inputs import REAL_SCALARS, Times, as_list, as_optional_list, as_times
from .design import (allowed_terms, check_params, check_size, constant_states, library_matrix, make_library,
                     prepare)
from .errors import check_cancel
from .gram import GramStats
from .holdout import rollout_errors, rollout_set, split_holdout, stability_rollouts
from .model import Sindy
from .pareto import knee_point, pareto_front
from .selection import equation_errors, select_rows, stabilise, within_budget
from .stlsq_algorithm import ridge_path_thresholds, stlsq, stlsq_gram
from .stored import gram_arrays

__all__ = ["SweepResult", "threshold_sweep"]


@dataclass
class SweepResult:
    """A threshold sweep: one row per threshold.

    Attributes
    ----------
    table : pandas.DataFrame
        ``threshold, n_terms, train_err, deriv_err, rollout_err, diverged_frac, on_front,
        score, is_knee`` (errors are ``1 - R²`` of ``ẋ`` and RMS rollout errors in the states' units).
    coefs : ndarray (n_thresholds, n_states, n_features)
    knee : int
        Row of the chosen model (PySR-style), -1 if none.
    error_column : str
        The error the front and the knee use (``rollout_err`` unless unavailable).
    """

    table: Any
    coefs: np.ndarray
    thresholds: np.ndarray
    feature_names: list[str]
    state_names: list[str]
    control_names: list[str]
    error_column: str
    knee: int
    settings: dict[str, Any] = field(default_factory=dict)
    gram: GramStats | None = None
    timings: dict[str, float] = field(default_factory=dict)
    val_gram: GramStats | None = None  # of the held-out data (scores hand edits, see StoredSweep)
    rollouts: dict | None = None  # the held-out rollout starts (see holdout.rollout_set)
    # selection per equation (select="per_equation"): the row of each equation, its
    # teacher-forced rollout error per (row, equation), and the combined coefficients
    rows: np.ndarray | None = None
    equation_err: np.ndarray | None = None
    selected: np.ndarray | None = None
    constants: dict = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """What :func:`load_sweep` needs, as arrays for ``np.savez``: the coefficient stack, and
        the training/held-out Gram statistics and rollout starts that refit and score edits."""
        out: dict[str, np.ndarray] = {"coefs": self.coefs, "thresholds": self.thresholds}
        for prefix, g in (("gram", self.gram), ("val_gram", self.val_gram)):
            if g is not None:
                out.update(gram_arrays(prefix, g))
        if self.rollouts is not None:
            out.update({f"ro_{k}": v for k, v in self.rollouts.items() if v is not None})
            out["ro_settings"] = np.array([self.settings.get("rollout_substeps", 1), self.settings.get("bound", np.inf)])
            out["ro_method"] = np.array(self.settings.get("rollout_method", "rk4"))
        return out

    def model(self, i: int | Literal["selected"] | None = None) -> Sindy:
        """The model of row ``i`` (default: the knee) as a :class:`Sindy`; ``i="selected"``:
        each equation at its own row (``select="per_equation"``)."""
        if isinstance(i, str):
            if i != "selected" or self.selected is None:
                raise ValueError("only a sweep made with select='per_equation' has a selected model")
            coef, thr = self.selected, float("nan")
        else:
            i = self.knee if i is None else int(i)
            coef, thr = self.coefs[i], float(self.thresholds[i])
        s = self.settings
        m = Sindy.from_coefficients(
            coef, degree=s["degree"], include_bias=s["include_bias"],
            include_interaction=s["include_interaction"], interaction_only=s["interaction_only"],
            feature_names=self.state_names, control_names=self.control_names,
            threshold=thr if np.isfinite(thr) else float(np.median(self.thresholds)), alpha=s["alpha"],
            max_iter=s["max_iter"], discrete_time=bool(s.get("discrete_time", False)),
            normalize_columns=bool(s.get("normalize_columns", False)), constant_tol=s.get("constant_tol"),
        )
        m.x_scale_ = s.get("x_scale", 1.0)
        m.dt_ = s.get("dt")
        m.constants_ = dict(self.constants)
        if self.gram is not None:
            m.gram_ = self.gram
        return m

    def equations(self, i: int | Literal["selected"] | None = None, precision: int = 3) -> list[str]:
        return self.model(i).equations(precision)

    @property
    def front(self):
        """The Pareto-front rows, simplest first."""
        t = self.table
        return t[t["on_front"]].sort_values(["n_terms", self.error_column])


def threshold_sweep(
    x,
    t=None,
    u=None,
    *,
    model: Sindy | None = None,
    thresholds: int | Sequence[float] = 64,
    x_dot=None,
    val_fraction: float = 0.2,
    rollout_steps: int = 20,
    n_rollouts: int = 16,
    rollout_substeps: int = 1,
    device=None,
    exact: bool = False,
    feature_names=None,
    control_names=None,
    reporter=None,
    cancel=None,
    max_degree: int | None = None,
    max_features: int | None = None,
    select: str = "rows",
    augment=None,
    max_terms: int | None = None,
    stability_steps: int = 0,
) -> SweepResult:
    """Fit many thresholds at once and score them on held-out data.

    Parameters
    ----------
    x, t, u, x_dot
        As :meth:`Sindy.fit`.
    model : Sindy, optional
        Settings (degree, alpha, max_iter, differentiation, names); its threshold is ignored.
    thresholds : int or sequence
        How many log-spaced thresholds (spanning the first ridge solution's ``|c|``), or the
        thresholds themselves.
    val_fraction : float
        Share held out for validation (0 disables validation errors).
    rollout_steps, n_rollouts : int
        Length (in samples) and number of the short validation rollouts (0 disables them).
    device : optional
        Torch device for the STLSQ solves and the rollouts.
    exact : bool
        Exact pysindy refits on ill-conditioned supports (slower); see ``stlsq``.
    reporter : engine.reporting.Reporter, optional
        Progress and cancellation (polled between solves, as ``cancel`` is).
    cancel : callable, optional
        True stops the sweep with ``engine.reporting.Cancelled`` at the next solve.
    max_degree, max_features : int, optional
        Limits of :func:`engine.sindy.budget.check_library`, checked before the library is built.
    select : {"rows", "per_equation"}
        ``per_equation``: also pick each equation at its own threshold by teacher-forced
        held-out rollouts in absolute units (:mod:`engine.sindy.selection`); the result's
        ``selected`` / ``model("selected")``.  The model's ``normalize_columns`` and
        ``constant_tol`` apply as in :meth:`Sindy.fit` (thresholds then in normalised units).
    max_terms : int, optional
        With ``per_equation``: at most this many terms in all (the equations that lose least
        give up terms first, :func:`engine.sindy.selection.within_budget`).
    stability_steps : int
        With ``per_equation``: the combined model must also stay bounded over free-running
        rollouts of up to this many held-out samples, one from the start and 8 half as long
        spread over the held-out data (:func:`engine.sindy.holdout.stability_rollouts`; 0: only
        the short rollouts).
    augment : (x, u, x_dot), optional
        Extra training samples that are not a trajectory (states perturbed off it, with
        targets from the model itself, :func:`engine.sindy.targets.map_targets`): they enter
        the fit only, never the held-out scores.
    """
    import time

    import pandas as pd  # only the table needs it

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    model = Sindy() if model is None else model
    check_params(model)

    if cancel is None and reporter is not None:
        cancel = lambda: reporter.cancelled  # noqa: E731

    def _progress(done, total, msg):
        if reporter is not None:
            reporter.progress(done, total, msg)
        check_cancel(cancel, "threshold sweep")

    xs = as_list(x, "x")
    us = as_optional_list(u, "u", len(xs))
    xds = as_optional_list(x_dot, "x_dot", len(xs))
    ts: list[Times]
    if t is None and xds is not None:  # derivatives given, no clock: no rollouts possible
        ts, rollout_steps = [1.0] * len(xs), 0
    else:
        ts = as_times(t, xs)
    min_val = max(rollout_steps + 2, 5) if rollout_steps > 0 and n_rollouts > 0 else 5
    train, val, split_kind = split_holdout(xs, ts, us, xds, val_fraction, min_val)
    # a discrete-time model is rolled out the way it was fitted: exact forward steps
    rollout_method = "euler" if getattr(model, "discrete_time", False) else "rk4"
    _progress(0, 4, "library")
    xl, ul, yl, names, cnames = prepare(model, train[0], train[1], train[2], train[3], feature_names, control_names)
    n, m_ctrl = xl[0].shape[1], (0 if ul is None else ul[0].shape[1])
    if augment is not None:
        xa, ua, ya = augment
        xa, ya = np.asarray(xa, dtype=np.float64), np.asarray(ya, dtype=np.float64)
        ua = None if ua is None else np.asarray(ua, dtype=np.float64)
        if xa.shape != ya.shape or xa.shape[1] != n or (ua is None) != (ul is None):
            raise ValueError("augment must be (x (M, n), u (M, m) or None as the data's, x_dot (M, n))")
        xl, yl = [*xl, xa], [*yl, ya]
        ul = None if ul is None else [*ul, ua]
    if select not in ("rows", "per_equation"):
        raise ValueError("select must be 'rows' or 'per_equation'")
    n_thr = int(thresholds) if isinstance(thresholds, REAL_SCALARS) else len(thresholds)
    check_size(model, sum(len(xi) for xi in xs), n + m_ctrl, n, n_thr, max_degree, max_features)
    lib = make_library(model, n + m_ctrl)
    constants = constant_states(model.constant_tol, xl, names)
    allowed = allowed_terms(lib, names, constants)
    if not all(np.all(np.isfinite(d)) for d in yl):
        raise ValueError("x_dot contains NaN or inf")
    if device is None:  # [Θ y] in one buffer, as Sindy.fit: the same statistics, one syrk
        joint = library_matrix(lib, xl, ul, yl, cancel=cancel)
        theta, Y = joint[:, : lib.n_output_features_], joint[:, lib.n_output_features_ :]
    else:
        theta = library_matrix(lib, xl, ul, cancel=cancel)
        Y = np.concatenate(yl)
    timings["library"] = time.perf_counter() - t_start

    t0 = time.perf_counter()
    stats = GramStats.from_joint(joint, lib.n_output_features_, cancel=cancel) if device is None else None
    if isinstance(thresholds, REAL_SCALARS) and float(thresholds) == int(thresholds) and not isinstance(thresholds, float):
        if stats is None:
            stats = GramStats.from_data(theta, Y)
        thr = ridge_path_thresholds(stats, int(thresholds), model.alpha,
                                    normalize_columns=model.normalize_columns, allowed=allowed)
    else:
        thr = np.sort(np.atleast_1d(np.asarray(thresholds, dtype=np.float64)))
    if device is None:  # the Gram is already there: no second pass over the data
        assert stats is not None  # from_joint above
        coefs, info = stlsq_gram(stats, thr, model.alpha, model.max_iter, unbias=model.unbias, theta=theta, y=Y,
                                 exact=exact, return_info=True, warn=False, cancel=cancel,
                                 normalize_columns=model.normalize_columns, allowed=allowed)
    else:
        coefs, info = stlsq(theta, Y, thr, model.alpha, model.max_iter, unbias=model.unbias, device=device,
                            exact=exact, return_info=True, warn=False, normalize_columns=model.normalize_columns,
                            allowed=allowed)
    stats = info.gram
    timings["stlsq"] = time.perf_counter() - t0
    _progress(1, 4, "stlsq")
    P, K, F = coefs.shape
    n_terms = np.count_nonzero(coefs, axis=(1, 2))
    sse = stats.sse(coefs)  # (P, K)
    sst = stats.sst()
    train_err = np.mean(sse / np.where(sst > 0, sst, 1.0), axis=1)

    deriv_err = np.full(P, np.nan)
    rollout_err = np.full(P, np.nan)
    val_stats = rollouts = None
    bound = 1e3 * max(1.0, float(max(np.abs(xi).max() for xi in xl)))
    diverged_frac = np.full(P, np.nan)
    if val is not None:
        t0 = time.perf_counter()
        vxl, vul, vyl, _, _ = prepare(model, val[0], val[1], val[2], val[3], names, cnames)
        theta_v = library_matrix(lib, vxl, vul, cancel=cancel)
        Yv = np.concatenate(vyl)
        # kept for scoring hand edits later without the data (O(F²) per model); the held-out
        # errors of every model follow from it: Σ(y - Θc)² = yy - 2 c·b + cᵀGc
        val_stats = GramStats.from_data(theta_v, Yv, cancel=cancel)
        den = np.maximum(val_stats.sst(), 0.0)
        deriv_err = np.mean(val_stats.sse(coefs) / np.where(den > 0, den, 1.0), axis=1)
        timings["deriv_err"] = time.perf_counter() - t0
        _progress(2, 4, "derivative errors")

        if rollout_steps > 0 and n_rollouts > 0:
            t0 = time.perf_counter()
            rollouts = rollout_set(val[0], val[1], val[2], rollout_steps, n_rollouts)
            rollout_err, diverged_frac = rollout_errors(coefs, lib, rollouts, rollout_substeps, bound, device,
                                                        rollout_method)
            timings["rollout"] = time.perf_counter() - t0
    _progress(3, 4, "rollouts")
    rows = eq_err = selected = None
    if select == "per_equation" and rollouts is not None:
        t0 = time.perf_counter()
        eq_err, _ = equation_errors(coefs, lib, rollouts, method=rollout_method, bound=bound, cancel=cancel)
        rows = select_rows(coefs, eq_err)
        if max_terms is not None:
            rows = within_budget(coefs, eq_err, rows, int(max_terms))

        long_ros = stability_rollouts(val, stability_steps, rollout_steps) if stability_steps > 0 and val else []

        def combined(stack):  # free-running held-out rollouts of whole models
            err_s, div_s = rollout_errors(stack, lib, rollouts, rollout_substeps, bound, device, rollout_method)
            for ro in long_ros:
                _, div_l = rollout_errors(stack, lib, ro, rollout_substeps, bound, device, rollout_method)
                div_s = np.maximum(div_s, div_l)
            return err_s, div_s

        rows, moves = stabilise(coefs, rows, combined, cancel=cancel)
        timings["stabilise_moves"] = float(moves)
        selected = np.stack([coefs[r, k] if r >= 0 else np.zeros(coefs.shape[2]) for k, r in enumerate(rows)])
        timings["selection"] = time.perf_counter() - t0

    if np.isfinite(rollout_err).any():
        err_col, err = "rollout_err", rollout_err
    elif np.isfinite(deriv_err).any():
        err_col, err = "deriv_err", deriv_err
    else:
        err_col, err = "train_err", train_err
    on = pareto_front(n_terms, err)
    knee, score = knee_point(n_terms, err, on)
    table = pd.DataFrame(
        {
            "threshold": thr,
            "n_terms": n_terms,
            "train_err": train_err,
            "deriv_err": deriv_err,
            "rollout_err": rollout_err,
            "diverged_frac": diverged_frac,
            "n_iter": info.n_iter.max(axis=1),
            "converged": info.converged.all(axis=1),
            "on_front": on,
            "score": score,
            "is_knee": np.arange(P) == knee,
        }
    )
    timings["total"] = time.perf_counter() - t_start
    _progress(4, 4, "done")
    settings = dict(
        degree=model.degree, include_bias=model.include_bias, include_interaction=model.include_interaction,
        interaction_only=model.interaction_only, alpha=model.alpha, max_iter=model.max_iter,
        differentiation=model.differentiation, val_fraction=val_fraction, split=split_kind,
        rollout_steps=rollout_steps, n_rollouts=n_rollouts, exact=exact, rollout_substeps=rollout_substeps,
        bound=bound, rollout_method=rollout_method, discrete_time=rollout_method == "euler",
        x_scale=float(max(np.abs(xi).max() for xi in xl)), normalize_columns=bool(model.normalize_columns),
        constant_tol=model.constant_tol, select=select,
        dt=float(ts[0]) if rollout_method == "euler" and all(isinstance(ti, float) for ti in ts) and len(set(map(float, ts))) == 1 else None,
    )
    return SweepResult(
        table=table, coefs=coefs, thresholds=thr, feature_names=lib.get_feature_names(names + cnames),
        state_names=names, control_names=cnames, error_column=err_col, knee=knee, settings=settings,
        gram=stats, timings=timings, val_gram=val_stats, rollouts=rollouts,
        rows=rows, equation_err=eq_err, selected=selected, constants=constants,
    )
