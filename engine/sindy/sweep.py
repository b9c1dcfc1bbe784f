"""Threshold sweeps, the Pareto front of complexity against error, and bagged ensembles.

``threshold_sweep`` fits every threshold in one batched STLSQ (default 64 log-spaced
thresholds spanning the first ridge solution's coefficient sizes) and scores each model on
held-out data: the derivative error (``1 - R²`` of ``ẋ``) and a short-rollout error (batched RK4
from several held-out states, all models at once).  Held out are whole trajectories when there
are at least three, else the last ``val_fraction`` of each trajectory.  The result is a table
(pandas) with the Pareto front and a knee picked the way PySR picks its "best" equation: the
largest ``-Δlog(error)/Δcomplexity`` among front models within ``1.5×`` of the lowest error.

``ensemble`` bags STLSQ fits (pysindy's ensembling) and reports per-term inclusion
probabilities.  The default ``method="blocks"`` resamples contiguous blocks of samples: the
Gram of each block is computed once and each bag's Gram is a weighted sum of them, so 100 bags
cost about one fit; ``method="samples"`` is the plain bootstrap (a Gram per bag, run in parallel
through joblib).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .model import Sindy, _as_list, _as_times

__all__ = [
    "SweepResult",
    "StoredSweep",
    "load_sweep",
    "refit_support",
    "threshold_sweep",
    "pareto_front",
    "knee_point",
    "EnsembleResult",
    "ensemble",
]


# --------------------------------------------------------------------------------------------
# Pareto front and knee
# --------------------------------------------------------------------------------------------
def pareto_front(complexity, error) -> np.ndarray:
    """Boolean mask of the points not dominated in (complexity, error), both minimised.

    Ties (same complexity and error) are all kept; non-finite errors never make the front
    unless every error is non-finite.
    """
    c = np.asarray(complexity, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    finite = np.isfinite(e)
    if not finite.any():
        return np.zeros(len(c), dtype=bool)
    on = np.zeros(len(c), dtype=bool)
    best = np.inf
    for ci in np.unique(c[finite]):
        sel = finite & (c == ci)
        emin = e[sel].min()
        if emin < best:
            on |= sel & (e == emin)
            best = emin
    return on


def knee_point(complexity, error, on_front=None, loss_factor: float = 1.5) -> tuple[int, np.ndarray]:
    """PySR-style choice on the front: ``score = -Δlog(error)/Δcomplexity``.

    Returns ``(index of the chosen point, score per point)`` (score is NaN off the front).  The
    chosen point has the highest score among front points whose error is at most
    ``loss_factor`` times the lowest error.  ``-1`` if there is no front.
    """
    c = np.asarray(complexity, dtype=np.float64)
    e = np.asarray(error, dtype=np.float64)
    on = pareto_front(c, e) if on_front is None else np.asarray(on_front, dtype=bool)
    score = np.full(len(c), np.nan)
    idx = np.flatnonzero(on)
    if len(idx) == 0:
        return -1, score
    order = idx[np.lexsort((e[idx], c[idx]))]
    tiny = np.finfo(float).tiny
    cur_c, cur_score, prev_le = None, 0.0, 0.0
    for i in order:
        le = np.log(max(e[i], tiny))
        if cur_c is not None and c[i] == cur_c:  # duplicates of a front point
            score[i] = cur_score
            continue
        cur_score = 0.0 if cur_c is None else -(le - prev_le) / (c[i] - cur_c)
        score[i] = cur_score
        cur_c, prev_le = c[i], le
    emin = e[idx].min()
    ok = idx[e[idx] <= loss_factor * emin] if np.isfinite(emin) else idx
    best = ok[np.argmax(score[ok])]
    # among ties, the simplest
    ties = ok[score[ok] == score[best]]
    best = ties[np.argmin(c[ties])]
    return int(best), score


# --------------------------------------------------------------------------------------------
# data handling
# --------------------------------------------------------------------------------------------
def _split(xs, ts, us, xds, val_fraction: float, min_val: int):
    """Hold out whole trajectories (>= 3 of them) or the last block of each."""
    n = len(xs)
    if val_fraction <= 0:
        return (xs, ts, us, xds), None, "none"
    if n >= 3:
        n_val = max(1, int(round(val_fraction * n)))
        n_val = min(n_val, n - 1)
        tr = slice(0, n - n_val)
        va = slice(n - n_val, n)
        pick = lambda a, s: None if a is None else a[s]  # noqa: E731
        return (xs[tr], ts[tr], pick(us, tr), pick(xds, tr)), (xs[va], ts[va], pick(us, va), pick(xds, va)), "trajectories"
    train, val = ([], [], [] if us is not None else None, [] if xds is not None else None), ([], [], [] if us is not None else None, [] if xds is not None else None)
    for i, xi in enumerate(xs):
        T = len(xi)
        cut = int(round((1 - val_fraction) * T))
        if T - cut < min_val or cut < 5:
            raise ValueError(
                f"trajectory {i} has {T} samples: too short to hold out {val_fraction:.0%} for validation "
                f"(need {min_val} held-out samples); pass more data or val_fraction=0"
            )
        ti = ts[i]
        parts = [(slice(0, cut), train), (slice(cut, T), val)]
        for s, dst in parts:
            dst[0].append(xi[s])
            dst[1].append(ti if np.isscalar(ti) else ti[s])
            if us is not None:
                dst[2].append(us[i][s])
            if xds is not None:
                dst[3].append(xds[i][s])
    return train, val, "time_block"


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
    gram: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    val_gram: Any = None  # GramStats of the held-out data (scores hand edits, see StoredSweep)
    rollouts: dict | None = None  # the held-out rollout starts (see _rollout_set)
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
                out.update(_gram_arrays(prefix, g))
        if self.rollouts is not None:
            out.update({f"ro_{k}": v for k, v in self.rollouts.items() if v is not None})
            out["ro_settings"] = np.array([self.settings.get("rollout_substeps", 1), self.settings.get("bound", np.inf)])
            out["ro_method"] = np.array(self.settings.get("rollout_method", "rk4"))
        return out

    def model(self, i: int | None = None) -> Sindy:
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

    def equations(self, i: int | None = None, precision: int = 3) -> list[str]:
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
        With ``per_equation``: the combined model must also stay bounded over one free-running
        rollout of this many held-out samples (0: only the short rollouts).
    augment : (x, u, x_dot), optional
        Extra training samples that are not a trajectory (states perturbed off it, with
        targets from the model itself, :func:`engine.sindy.targets.map_targets`): they enter
        the fit only, never the held-out scores.
    """
    import time

    import pandas as pd

    from .simulate import simulate
    from .stlsq import GramStats, ridge_path_thresholds, stlsq, stlsq_gram

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    model = Sindy() if model is None else model
    model._check_params()

    if cancel is None and reporter is not None:
        cancel = lambda: reporter.cancelled  # noqa: E731

    def _progress(done, total, msg):
        if reporter is not None:
            reporter.progress(done, total, msg)
        if cancel is not None and cancel():
            from ..reporting import Cancelled

            raise Cancelled("threshold sweep cancelled")

    xs = _as_list(x, "x")
    us = _as_list(u, "u", len(xs))
    xds = _as_list(x_dot, "x_dot", len(xs))
    if t is None and xds is not None:  # derivatives given, no clock: no rollouts possible
        ts, rollout_steps = [1.0] * len(xs), 0
    else:
        ts = _as_times(t, xs)
    min_val = max(rollout_steps + 2, 5) if rollout_steps > 0 and n_rollouts > 0 else 5
    train, val, split_kind = _split(xs, ts, us, xds, val_fraction, min_val)
    # a discrete-time model is rolled out the way it was fitted: exact forward steps
    rollout_method = "euler" if getattr(model, "discrete_time", False) else "rk4"
    _progress(0, 4, "library")
    xl, ul, yl, names, cnames = model._prepare(train[0], train[1], train[2], train[3], feature_names, control_names)
    n, m_ctrl = xl[0].shape[1], (0 if ul is None else ul[0].shape[1])
    if augment is not None:
        xa, ua, ya = (None if a is None else np.asarray(a, dtype=np.float64) for a in augment)
        if xa.shape != ya.shape or xa.shape[1] != n or (ua is None) != (ul is None):
            raise ValueError("augment must be (x (M, n), u (M, m) or None as the data's, x_dot (M, n))")
        xl, yl = [*xl, xa], [*yl, ya]
        ul = None if ul is None else [*ul, ua]
    if select not in ("rows", "per_equation"):
        raise ValueError("select must be 'rows' or 'per_equation'")
    n_thr = int(thresholds) if np.isscalar(thresholds) else len(thresholds)
    model._check_size(sum(len(xi) for xi in xs), n + m_ctrl, n, n_thr, max_degree, max_features)
    lib = model._make_library(n + m_ctrl)
    constants = model._constants(xl, names)
    allowed = model._allowed(lib, names, constants)
    if not all(np.all(np.isfinite(d)) for d in yl):
        raise ValueError("x_dot contains NaN or inf")
    if device is None:  # [Θ y] in one buffer, as Sindy.fit: the same statistics, one syrk
        joint = model._theta(lib, xl, ul, yl, cancel=cancel)
        theta, Y = joint[:, : lib.n_output_features_], joint[:, lib.n_output_features_ :]
    else:
        theta = model._theta(lib, xl, ul, cancel=cancel)
        Y = np.concatenate(yl)
    timings["library"] = time.perf_counter() - t_start

    t0 = time.perf_counter()
    stats = GramStats.from_joint(joint, lib.n_output_features_, cancel=cancel) if device is None else None
    if np.isscalar(thresholds) and float(thresholds) == int(thresholds) and not isinstance(thresholds, float):
        if stats is None:
            stats = GramStats.from_data(theta, Y)
        thr = ridge_path_thresholds(stats, int(thresholds), model.alpha,
                                    normalize_columns=model.normalize_columns, allowed=allowed)
    else:
        thr = np.sort(np.atleast_1d(np.asarray(thresholds, dtype=np.float64)))
    if device is None:  # the Gram is already there: no second pass over the data
        coefs, info = stlsq_gram(stats, thr, model.alpha, model.max_iter, unbias=model.unbias, theta=theta, y=Y,
                                 exact=exact, return_info=True, warn=False, cancel=cancel,
                                 normalize_columns=model.normalize_columns, allowed=allowed)
    else:
        coefs, info = stlsq(theta, Y, thr, model.alpha, model.max_iter, unbias=model.unbias, device=device,
                            exact=exact, return_info=True, warn=False, normalize_columns=model.normalize_columns,
                            allowed=allowed)
    stats = info.extra["gram"]
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
        vxl, vul, vyl, _, _ = model._prepare(val[0], val[1], val[2], val[3], names, cnames)
        theta_v = model._theta(lib, vxl, vul, cancel=cancel)
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
            rollouts = _rollout_set(val[0], val[1], val[2], rollout_steps, n_rollouts)
            rollout_err, diverged_frac = _rollout_errors(coefs, lib, rollouts, rollout_substeps, bound, device, simulate,
                                                         rollout_method)
            timings["rollout"] = time.perf_counter() - t0
    _progress(3, 4, "rollouts")
    rows = eq_err = selected = None
    if select == "per_equation" and rollouts is not None:
        from .selection import equation_errors, select_rows, stabilise, within_budget

        t0 = time.perf_counter()
        eq_err, _ = equation_errors(coefs, lib, rollouts, method=rollout_method, bound=bound, cancel=cancel)
        rows = select_rows(coefs, eq_err)
        if max_terms is not None:
            rows = within_budget(coefs, eq_err, rows, int(max_terms))

        long_ro = None
        if stability_steps > 0:  # one long free run from the start of the held-out data
            n_long = min(int(stability_steps), max(len(v) for v in val[0]) - 1)
            long_ro = _rollout_set(val[0], val[1], val[2], n_long, 1) if n_long > rollout_steps else None

        def combined(stack):  # free-running held-out rollouts of whole models
            err_s, div_s = _rollout_errors(stack, lib, rollouts, rollout_substeps, bound, device, simulate, rollout_method)
            if long_ro is not None:
                _, div_l = _rollout_errors(stack, lib, long_ro, rollout_substeps, bound, device, simulate, rollout_method)
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
        dt=float(ts[0]) if rollout_method == "euler" and all(np.isscalar(ti) for ti in ts) and len(set(map(float, ts))) == 1 else None,
    )
    return SweepResult(
        table=table, coefs=coefs, thresholds=thr, feature_names=lib.get_feature_names(names + cnames),
        state_names=names, control_names=cnames, error_column=err_col, knee=knee, settings=settings,
        gram=stats, timings=timings, val_gram=val_stats, rollouts=rollouts,
        rows=rows, equation_err=eq_err, selected=selected, constants=constants,
    )


