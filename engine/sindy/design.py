"""From trajectories to the regression problem: targets, library, constants and the matrix.

The estimator's fit, the threshold sweep and the ensemble all prepare their data here, from the
settings of a :class:`~engine.sindy.model.Sindy` (any object with its attributes, see
:class:`FitSettings`), so the three build the very same problem.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from ._inputs import REAL_SCALARS, as_list, as_optional_list, as_times, check_u
from .budget import MAX_DEGREE, MAX_FEATURES, LibraryNeed, check_library
from .derivatives import differentiate
from .errors import check_cancel
from .library import PolynomialLibrary, default_names

__all__ = ["FitSettings", "check_params", "prepare", "check_size", "make_library", "constant_states",
           "allowed_terms", "library_matrix"]


class FitSettings(Protocol):
    """What preparing a fit reads of the estimator (its constructor arguments)."""

    degree: int
    threshold: float
    alpha: float
    max_iter: int
    include_bias: bool
    include_interaction: bool
    interaction_only: bool
    differentiation: str
    fd_order: int
    discrete_time: bool
    feature_names: Sequence[str] | None
    control_names: Sequence[str] | None
    constant_tol: float | None


def check_params(s: FitSettings) -> None:
    """``ValueError`` for an invalid setting (scikit-learn checks them at ``fit``)."""
    if not isinstance(s.degree, (int, np.integer)) or s.degree < 0:
        raise ValueError(f"degree must be a nonnegative integer, got {s.degree!r}")
    if not isinstance(s.threshold, REAL_SCALARS) or not np.isfinite(s.threshold) or s.threshold < 0:
        raise ValueError(f"threshold must be a nonnegative number, got {s.threshold!r}")
    if s.alpha < 0:
        raise ValueError("alpha cannot be negative")
    if s.max_iter <= 0:
        raise ValueError("max_iter must be positive")
    tol = s.constant_tol
    if tol is not None and (not isinstance(tol, REAL_SCALARS) or not np.isfinite(tol) or tol < 0):
        raise ValueError(f"constant_tol must be a nonnegative number or None, got {tol!r}")


def prepare(s: FitSettings, x, t, u=None, x_dot=None, feature_names=None, control_names=None):
    """Validated trajectories -> ``(xs for the library, us, x_dots, state names, control names)``."""
    xs = as_list(x, "x")
    if not xs:
        raise ValueError("x is empty")
    n = xs[0].shape[1]
    if any(xi.shape[1] != n for xi in xs):
        raise ValueError("all trajectories must have the same number of state variables")
    us = as_optional_list(u, "u", len(xs))
    if us is not None:
        check_u(us, xs)
    xds = as_optional_list(x_dot, "x_dot", len(xs))
    if xds is not None:
        for i, (xd, xi) in enumerate(zip(xds, xs)):
            if xd.shape != xi.shape:
                raise ValueError(f"x_dot[{i}] has shape {xd.shape} but x[{i}] has {xi.shape}")
        xl = xs
    elif s.discrete_time:  # the map's increment per step: x[k+1] - x[k], over dt
        ts = as_times(t, xs)
        xl, xds = [], []
        for xi, ti in zip(xs, ts):
            if len(xi) < 2:
                raise ValueError("a discrete-time fit needs trajectories of at least 2 samples")
            dt = ti if isinstance(ti, float) else np.diff(ti)[:, None]
            xl.append(xi[:-1])
            xds.append(np.diff(xi, axis=0) / dt)
        if us is not None:
            us = [ui[:-1] for ui in us]
    else:
        ts = as_times(t, xs)
        fd = ("finite_difference", "fd", "smoothed_finite_difference", "sfd", "smoothed")
        kw = {"order": s.fd_order} if s.differentiation in fd else {}
        xl, xds = differentiate(xs, ts, s.differentiation, **kw)
    m = 0 if us is None else us[0].shape[1]
    names = feature_names if feature_names is not None else s.feature_names
    cnames = control_names if control_names is not None else s.control_names
    defaults = default_names(n, m)
    names = list(names) if names is not None else defaults[:n]
    cnames = list(cnames) if cnames is not None else defaults[n:]
    if len(names) != n:
        raise ValueError(f"got {len(names)} feature names for {n} state variables")
    if len(cnames) != m:
        raise ValueError(f"got {len(cnames)} control names for {m} control inputs")
    return xl, us, xds, names, cnames


def check_size(s: FitSettings, n_samples: int, n_inputs: int, n_targets: int, n_thresholds: int,
               max_degree: int | None, max_features: int | None) -> LibraryNeed:
    """Refuse a library that will not fit before any of it is built (see :mod:`.budget`)."""
    return check_library(n_samples, n_inputs, n_targets, s.degree, include_bias=s.include_bias,
                         include_interaction=s.include_interaction, interaction_only=s.interaction_only,
                         n_thresholds=n_thresholds, max_degree=MAX_DEGREE if max_degree is None else max_degree,
                         max_features=MAX_FEATURES if max_features is None else max_features)


def make_library(s: FitSettings, n_inputs: int) -> PolynomialLibrary:
    return PolynomialLibrary(
        degree=s.degree,
        include_bias=s.include_bias,
        include_interaction=s.include_interaction,
        interaction_only=s.interaction_only,
    ).fit(n_inputs)


def constant_states(constant_tol: float | None, xl, names) -> dict[str, float]:
    """States whose std over ``xl`` is below ``constant_tol``, with their means."""
    if constant_tol is None:
        return {}
    xs = np.concatenate(xl)
    std, mean = xs.std(0), xs.mean(0)
    return {names[i]: float(mean[i]) for i in np.flatnonzero(std < constant_tol)}


def allowed_terms(lib: PolynomialLibrary, names: list[str], constants: dict[str, float]) -> np.ndarray | None:
    """Terms each equation may use: none for a constant state, and no term of a constant."""
    if not constants:
        return None
    idx = [names.index(c) for c in constants]
    n = len(names)
    uses_const = np.any(lib.powers_[:, idx], axis=1)  # (F,)
    allowed = np.repeat(~uses_const[None], n, axis=0)
    allowed[idx] = False
    return allowed


def library_matrix(lib: PolynomialLibrary, xs, us, ys=None, cancel=None) -> np.ndarray:
    """Stacked library matrix of all trajectories, ``(n_samples, F)`` (Fortran-ordered).

    With ``ys`` (the targets per trajectory, ``(T_i, K)``) they are stacked as K more
    columns, ``[Θ y]``: one ``syrk`` over it gives ``Θᵀ Θ``, ``Θᵀ y`` and ``yᵀ y`` at once
    (:meth:`GramStats.from_joint`) instead of a second pass over Θ for ``Θᵀ y``.
    """
    rows = sum(len(xi) for xi in xs)
    F = lib.n_output_features_
    thetaT = np.empty((F + (0 if ys is None else ys[0].shape[1]), rows))
    pos = 0
    for i, xi in enumerate(xs):
        check_cancel(cancel, "SINDy library build")  # many short trajectories: check between them
        z = xi if us is None else np.concatenate([xi, us[i]], axis=1)
        lib.transform_T(z, out=thetaT[:F, pos : pos + len(xi)], cancel=cancel)
        if ys is not None:
            thetaT[F:, pos : pos + len(xi)] = ys[i].T
        pos += len(xi)
    return thetaT.T
