"""``Sindy``: a scikit-learn-style SINDy estimator on the fast batched STLSQ.

>>> model = Sindy(degree=3, threshold=0.1).fit(x, t=0.01, feature_names=[f"h{i}" for i in range(9)])
>>> model.equations()[0]
"(h0)' = 0.534 + 10.4 h0 - 2.1 h0 h1"

Defaults follow pysindy (``SINDy(optimizer=STLSQ(threshold, alpha, max_iter),
feature_library=PolynomialLibrary(degree, include_bias))`` with its centred finite differences),
and on the same data the coefficients agree with pysindy's to ~1e-6 relative (same support).
Control inputs (SINDYc) go in as ``u``: the library is built over ``[x, u]``.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from .derivatives import differentiate
from .library import PolynomialLibrary, default_names

__all__ = ["Sindy", "NotFittedError"]


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (same bases as scikit-learn's ``NotFittedError``)."""


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------
def _is_seq(x) -> bool:
    return isinstance(x, (list, tuple))


def _as_list(a, name: str, n_traj: int | None = None, ndim_single: int = 2) -> list[np.ndarray] | None:
    """One trajectory ``(T, n)``, a list of them, or a stacked ``(n_traj, T, n)`` array."""
    if a is None:
        return None
    if _is_seq(a):
        out = [np.asarray(ai, dtype=np.float64) for ai in a]
    else:
        arr = np.asarray(a, dtype=np.float64)
        if arr.ndim == 3:
            out = list(arr)
        else:
            out = [arr]
    out = [ai[:, None] if ai.ndim == 1 else ai for ai in out]
    for i, ai in enumerate(out):
        if ai.ndim != 2:
            raise ValueError(f"{name}[{i}] must be 2-D (n_samples, n_variables); got shape {ai.shape}")
        bad = ~np.isfinite(ai)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ValueError(
                f"{name} contains NaN or inf (trajectory {i}, sample {r}, variable {c}); "
                "SINDy cannot fit non-finite data - drop or interpolate those samples first"
            )
    if n_traj is not None and len(out) != n_traj:
        raise ValueError(f"{name} has {len(out)} trajectories but x has {n_traj}")
    return out


def _as_times(t, xs: list[np.ndarray]) -> list:
    if t is None:
        raise ValueError("t (a time step or the sample times) is required")
    per_traj = (
        _is_seq(t)
        and len(t) == len(xs)
        and all(np.ndim(ti) == 0 or (np.ndim(ti) == 1 and len(ti) == len(xi)) for ti, xi in zip(t, xs))
    )
    if per_traj:
        ts = [float(ti) if np.ndim(ti) == 0 else np.asarray(ti, dtype=np.float64) for ti in t]
    elif np.isscalar(t):
        ts = [float(t)] * len(xs)
    else:
        ta = np.asarray(t, dtype=np.float64)
        if ta.ndim == 0:
            ts = [float(ta)] * len(xs)
        else:
            ts = [ta] * len(xs)
    for ti, xi in zip(ts, xs):
        if np.isscalar(ti):
            if not np.isfinite(ti) or ti <= 0:
                raise ValueError(f"the time step must be positive and finite, got {ti}")
        else:
            if ti.ndim != 1 or len(ti) != len(xi):
                raise ValueError(f"t has {ti.shape} entries for a trajectory of {len(xi)} samples")
            if not np.all(np.isfinite(ti)):
                raise ValueError("t contains NaN or inf")
            if np.any(np.diff(ti) <= 0):
                raise ValueError("t must be strictly increasing")
    return ts


def _check_u(us, xs) -> None:
    for i, (ui, xi) in enumerate(zip(us, xs)):
        if len(ui) != len(xi):
            raise ValueError(f"u[{i}] has {len(ui)} samples but x[{i}] has {len(xi)}")
    if len({ui.shape[1] for ui in us}) != 1:
        raise ValueError("all control trajectories must have the same number of inputs")