def _rollout_set(vxs, vts, vus, steps, n_rollouts) -> dict | None:
    """The held-out rollout starts: ``x0 (S, n)``, ``truth (S, steps+1, n)``, ``grid (S, steps+1)``
    (times from each start), ``u (S, steps+1, m)`` or None, and the per-state ``scale (n,)``.

    Kept with the sweep so that a hand-edited model is scored exactly like the swept ones.
    """
    cands = [(j, i) for j, xj in enumerate(vxs) for i in range(0, len(xj) - steps)]
    if not cands:
        return None
    pick = np.unique(np.linspace(0, len(cands) - 1, min(n_rollouts, len(cands))).round().astype(int))
    starts = [cands[k] for k in pick]
    scale = np.concatenate(vxs).std(0)
    scale = np.where(scale > 0, scale, 1.0)
    grids = []
    for j, i in starts:
        tj = vts[j]
        grids.append(np.arange(steps + 1) * tj if np.isscalar(tj) else tj[i : i + steps + 1] - tj[i])
    return {
        "x0": np.stack([vxs[j][i] for j, i in starts]),
        "truth": np.stack([vxs[j][i : i + steps + 1] for j, i in starts]),
        "grid": np.stack(grids).astype(np.float64),
        "u": None if vus is None else np.stack([vus[j][i : i + steps + 1] for j, i in starts]),
        "scale": scale,
    }


