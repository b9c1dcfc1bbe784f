"""``Sindy``: a scikit-learn-style SINDy estimator on the fast batched STLSQ.

>>> model = Sindy(degree=3, threshold=0.1).fit(x, t=0.01, feature_names=[f"h{i}" for i in range(9)])
>>> model.equations()[0]
"(h0)' = 0.534 + 10.4 h0 - 2.1 h0 h1"

Defaults follow pysindy (``SINDy(optimizer=STLSQ(threshold, alpha, max_iter),
feature_library=PolynomialLibrary(degree, include_bias))`` with its centred finite differences),
and on the same data the coefficients agree with pysindy's to ~1e-6 relative (same support).
Control inputs (SINDYc) go in as ``u``: the library is built over ``[x, u]``.

A sweep over thresholds with a model's settings is ``threshold_sweep(x, t, model=model)``
(:mod:`.sweep`); a document of a model is ``model_to_dict(model)`` / ``model_from_dict(d)``
(:mod:`.export`).  Both modules build on this one, so the model has no methods for them.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from ._inputs import REAL_SCALARS, as_list, as_optional_list, check_u, is_seq, r2
from .design import (allowed_terms, check_params, check_size, constant_states, library_matrix, make_library,
                     prepare)
from .editing import HandEditing
from .formatting import equation_text, format_equation
from .gram import GramStats
from .library import PolynomialLibrary, default_names
from .simulation import SimulationResult, simulate
from .stlsq_algorithm import stlsq, stlsq_gram

__all__ = ["Sindy"]


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------
class Sindy(HandEditing):
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
        check_params(self)
        xl, us, xds, names, cnames = prepare(self, x, t, u, x_dot, feature_names, control_names)
        n, m = xl[0].shape[1], (0 if us is None else us[0].shape[1])
        check_size(self, sum(len(xi) for xi in xl), n + m, n, 1, max_degree, max_features)
        lib = make_library(self, n + m)
        constants = constant_states(self.constant_tol, xl, names)
        allowed = allowed_terms(lib, names, constants)
        if not all(np.all(np.isfinite(d)) for d in xds):
            raise ValueError("x_dot contains NaN or inf")
        if self.device is None:  # [Θ y] in one buffer: one syrk for all the statistics
            F = lib.n_output_features_
            joint = library_matrix(lib, xl, us, xds, cancel=cancel)
            theta, Y = joint[:, :F], joint[:, F:]
            coef, info = stlsq_gram(
                GramStats.from_joint(joint, F, cancel=cancel), self.threshold, self.alpha, self.max_iter,
                unbias=self.unbias, theta=theta, y=Y, exact=self.exact, return_info=True, cancel=cancel,
                normalize_columns=self.normalize_columns, allowed=allowed,
            )
        else:
            theta = library_matrix(lib, xl, us, cancel=cancel)
            Y = np.concatenate(xds, axis=0)
            coef, info = stlsq(
                theta, Y, self.threshold, self.alpha, self.max_iter,
                unbias=self.unbias, device=self.device, exact=self.exact, return_info=True,
                normalize_columns=self.normalize_columns, allowed=allowed,
            )
        self._set_fitted(coef[0], lib, names, cnames, n, m)
        self.constants_ = constants
        self.feature_norms_ = info.feature_norms
        self.dt_ = float(t) if self.discrete_time and isinstance(t, REAL_SCALARS) else None
        self.gram_ = info.gram
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
        lib = make_library(model, n + m)
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
        xs = as_list(x, "x")
        for xi in xs:
            if xi.shape[1] != self.n_features_in_:
                raise ValueError(f"x has {xi.shape[1]} variables; the model has {self.n_features_in_}")
        us = as_optional_list(u, "u", len(xs))
        if self.n_control_features_ and us is None:
            raise ValueError(f"the model was fit with {self.n_control_features_} control input(s); u is required")
        if not self.n_control_features_ and us is not None:
            raise ValueError("the model was fit without control inputs, but u was given")
        if us is not None:
            check_u(us, xs)
            if us[0].shape[1] != self.n_control_features_:
                raise ValueError(f"u has {us[0].shape[1]} inputs; the model has {self.n_control_features_}")
        return xs, us

    def predict(self, x, u=None):
        """Derivatives ``ẋ = Ξ θ([x, u])``: ``(T, n)``, or a list for a list of trajectories."""
        self._check_fitted()
        multi = is_seq(x) or np.ndim(x) == 3
        xs, us = self._z(x, u)
        out = [library_matrix(self.library_, [xi], None if us is None else [us[i]]) @ self.coef_.T for i, xi in enumerate(xs)]
        return out if multi else out[0]

    def score(self, x, t=None, u=None, x_dot=None, metric: str = "r2") -> float:
        """R² of the predicted derivatives (pysindy's ``score``; ``metric="mse"`` for the MSE)."""
        self._check_fitted()
        xl, us, xds, _, _ = prepare(self, x, t, u, x_dot, self.state_names_, self.control_names_)
        pred = np.concatenate([library_matrix(self.library_, [xi], None if us is None else [us[i]]) for i, xi in enumerate(xl)]) @ self.coef_.T
        y = np.concatenate(xds)
        if metric == "mse":
            return float(np.mean((pred - y) ** 2))
        if metric != "r2":
            raise ValueError("metric must be 'r2' or 'mse'")
        return float(r2(y, pred))

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
    ) -> SimulationResult:
        """Integrate from ``x0`` (``(n,)`` or a batch ``(B, n)``) over the times ``t``.

        Returns a :class:`~engine.sindy.simulation.SimulationResult` (``np.asarray(result)`` is
        the trajectory array; ``result.diverged`` / ``result.divergence_time`` say what blew up).
        The default divergence bound is ``1e3 * max(1, largest |x| seen in training)``.
        """
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
        (see :mod:`engine.sindy.formatting`).  ``lhs=False``: the right-hand sides only, in the
        stored coefficients' units.

        ``precision`` is the number of significant digits of each coefficient.
        """
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