def _fmt_coef(c: float, precision: int) -> str:
    """``precision`` significant digits, plain notation for moderate magnitudes, no trailing zeros."""
    a = abs(float(c))
    if a == 0:
        return "0"
    if a < 1e-4 or a >= 1e7:
        return f"{a:.{precision}g}"
    digits = max(precision - 1 - int(np.floor(np.log10(a))), 0)
    s = f"{a:.{digits}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def format_equation(coef_row, feature_names: Sequence[str], precision: int = 3) -> str:
    """Right-hand side like ``0.534 + 10.4 h0 - 2.1 h0 h1`` (bias printed bare, signs merged)."""
    parts: list[str] = []
    for c, name in zip(coef_row, feature_names):
        if c == 0:
            continue
        mag = _fmt_coef(c, precision) if np.isfinite(c) else ("nan" if np.isnan(c) else "inf")
        term = mag if name == "1" else f"{mag} {name}"
        neg = bool(c < 0)
        if not parts:
            parts.append(("-" if neg else "") + term)
        else:
            parts.append((" - " if neg else " + ") + term)
    return "".join(parts) if parts else "0"


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------
class Sindy:
    """Sparse identification of nonlinear dynamics with a polynomial library and STLSQ.

    Parameters
    ----------
    degree : int, default 3
        Polynomial degree of the library.
    threshold : float, default 0.1
        STLSQ threshold (coefficients below it are removed, iteratively).
    alpha : float, default 0.05
        Ridge penalty of the STLSQ iterations.
    max_iter : int, default 20
        Maximum STLSQ iterations.
    include_bias : bool, default True
        Constant term in the library.
    include_interaction, interaction_only : bool
        As pysindy's ``PolynomialLibrary``.
    differentiation : {"finite_difference", "smoothed_finite_difference", "savgol"}
        How ``x_dot`` is estimated when not given (pysindy's default is the first).
    fd_order : int, default 2
        Accuracy order of the finite differences.
    discrete_time : bool, default False
        Fit a map instead of a flow: ``x[k+1] = x[k] + dt * f(x[k], u[k])`` with the target
        ``(x[k+1] - x[k]) / dt`` (no smoothing), simulated by exact forward steps.  For
        systems that are discrete by nature, such as an RNN's hidden state stepped once per
        frame, whose jumps a smooth ODE cannot follow (RK4 rollouts of such fits blow up).
    unbias : bool, default True
        Least-squares refit on the selected terms (pysindy's default).
    feature_names, control_names : list of str, optional
        Names of the states (``x0..`` by default) and of the control inputs (``u0..``).
    device : str, optional
        Torch device for the STLSQ solves (None: numpy/LAPACK).
    exact : bool, default True
        Repeat pysindy's exact least squares on ill-conditioned supports (see ``stlsq``).
    normalize_columns : bool, default False
        pysindy's ``normalize_columns``: the threshold acts on the coefficients of the
        library columns scaled to unit 2-norm; ``coef_`` is in the original units.
    constant_tol : float, optional
        States whose standard deviation over the training data is below this are constants:
        not fitted (their equation is ``x = value``, their derivative or increment zero) and
        left out of the other equations' terms (a state that does not move is collinear with
        the bias and gives cancelling pairs such as ``6625 + ... - 7182 h6``).

    Attributes
    ----------
    coef_ : ndarray (n_states, n_output_features_)
        Coefficients; row i is the equation of state i.
    feature_names_ : list of str, length n_output_features_
        Library term names (pysindy's ``get_feature_names()``), e.g. ``h0 h1``.
    state_names_ : list of str, length n_features_in_
    control_names_ : list of str, length n_control_features_
    n_features_in_ : int
        Number of state variables (columns of ``x``).
    n_control_features_ : int
        Number of control inputs (columns of ``u``).
    n_output_features_ : int
        Number of library terms.
    library_ : PolynomialLibrary
        Fitted over ``n_features_in_ + n_control_features_`` inputs.
    support_ : ndarray of bool, like ``coef_``
        Active terms.
    gram_ : GramStats
        ``Θᵀ Θ``, ``Θᵀ ẋ`` and ``Σ ẋ²`` of the training data: refits on a hand-edited support and
        training errors without touching the data again.
    stlsq_info_ : STLSQInfo
        Iterations and convergence of the fit.
    x_scale_ : float
        Largest ``|x|`` seen in training (sets the default divergence bound).
    constants_ : dict of str to float
        The constant states (``constant_tol``) and their mean values.
    dt_ : float or None
        The sample interval of a discrete-time fit (the map is ``x[k+1] = x[k] + dt_ f``).
    """

    def __init__(
        self,
        degree: int = 3,
        threshold: float = 0.1,
        alpha: float = 0.05,
        max_iter: int = 20,
        include_bias: bool = True,
        *,
        include_interaction: bool = True,
        interaction_only: bool = False,
        differentiation: str = "finite_difference",
        fd_order: int = 2,
        unbias: bool = True,
        feature_names: Sequence[str] | None = None,
        control_names: Sequence[str] | None = None,
        device: str | None = None,
        exact: bool = True,
        discrete_time: bool = False,
        normalize_columns: bool = False,
        constant_tol: float | None = None,
    ):
        self.degree = degree
        self.threshold = threshold
        self.alpha = alpha
        self.max_iter = max_iter
        self.include_bias = include_bias
        self.include_interaction = include_interaction
        self.interaction_only = interaction_only
        self.differentiation = differentiation
        self.fd_order = fd_order
        self.unbias = unbias
        self.feature_names = feature_names
        self.control_names = control_names
        self.device = device
        self.exact = exact
        self.discrete_time = discrete_time
        self.normalize_columns = normalize_columns
        self.constant_tol = constant_tol

    # -- sklearn-style parameter access ----------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params) -> "Sindy":
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"invalid parameter {k!r} for Sindy; valid: {sorted(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        defaults = {k: p.default for k, p in inspect.signature(type(self).__init__).parameters.items() if k != "self"}
        changed = [f"{k}={getattr(self, k)!r}" for k in self._param_names() if getattr(self, k) != defaults[k]]
        return f"Sindy({', '.join(changed)})"

    def _check_params(self) -> None:
        if not isinstance(self.degree, (int, np.integer)) or self.degree < 0:
            raise ValueError(f"degree must be a nonnegative integer, got {self.degree!r}")
        if not np.isscalar(self.threshold) or not np.isfinite(self.threshold) or self.threshold < 0:
            raise ValueError(f"threshold must be a nonnegative number, got {self.threshold!r}")
        if self.alpha < 0:
            raise ValueError("alpha cannot be negative")
        if self.max_iter <= 0:
            raise ValueError("max_iter must be positive")
        tol = self.constant_tol
        if tol is not None and (not np.isscalar(tol) or not np.isfinite(tol) or tol < 0):
            raise ValueError(f"constant_tol must be a nonnegative number or None, got {tol!r}")

    def _constants(self, xl, names) -> dict[str, float]:
        """States whose std over ``xl`` is below ``constant_tol``, with their means."""
        if self.constant_tol is None:
            return {}
        xs = np.concatenate(xl)
        std, mean = xs.std(0), xs.mean(0)
        return {names[i]: float(mean[i]) for i in np.flatnonzero(std < self.constant_tol)}

    @staticmethod
    def _allowed(lib: PolynomialLibrary, names: list[str], constants: dict[str, float]) -> np.ndarray | None:
        """Terms each equation may use: none for a constant state, and no term of a constant."""
        if not constants:
            return None
        idx = [names.index(c) for c in constants]
        n = len(names)
        uses_const = lib.powers_[:, idx].any(1)  # (F,)
        allowed = np.repeat(~uses_const[None], n, axis=0)
        allowed[idx] = False
        return allowed

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                "This Sindy instance is not fitted yet. Call 'fit' with appropriate arguments before using this method."
            )

    # -- data preparation (shared with the sweep and the ensemble) ------------------------
    def _prepare(self, x, t, u=None, x_dot=None, feature_names=None, control_names=None):
        """Validated trajectories -> (xs_for_library, us, x_dots, names)."""
        xs = _as_list(x, "x")
        if not xs:
            raise ValueError("x is empty")
        n = xs[0].shape[1]
        if any(xi.shape[1] != n for xi in xs):
            raise ValueError("all trajectories must have the same number of state variables")
        us = _as_list(u, "u", len(xs))
        if us is not None:
            _check_u(us, xs)
        xds = _as_list(x_dot, "x_dot", len(xs))
        if xds is not None:
            for i, (xd, xi) in enumerate(zip(xds, xs)):
                if xd.shape != xi.shape:
                    raise ValueError(f"x_dot[{i}] has shape {xd.shape} but x[{i}] has {xi.shape}")
            xl = xs
        elif self.discrete_time:  # the map's increment per step: x[k+1] - x[k], over dt
            ts = _as_times(t, xs)
            xl, xds = [], []
            for xi, ti in zip(xs, ts):
                if len(xi) < 2:
                    raise ValueError("a discrete-time fit needs trajectories of at least 2 samples")
                dt = ti if np.isscalar(ti) else np.diff(ti)[:, None]
                xl.append(xi[:-1])
                xds.append(np.diff(xi, axis=0) / dt)
            if us is not None:
                us = [ui[:-1] for ui in us]
        else:
            ts = _as_times(t, xs)
            kw = {"order": self.fd_order} if self.differentiation in ("finite_difference", "fd", "smoothed_finite_difference", "sfd", "smoothed") else {}
            xl, xds = differentiate(xs, ts, self.differentiation, **kw)
        m = 0 if us is None else us[0].shape[1]
        names = feature_names if feature_names is not None else self.feature_names
        cnames = control_names if control_names is not None else self.control_names
        defaults = default_names(n, m)
        names = list(names) if names is not None else defaults[:n]
        cnames = list(cnames) if cnames is not None else defaults[n:]
        if len(names) != n:
            raise ValueError(f"got {len(names)} feature names for {n} state variables")
        if len(cnames) != m:
            raise ValueError(f"got {len(cnames)} control names for {m} control inputs")
        return xl, us, xds, names, cnames

    def _check_size(self, n_samples: int, n_inputs: int, n_targets: int, n_thresholds: int,
                    max_degree: int | None, max_features: int | None):
        """Refuse a library that will not fit before any of it is built (see ``budget``)."""
        from .budget import MAX_DEGREE, MAX_FEATURES, check_library

        return check_library(n_samples, n_inputs, n_targets, self.degree, include_bias=self.include_bias,
                             include_interaction=self.include_interaction, interaction_only=self.interaction_only,
                             n_thresholds=n_thresholds, max_degree=MAX_DEGREE if max_degree is None else max_degree,
                             max_features=MAX_FEATURES if max_features is None else max_features)

    def _make_library(self, n_inputs: int) -> PolynomialLibrary:
        return PolynomialLibrary(
            degree=self.degree,
            include_bias=self.include_bias,
            include_interaction=self.include_interaction,
            interaction_only=self.interaction_only,
        ).fit(n_inputs)

    @staticmethod
    def _theta(lib: PolynomialLibrary, xs, us, ys=None, cancel=None) -> np.ndarray:
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
            if cancel is not None and cancel():  # many short trajectories: check between them
                from ..reporting import Cancelled

                raise Cancelled("SINDy library build cancelled")
            z = xi if us is None else np.concatenate([xi, us[i]], axis=1)
            lib.transform_T(z, out=thetaT[:F, pos : pos + len(xi)], cancel=cancel)
            if ys is not None:
                thetaT[F:, pos : pos + len(xi)] = ys[i].T
            pos += len(xi)
        return thetaT.T

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, x, t=None, u=None, x_dot=None, *, feature_names=None, control_names=None, cancel=None,
            max_degree: int | None = None, max_features: int | None = None) -> "Sindy":
        """Fit the model.

        Parameters
        ----------
        x : array (T, n), list of such arrays, or (n_traj, T, n)
            State trajectories.
        t : float or array (T,) or list of arrays
            Time step, or sample times (per trajectory if a list).  Not needed with ``x_dot``.
        u : array (T, m) or list, optional
            Control inputs (SINDYc): the library is built over ``[x, u]``.
        x_dot : like x, optional
            Known derivatives (skips differentiation).
        feature_names, control_names : list of str, optional
            State and control names (override the constructor's).
        cancel : callable, optional
            Polled between solves; True stops the fit with ``engine.reporting.Cancelled``.
        max_degree, max_features : int, optional
            Limits of :func:`engine.sindy.budget.check_library` (checked before the library is
            built; :class:`~engine.sindy.budget.LibraryTooLarge` beyond them or beyond memory).

        Returns
        -------
        self
        """
        from .stlsq import GramStats, stlsq, stlsq_gram

        self._check_params()
        xl, us, xds, names, cnames = self._prepare(x, t, u, x_dot, feature_names, control_names)
        n, m = xl[0].shape[1], (0 if us is None else us[0].shape[1])
        self._check_size(sum(len(xi) for xi in xl), n + m, n, 1, max_degree, max_features)
        lib = self._make_library(n + m)
        constants = self._constants(xl, names)
        allowed = self._allowed(lib, names, constants)
        if not all(np.all(np.isfinite(d)) for d in xds):
            raise ValueError("x_dot contains NaN or inf")
        if self.device is None:  # [Θ y] in one buffer: one syrk for all the statistics
            F = lib.n_output_features_
            joint = self._theta(lib, xl, us, xds, cancel=cancel)
            theta, Y = joint[:, :F], joint[:, F:]
            coef, info = stlsq_gram(
                GramStats.from_joint(joint, F, cancel=cancel), self.threshold, self.alpha, self.max_iter,
                unbias=self.unbias, theta=theta, y=Y, exact=self.exact, return_info=True, cancel=cancel,
                normalize_columns=self.normalize_columns, allowed=allowed,
            )
        else:
            theta = self._theta(lib, xl, us, cancel=cancel)
            Y = np.concatenate(xds, axis=0)
            coef, info = stlsq(
                theta, Y, self.threshold, self.alpha, self.max_iter,
                unbias=self.unbias, device=self.device, exact=self.exact, return_info=True,
                normalize_columns=self.normalize_columns, allowed=allowed,
            )
        self._set_fitted(coef[0], lib, names, cnames, n, m)
        self.constants_ = constants
        self.feature_norms_ = info.extra.pop("feature_norms", None)
        self.dt_ = float(t) if self.discrete_time and t is not None and np.isscalar(t) else None
        self.gram_ = info.extra.pop("gram")
        self.stlsq_info_ = info
        self.x_scale_ = float(max(np.abs(xi).max() for xi in xl))
        self.n_samples_ = theta.shape[0]
        return self

    @classmethod
    def from_coefficients(
        cls,
        coef,
        *,
        degree: int = 3,
        include_bias: bool = True,
        include_interaction: bool = True,
        interaction_only: bool = False,
        feature_names: Sequence[str] | None = None,
        control_names: Sequence[str] | None = None,
        n_controls: int = 0,
        **params,
    ) -> "Sindy":
        """A fitted-looking model from a coefficient matrix (e.g. loaded from JSON)."""
        coef = np.asarray(coef, dtype=np.float64)
        if coef.ndim != 2:
            raise ValueError("coef must be (n_states, n_library_terms)")
        model = cls(degree=degree, include_bias=include_bias, include_interaction=include_interaction,
                    interaction_only=interaction_only, **params)
        n = coef.shape[0]
        m = len(control_names) if control_names is not None else n_controls
        lib = model._make_library(n + m)
        if lib.n_output_features_ != coef.shape[1]:
            raise ValueError(f"coef has {coef.shape[1]} columns but the library has {lib.n_output_features_} terms")
        defaults = default_names(n, m)
        names = list(feature_names) if feature_names is not None else defaults[:n]
        cnames = list(control_names) if control_names is not None else defaults[n:]
        model._set_fitted(coef.copy(), lib, names, cnames, n, m)
        model.x_scale_ = 1.0
        model.constants_ = {}
        model.dt_ = None
        return model

    def _set_fitted(self, coef: np.ndarray, lib: PolynomialLibrary, names: list[str], cnames: list[str],
                    n: int, m: int) -> None:
        """The fitted attributes that follow from the coefficients and the library (fit and
        from_coefficients both end here)."""
        self.coef_ = coef
        self.support_ = coef != 0
        self.library_ = lib
        self.state_names_ = names
        self.control_names_ = cnames
        self.feature_names_ = lib.get_feature_names(names + cnames)
        self.n_features_in_ = n
        self.n_control_features_ = m
        self.n_output_features_ = lib.n_output_features_

    # -- using the model -------------------------------------------------------------------
    def _z(self, x, u):
        xs = _as_list(x, "x")
        for xi in xs:
            if xi.shape[1] != self.n_features_in_:
                raise ValueError(f"x has {xi.shape[1]} variables; the model has {self.n_features_in_}")
        us = _as_list(u, "u", len(xs))
        if self.n_control_features_ and us is None:
            raise ValueError(f"the model was fit with {self.n_control_features_} control input(s); u is required")
        if not self.n_control_features_ and us is not None:
            raise ValueError("the model was fit without control inputs, but u was given")
        if us is not None:
            _check_u(us, xs)
            if us[0].shape[1] != self.n_control_features_:
                raise ValueError(f"u has {us[0].shape[1]} inputs; the model has {self.n_control_features_}")
        return xs, us

    def predict(self, x, u=None):
        """Derivatives ``ẋ = Ξ θ([x, u])``: ``(T, n)``, or a list for a list of trajectories."""
        self._check_fitted()
        multi = _is_seq(x) or np.ndim(x) == 3
        xs, us = self._z(x, u)
        out = [self._theta(self.library_, [xi], None if us is None else [us[i]]) @ self.coef_.T for i, xi in enumerate(xs)]
        return out if multi else out[0]

    def score(self, x, t=None, u=None, x_dot=None, metric: str = "r2") -> float:
        """R² of the predicted derivatives (pysindy's ``score``; ``metric="mse"`` for the MSE)."""
        self._check_fitted()
        xl, us, xds, _, _ = self._prepare(x, t, u, x_dot, self.state_names_, self.control_names_)
        pred = np.concatenate([self._theta(self.library_, [xi], None if us is None else [us[i]]) for i, xi in enumerate(xl)]) @ self.coef_.T
        y = np.concatenate(xds)
        if metric == "mse":
            return float(np.mean((pred - y) ** 2))
        if metric != "r2":
            raise ValueError("metric must be 'r2' or 'mse'")
        return float(_r2(y, pred))

    def simulate(
        self,
        x0,
        t,
        u=None,
        *,
        method: str | None = None,
        bound: float | None = None,
        max_wall_time: float | None = None,
        device=None,
        u_interp: str = "linear",
        substeps: int = 1,
        backend: str = "auto",
    ):
        """Integrate from ``x0`` (``(n,)`` or a batch ``(B, n)``) over the times ``t``.

        Returns a :class:`~engine.sindy.simulate.SimulationResult` (``np.asarray(result)`` is
        the trajectory array; ``result.diverged`` / ``result.divergence_time`` say what blew up).
        The default divergence bound is ``1e3 * max(1, largest |x| seen in training)``.
        """
        from .simulate import simulate

        self._check_fitted()
        t = np.asarray(t, dtype=np.float64)
        if t.ndim == 0:
            raise ValueError("t must be an array of the times at which to simulate")
        if bound is None:
            bound = 1e3 * max(1.0, self.x_scale_)
        if method is None:  # a discrete-time model steps exactly as it was fitted
            method = "euler" if getattr(self, "discrete_time", False) else "rk4"
        return simulate(
            self.coef_, self.library_, x0, t, u, method=method, bound=bound, max_wall_time=max_wall_time,
            device=device, u_interp=u_interp, substeps=substeps, backend=backend,
        )

    # -- equations ---------------------------------------------------------------------------
    def equations(self, precision: int = 3, lhs: bool = True) -> list[str]:
        """One string per state: ``(h0)' = 0.534 + 10.4 h0 - 2.1 h0 h1`` for an ODE,
        ``h0[k+1] = h0[k] + 0.00534 + ...`` for a map, ``h6 = 0.998 (constant)`` for a constant
        (see :mod:`engine.sindy.forms`).  ``lhs=False``: the right-hand sides only, in the
        stored coefficients' units.

        ``precision`` is the number of significant digits of each coefficient.
        """
        from .forms import equation_text

        self._check_fitted()
        out = []
        consts = getattr(self, "constants_", {}) or {}
        for name, row in zip(self.state_names_, self.coef_):
            if not lhs:
                out.append(format_equation(row, self.feature_names_, precision))
                continue
            out.append(equation_text(name, row, self.feature_names_, discrete_time=bool(getattr(self, "discrete_time", False)),
                                     dt=getattr(self, "dt_", None), constant=consts.get(name), precision=precision))
        return out

    def print(self, precision: int = 3, **kwargs) -> None:
        for eq in self.equations(precision):
            print(eq, **kwargs)

    @property
    def complexity(self) -> int:
        """Number of nonzero coefficients."""
        self._check_fitted()
        return int(np.count_nonzero(self.coef_))

    def coefficients(self) -> np.ndarray:
        self._check_fitted()
        return self.coef_

    def get_feature_names(self) -> list[str]:
        self._check_fitted()
        return list(self.feature_names_)

    # -- hand editing ------------------------------------------------------------------------
    def _row(self, target) -> int:
        if isinstance(target, str):
            if target not in self.state_names_:
                raise ValueError(f"unknown state {target!r}; states are {self.state_names_}")
            return self.state_names_.index(target)
        return int(target)

    def _col(self, term) -> int:
        if isinstance(term, str):
            if term not in self.feature_names_:
                raise ValueError(f"unknown term {term!r}")
            return self.feature_names_.index(term)
        return int(term)

    def refit_support(self, mask) -> np.ndarray:
        """Unbiased least-squares coefficients on the support ``mask`` ``(n, F)``, from the Gram.

        No pass over the data; does not change the model.
        """
        from .sweep import refit_support

        self._check_fitted()
        if not hasattr(self, "gram_"):
            raise NotFittedError("this model has no training statistics (built from coefficients); fit it first")
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.coef_.shape:
            raise ValueError(f"mask must have shape {self.coef_.shape}")
        return refit_support(self.gram_, mask)  # the same refit as hand edits in the Equations pane

    def set_support(self, mask, refit: bool = True) -> "Sindy":
        """Keep exactly the terms in ``mask``; refit them (``refit``) or just zero the others."""
        self._check_fitted()
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.coef_.shape:
            raise ValueError(f"mask must have shape {self.coef_.shape}")
        self.coef_ = self.refit_support(mask) if refit else np.where(mask, self.coef_, 0.0)
        self.support_ = mask & (self.coef_ != 0) if not refit else mask.copy()
        return self

    def toggle_term(self, target, term, on: bool | None = None, refit: bool = True) -> "Sindy":
        """Switch one term of one equation on/off (``on=None`` flips it) and refit that support."""
        self._check_fitted()
        i, j = self._row(target), self._col(term)
        mask = self.support_.copy()
        mask[i, j] = (not mask[i, j]) if on is None else bool(on)
        if not refit and mask[i, j] and self.coef_[i, j] == 0:
            raise ValueError("switching a term on needs refit=True (it has no coefficient yet)")
        return self.set_support(mask, refit=refit)

    def training_error(self, coef=None, relative: bool = True) -> np.ndarray:
        """Per-state derivative error on the training data, from the Gram (O(F²), no data pass).

        ``relative``: ``Σ(ẋ - ẋ̂)² / Σ(ẋ - mean)²`` (``1 - R²``); else the mean squared error.
        ``coef`` defaults to the current coefficients (try edits without committing them).
        """
        self._check_fitted()
        if not hasattr(self, "gram_"):
            raise NotFittedError("this model has no training statistics (built from coefficients)")
        c = self.coef_ if coef is None else np.asarray(coef, dtype=np.float64)
        sse = self.gram_.sse(c)
        if not relative:
            return sse / self.gram_.n_samples
        sst = self.gram_.sst()
        return np.where(sst > 0, sse / np.where(sst > 0, sst, 1.0), np.where(sse > 0, np.inf, 0.0))

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from .export import model_to_dict

        return model_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Sindy":
        from .export import model_from_dict

        return model_from_dict(d)

    # -- sweeps and ensembles ----------------------------------------------------------------
    def sweep(self, x, t=None, u=None, **kwargs):
        """Threshold sweep with this model's settings (see :func:`engine.sindy.sweep.threshold_sweep`)."""
        from .sweep import threshold_sweep

        return threshold_sweep(x, t, u, model=self, **kwargs)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    """sklearn's ``r2_score`` with ``multioutput='uniform_average'`` (and its constant-target rule)."""
    num = ((y - pred) ** 2).sum(0)
    den = ((y - y.mean(0)) ** 2).sum(0)
    scores = np.ones(y.shape[1])
    ok = den != 0
    scores[ok] = 1 - num[ok] / den[ok]
    scores[~ok & (num != 0)] = 0.0
    return float(scores.mean())