def _rollout_errors(coefs, lib, ro, substeps, bound, device, simulate, method: str = "rk4"):
    """RMS error (absolute, in the states' units) of the rollouts ``ro`` (:func:`_rollout_set`), all models at once.

    Returns ``(error, diverged fraction)`` per model; a diverged rollout counts as ``inf``.
    """
    P, K, F = coefs.shape
    if ro is None:
        return np.full(P, np.nan), np.full(P, np.nan)
    n_starts = len(ro["x0"])
    # group starts by their relative time grid (identical for uniform steps)
    groups: dict[bytes, list[int]] = {}
    for s, g in enumerate(ro["grid"]):
        groups.setdefault(np.round(g, 12).tobytes(), []).append(s)
    # unique models (neighbouring thresholds often give the same coefficients)
    flat = coefs.reshape(P, -1)
    _, first, inv = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    inv = inv.ravel()
    U = len(first)
    err_u = np.zeros((U, n_starts))
    div_u = np.zeros((U, n_starts), dtype=bool)
    for members in groups.values():
        S = len(members)
        g = ro["grid"][members[0]]
        x0 = ro["x0"][members]  # (S, n)
        truth = ro["truth"][members]
        u_b = None if ro.get("u") is None else np.tile(ro["u"][members], (U, 1, 1))
        X0 = np.tile(x0, (U, 1))  # model u drives rows u*S .. u*S+S-1
        res = simulate(coefs[first], lib, X0, g, u_b, bound=bound, device=device, substeps=substeps, method=method)
        xs_sim = res.x.reshape(U, S, len(g), -1)
        d = xs_sim - truth[None]  # absolute: a state that barely moves cannot dominate
        e = np.sqrt(np.mean(d**2, axis=(2, 3)))
        dv = res.diverged.reshape(U, S)
        e[dv] = np.inf
        for col, s in enumerate(members):
            err_u[:, s] = e[:, col]
            div_u[:, s] = dv[:, col]
    with np.errstate(invalid="ignore"):
        err = err_u.mean(axis=1)
    return err[inv], div_u.mean(axis=1)[inv]


# --------------------------------------------------------------------------------------------
# stored sweeps and hand edits
# --------------------------------------------------------------------------------------------
def _gram_arrays(prefix: str, g) -> dict[str, np.ndarray]:
    out = {f"{prefix}_G": g.G, f"{prefix}_b": g.b, f"{prefix}_yy": g.yy, f"{prefix}_n": np.array(g.n_samples)}
    if g.y_sum is not None:
        out[f"{prefix}_ysum"] = g.y_sum
    return out


def _gram_from(z, prefix: str):
    from .stlsq import GramStats

    if f"{prefix}_G" not in z:
        return None
    ys = z[f"{prefix}_ysum"] if f"{prefix}_ysum" in z else None
    return GramStats(z[f"{prefix}_G"], z[f"{prefix}_b"], z[f"{prefix}_yy"], int(z[f"{prefix}_n"]), ys)


@dataclass
class StoredSweep:
    """A sweep as saved by :meth:`SweepResult.arrays`: enough to refit and score hand edits.

    ``gram`` (training) refits a support by least squares without the data; ``val_gram`` and
    ``rollouts`` score any coefficient matrix the way the sweep scored its rows (held-out
    derivative error ``1 - R²`` averaged over states, from the Gram; RMS error (absolute) of the
    same short rollouts).  Older files hold only ``thresholds`` and ``coefs``: then terms can
    only be zeroed, not refitted or added, and edits are not scored.
    """

    thresholds: np.ndarray
    coefs: np.ndarray
    gram: Any = None
    val_gram: Any = None
    rollouts: dict | None = None
    rollout_substeps: int = 1
    bound: float = np.inf
    rollout_method: str = "rk4"

    def __len__(self) -> int:
        return len(self.thresholds)

    def edited(self, row: int, flips, refit: bool = True) -> np.ndarray:
        """Coefficients of sweep row ``row`` with the terms ``flips`` [(state, term), ...] switched.

        ``refit``: least squares on the kept support (from the training Gram, the sweep's own
        unbias step); otherwise the removed terms are just zeroed (and none can be added).
        """
        coef = np.asarray(self.coefs[row], dtype=np.float64)
        mask = coef != 0
        for i, j in flips:
            mask[int(i), int(j)] = not mask[int(i), int(j)]
        if not refit or self.gram is None:
            if (mask & (coef == 0)).any():
                raise ValueError("adding a term needs a refit, and this sweep has no training statistics (re-run its sindy step)")
            return np.where(mask, coef, 0.0)
        return refit_support(self.gram, mask)

    def errors(self, coef, library=None) -> dict[str, float | None]:
        """``deriv_err`` (held out, from the Gram) and ``rollout_err`` of ``coef`` (None if unknown)."""
        coef = np.asarray(coef, dtype=np.float64)
        out: dict[str, float | None] = {"deriv_err": None, "rollout_err": None}
        if self.val_gram is not None:
            sse, sst = self.val_gram.sse(coef), self.val_gram.sst()
            out["deriv_err"] = float(np.mean(sse / np.where(sst > 0, sst, 1.0)))
        if self.rollouts is not None and library is not None:
            from .simulate import simulate

            err, _ = _rollout_errors(coef[None], library, self.rollouts, self.rollout_substeps, self.bound, None, simulate,
                                     self.rollout_method)
            out["rollout_err"] = float(err[0])
        return out


def refit_support(gram, mask) -> np.ndarray:
    """Least-squares coefficients ``(K, F)`` on the support ``mask`` from Gram statistics alone
    (the unbias step of STLSQ, damped at its cut on ill-conditioned supports)."""
    from .stlsq import _NumpySolver, single_threaded_blas

    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (gram.n_targets, gram.n_features):
        raise ValueError(f"mask must have shape {(gram.n_targets, gram.n_features)}, got {mask.shape}")
    with single_threaded_blas():
        return _NumpySolver(gram, exact=False).lstsq(mask, np.arange(mask.shape[0]))


def load_sweep(path) -> StoredSweep:
    """Read a sweep saved from :meth:`SweepResult.arrays` (``OSError``/``KeyError``/``ValueError``
    if the file is missing or not a sweep)."""
    with np.load(path) as z:
        ro = None
        if "ro_x0" in z:
            ro = {k: z[f"ro_{k}"] for k in ("x0", "truth", "grid", "scale")}
            ro["u"] = z["ro_u"] if "ro_u" in z else None
        sub, bound = (z["ro_settings"].tolist() if "ro_settings" in z else (1, np.inf))
        return StoredSweep(
            thresholds=z["thresholds"], coefs=z["coefs"], gram=_gram_from(z, "gram"),
            val_gram=_gram_from(z, "val_gram"), rollouts=ro, rollout_substeps=int(sub), bound=float(bound),
            rollout_method=str(z["ro_method"]) if "ro_method" in z else "rk4",
        )


# --------------------------------------------------------------------------------------------
# ensembles
# --------------------------------------------------------------------------------------------
@dataclass
class EnsembleResult:
    """Bagged STLSQ models.

    Attributes
    ----------
    coefs : ndarray (n_models, n_states, n_features)
    inclusion : ndarray (n_states, n_features)
        Fraction of models in which each term is nonzero.
    coef_median, coef_mean, coef_std : ndarray (n_states, n_features)
    """

    coefs: np.ndarray
    inclusion: np.ndarray
    coef_median: np.ndarray
    coef_mean: np.ndarray
    coef_std: np.ndarray
    feature_names: list[str]
    state_names: list[str]
    threshold: float
    method: str

    def table(self, min_inclusion: float = 0.0):
        """Long table: state, term, inclusion, median, mean, std (sorted by inclusion)."""
        import pandas as pd

        K, F = self.inclusion.shape
        df = pd.DataFrame(
            {
                "state": np.repeat(self.state_names, F),
                "term": np.tile(self.feature_names, K),
                "inclusion": self.inclusion.ravel(),
                "median": self.coef_median.ravel(),
                "mean": self.coef_mean.ravel(),
                "std": self.coef_std.ravel(),
            }
        )
        df = df[df["inclusion"] > min_inclusion] if min_inclusion > 0 else df[df["inclusion"] > 0]
        return df.sort_values(["state", "inclusion"], ascending=[True, False], kind="stable").reset_index(drop=True)

    def consensus(self, min_inclusion: float = 0.5) -> np.ndarray:
        """Median coefficients of the terms kept in at least ``min_inclusion`` of the models."""
        return np.where(self.inclusion >= min_inclusion, self.coef_median, 0.0)


def ensemble(
    x,
    t=None,
    u=None,
    *,
    model: Sindy | None = None,
    n_models: int = 50,
    method: str = "blocks",
    n_blocks: int = 40,
    replace: bool = True,
    subset_fraction: float | None = None,
    threshold: float | None = None,
    x_dot=None,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    backend: str | None = None,
    feature_names=None,
    control_names=None,
) -> EnsembleResult:
    """Bagging over samples with per-term inclusion probabilities.

    ``method="blocks"``: contiguous blocks of samples resampled (``replace=True``: bootstrap of
    ``n_blocks`` blocks; else a ``subset_fraction`` (default 0.6) of them without replacement);
    each bag's Gram is the weighted sum of block Grams.  ``method="samples"``: bootstrap (or
    subset) of individual samples, one Gram per bag.  The per-bag STLSQ solves run through
    :func:`engine.parallel.pmap` on the session's backend (threads on this machine by default:
    numpy releases the GIL); ``n_jobs``/``backend`` override it for this call.
    """
    from engine.parallel import pmap

    from .stlsq import GramStats, stlsq_gram

    model = Sindy() if model is None else model
    model._check_params()
    if n_models < 1:
        raise ValueError("n_models must be >= 1")
    if method not in ("blocks", "samples"):
        raise ValueError("method must be 'blocks' or 'samples'")
    thr = float(model.threshold if threshold is None else threshold)
    xl, ul, yl, names, cnames = model._prepare(x, t, u, x_dot, feature_names, control_names)
    n, m_ctrl = xl[0].shape[1], (0 if ul is None else ul[0].shape[1])
    lib = model._make_library(n + m_ctrl)
    theta = model._theta(lib, xl, ul)
    Y = np.concatenate(yl)
    N = theta.shape[0]
    rng = np.random.default_rng(random_state)
    frac = 0.6 if subset_fraction is None else float(subset_fraction)

    def solve(stats):
        return stlsq_gram(stats, thr, model.alpha, model.max_iter, unbias=model.unbias, warn=False)[0]

    if method == "blocks":
        nb = int(min(max(n_blocks, 2), N))
        edges = np.linspace(0, N, nb + 1).round().astype(int)
        blocks = [GramStats.from_data(theta[a:b], Y[a:b]) for a, b in zip(edges[:-1], edges[1:])]
        Gs = np.stack([bk.G for bk in blocks])
        bs = np.stack([bk.b for bk in blocks])
        yys = np.stack([bk.yy for bk in blocks])
        ysum = np.stack([bk.y_sum for bk in blocks])
        ns = np.array([bk.n_samples for bk in blocks])
        if replace:
            W = rng.multinomial(nb, np.full(nb, 1.0 / nb), size=n_models).astype(np.float64)
        else:
            k = max(1, int(round(frac * nb)))
            W = np.zeros((n_models, nb))
            for i in range(n_models):
                W[i, rng.choice(nb, size=k, replace=False)] = 1.0
        bags = [
            GramStats(np.tensordot(w, Gs, 1), np.tensordot(w, bs, 1), w @ yys, int(w @ ns), w @ ysum)
            for w in W
        ]
        coefs = pmap(solve, bags, n_jobs=n_jobs, backend=backend, prefer="threads", message="ensemble")
    else:
        def bag(seed):
            r = np.random.default_rng(seed)
            if replace:
                w = np.bincount(r.integers(0, N, N), minlength=N).astype(np.float64)
            else:
                w = np.zeros(N)
                w[r.choice(N, size=max(1, int(round(frac * N))), replace=False)] = 1.0
            return solve(GramStats.from_data(theta, Y, weights=w))

        seeds = rng.integers(0, 2**63 - 1, size=n_models)
        coefs = pmap(bag, [int(s) for s in seeds], n_jobs=n_jobs, backend=backend, prefer="threads",
                     message="ensemble")
    C = np.stack(coefs)  # (M, K, F)
    return EnsembleResult(
        coefs=C,
        inclusion=(C != 0).mean(0),
        coef_median=np.median(C, axis=0),
        coef_mean=C.mean(0),
        coef_std=C.std(0),
        feature_names=lib.get_feature_names(names + cnames),
        state_names=names,
        threshold=thr,
        method=method,
    )
