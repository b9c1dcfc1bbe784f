"""Polynomial feature library, column-for-column identical to pysindy's ``PolynomialLibrary``.

The columns come in the order of ``sklearn.preprocessing.PolynomialFeatures`` (bias, then all
degree-1 terms, then degree-2 combinations with replacement in lexicographic order, ...), and
the names are the ones pysindy prints (``1``, ``h0``, ``h0^2``, ``h0 h1``).  Each column of
degree ``d`` is computed as (its degree ``d-1`` prefix column) times one input, which is the
same left-to-right product pysindy computes with ``x[..., combo].prod(-1)``, so the matrices
agree bit for bit.

Control inputs (SINDYc) are simply extra input variables appended after the states: the
library is built over ``[x, u]`` exactly as pysindy does when ``fit`` gets ``u``.

Works on numpy arrays and, without importing torch itself, on torch tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain, combinations, combinations_with_replacement
from typing import Any, Sequence

import numpy as np

from .errors import NotFittedError

__all__ = [
    "PolynomialLibrary",
    "polynomial_combinations",
    "polynomial_powers",
    "polynomial_feature_names",
    "default_names",
    "n_poly_features",
]


def polynomial_combinations(
    n_inputs: int,
    degree: int,
    include_bias: bool = True,
    include_interaction: bool = True,
    interaction_only: bool = False,
) -> list[tuple[int, ...]]:
    """Index tuples of the library columns, in pysindy's order.

    ``(0, 0, 1)`` is ``x0^2 x1``; ``()`` is the bias column.
    """
    if not isinstance(degree, (int, np.integer)) or degree < 0:
        raise ValueError(f"degree must be a nonnegative integer, got {degree!r}")
    if n_inputs < 1:
        raise ValueError("the library needs at least one input variable")
    if not include_interaction and interaction_only:
        raise ValueError("Can't have include_interaction be False and interaction_only be True")
    if not include_interaction:
        it = chain(
            [()] if include_bias else [],
            (e * (i,) for e in range(1, degree + 1) for i in range(n_inputs)),
        )
        return list(it)
    comb = combinations if interaction_only else combinations_with_replacement
    it = chain.from_iterable(comb(range(n_inputs), d) for d in range(1, degree + 1))
    if include_bias:
        it = chain([()], it)
    return list(it)


def polynomial_powers(combos: Sequence[tuple[int, ...]], n_inputs: int) -> np.ndarray:
    """``powers[i, j]`` is the exponent of input ``j`` in column ``i`` (pysindy's ``powers_``)."""
    out = np.zeros((len(combos), n_inputs), dtype=np.int64)
    for i, c in enumerate(combos):
        for j in c:
            out[i, j] += 1
    return out


def polynomial_feature_names(powers: np.ndarray, input_names: Sequence[str]) -> list[str]:
    """pysindy's ``PolynomialLibrary.get_feature_names``: ``1``, ``x0``, ``x0^2 x1``."""
    names = []
    for row in powers:
        inds = np.where(row)[0]
        if len(inds):
            names.append(
                " ".join(
                    f"{input_names[i]}^{int(e)}" if e != 1 else str(input_names[i])
                    for i, e in zip(inds, row[inds])
                )
            )
        else:
            names.append("1")
    return names


def default_names(n_states: int, n_controls: int = 0) -> list[str]:
    """``x0..x{n-1}`` then ``u0..u{m-1}``, as pysindy names its inputs."""
    return [f"x{i}" for i in range(n_states)] + [f"u{i}" for i in range(n_controls)]


def n_poly_features(
    n_inputs: int,
    degree: int,
    include_bias: bool = True,
    include_interaction: bool = True,
    interaction_only: bool = False,
) -> int:
    """Number of library columns (without building them)."""
    from math import comb

    if not include_interaction:
        return int(include_bias) + n_inputs * degree
    n = int(include_bias)
    for d in range(1, degree + 1):
        n += comb(n_inputs, d) if interaction_only else comb(n_inputs + d - 1, d)
    return n


@dataclass
class _Plan:
    """How to build the columns: degree by degree, ``out[:, cols] = out[:, prefix] * x[:, last]``."""

    n_inputs: int
    n_output: int
    bias_col: int | None
    lin_cols: np.ndarray  # columns of the degree-1 terms
    lin_inputs: np.ndarray  # which input each degree-1 column copies
    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    lin_slice: Any = None
    np_steps: list[tuple[Any, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


def _make_plan(combos: Sequence[tuple[int, ...]], n_inputs: int) -> _Plan:
    index = {c: i for i, c in enumerate(combos)}
    bias = index.get(())
    lin = [(i, c[0]) for i, c in enumerate(combos) if len(c) == 1]
    plan = _Plan(
        n_inputs=n_inputs,
        n_output=len(combos),
        bias_col=bias,
        lin_cols=np.array([i for i, _ in lin], dtype=np.int64),
        lin_inputs=np.array([j for _, j in lin], dtype=np.int64),
    )
    max_deg = max((len(c) for c in combos), default=0)
    for d in range(2, max_deg + 1):
        cols = [i for i, c in enumerate(combos) if len(c) == d]
        if not cols:
            continue
        prefix = [index[combos[i][:-1]] for i in cols]
        last = [combos[i][-1] for i in cols]
        plan.steps.append(
            (np.array(cols, dtype=np.int64), np.array(prefix, dtype=np.int64), np.array(last, dtype=np.int64))
        )
    plan.lin_slice = _as_slice(plan.lin_cols)
    for step in plan.steps:  # (columns, prefix columns, last factors)
        sl = _as_slice(step[0])
        plan.np_steps.append((sl if isinstance(sl, slice) else None, *step))
    return plan


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def _as_slice(cols: np.ndarray):
    """A contiguous run of columns as a slice (the common case), else the index array."""
    if len(cols) and np.all(np.diff(cols) == 1):
        return slice(int(cols[0]), int(cols[-1]) + 1)
    return cols


class PolynomialLibrary:
    """Polynomial library over ``n_inputs`` variables (states, then optional controls).

    Parameters
    ----------
    degree : int, default 2
        Highest total degree (pysindy's default is 2; :class:`~engine.sindy.Sindy` uses 3).
    include_bias : bool, default True
        Include the constant column ``1``.
    include_interaction : bool, default True
        If False, only pure powers ``x_i^k``.
    interaction_only : bool, default False
        If True, only products of distinct inputs.

    Attributes
    ----------
    n_features_in_ : int
        Number of input variables (states + controls).
    n_output_features_ : int
        Number of library columns.
    combinations_ : list of tuple
        Input indices of each column.
    powers_ : ndarray of shape (n_output_features_, n_features_in_)
        Exponents, as pysindy's ``powers_``.
    """

    def __init__(
        self,
        degree: int = 2,
        include_bias: bool = True,
        include_interaction: bool = True,
        interaction_only: bool = False,
    ):
        self.degree = degree
        self.include_bias = include_bias
        self.include_interaction = include_interaction
        self.interaction_only = interaction_only

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, x_or_n_inputs) -> "PolynomialLibrary":
        """Fix the number of inputs from an int, an array ``(..., n)`` or a list of arrays."""
        if isinstance(x_or_n_inputs, (int, np.integer)):
            n = int(x_or_n_inputs)
        elif isinstance(x_or_n_inputs, (list, tuple)):
            n = int(x_or_n_inputs[0].shape[-1])
        else:
            n = int(x_or_n_inputs.shape[-1])
        self.combinations_ = polynomial_combinations(
            n, self.degree, self.include_bias, self.include_interaction, self.interaction_only
        )
        self.n_features_in_ = n
        self.n_output_features_ = len(self.combinations_)
        self.powers_ = polynomial_powers(self.combinations_, n)
        self._plan = _make_plan(self.combinations_, n)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "_plan"):
            raise NotFittedError("PolynomialLibrary is not fitted yet; call fit(n_inputs) first")

    def get_feature_names(self, input_features: Sequence[str] | None = None) -> list[str]:
        """Column names; inputs default to ``x0, x1, ...`` (pysindy's convention)."""
        self._check_fitted()
        if input_features is None:
            input_features = [f"x{i}" for i in range(self.n_features_in_)]
        if len(input_features) != self.n_features_in_:
            raise ValueError(
                f"got {len(input_features)} input names for {self.n_features_in_} inputs"
            )
        return polynomial_feature_names(self.powers_, list(input_features))

    # -- evaluation ------------------------------------------------------------------------
    def transform(self, x, out=None):
        """Library matrix ``(..., n_output_features_)`` of ``x`` ``(..., n_inputs)``.

        A list of trajectories gives a list of matrices.  numpy in -> numpy out (float64
        unless ``x`` is float32); a torch tensor in -> a tensor on the same device and dtype.
        """
        self._check_fitted()
        if isinstance(x, (list, tuple)):
            return [self.transform(xi) for xi in x]
        if _is_torch(x):
            return self._transform_torch(x)
        x = np.asarray(x)
        if x.dtype.kind not in "fc":
            x = x.astype(np.float64)
        if x.shape[-1] != self.n_features_in_:
            raise ValueError(
                f"x has {x.shape[-1]} variables but the library was fit with {self.n_features_in_}"
            )
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.n_features_in_)
        M = x2.shape[0]
        F = self._plan.n_output
        if out is not None:
            if out.shape != (M, F):
                raise ValueError(f"out must have shape {(M, F)}")
            self.transform_T(x2, out=out.T)
            return out
        outT = np.empty((F, M), dtype=x.dtype)
        self.transform_T(x2, out=outT)
        return outT.T.reshape(*lead, F)  # Fortran-ordered (M, F): columns are contiguous

    def transform_T(self, x, out=None, chunk: int | None = None, cancel=None):
        """Transposed library ``(F, M)`` of ``x`` ``(M, n)`` (numpy), built in cache-sized chunks.

        Each library column is a contiguous row here, so building it is a row gather and a
        multiply; this is what :meth:`transform` uses.  ``cancel`` (a callable) is polled every
        16 chunks (about 16 MiB of output): a cancel stops a large build with ``Cancelled``.
        """
        self._check_fitted()
        x = np.asarray(x)
        p = self._plan
        M = x.shape[0]
        if chunk is None:  # keep a chunk of the output (F x chunk doubles) around 1 MiB
            chunk = int(min(4096, max(64, 131072 // max(p.n_output, 1))))
        if out is None:
            out = np.empty((p.n_output, M), dtype=x.dtype if x.dtype.kind == "f" else np.float64)
        xT = x.T
        for i, s in enumerate(range(0, M, chunk)):
            if cancel is not None and i % 16 == 15 and cancel():
                from ..reporting import Cancelled

                raise Cancelled("SINDy library build cancelled")
            o = out[:, s : s + chunk]
            xc = np.ascontiguousarray(xT[:, s : s + chunk])
            if p.bias_col is not None:
                o[p.bias_col] = 1.0
            if len(p.lin_cols):
                o[p.lin_slice] = xc[p.lin_inputs]
            for sl, cols, prefix, last in p.np_steps:
                if sl is not None:
                    np.multiply(o[prefix], xc[last], out=o[sl])
                else:
                    o[cols] = o[prefix] * xc[last]
        return out

    def _transform_torch(self, x):
        import torch

        n = self.n_features_in_
        if x.shape[-1] != n:
            raise ValueError(f"x has {x.shape[-1]} variables but the library was fit with {n}")
        p = self._plan
        two_d = x.dim() == 2
        x2 = x if two_d else x.reshape(-1, n)
        cache = getattr(self, "_torch_cache", None)
        if cache is None or cache[0] != x.device:
            dev = x.device
            identity_lin = bool(np.array_equal(p.lin_inputs, np.arange(len(p.lin_inputs)))) and len(p.lin_inputs) == n
            cache = (
                dev,
                None if identity_lin else torch.as_tensor(p.lin_inputs, device=dev),
                [
                    (sl, torch.as_tensor(c, device=dev), torch.as_tensor(pr, device=dev), torch.as_tensor(la, device=dev))
                    for sl, c, pr, la in p.np_steps
                ],
            )
            self._torch_cache = cache
        _, lin_inputs, steps = cache
        out = torch.empty((x2.shape[0], p.n_output), dtype=x.dtype, device=x.device)
        if p.bias_col is not None:
            out[:, p.bias_col] = 1.0
        if len(p.lin_cols):
            out[:, p.lin_slice] = x2 if lin_inputs is None else x2.index_select(1, lin_inputs)
        for sl, cols_t, prefix, last in steps:
            val = out.index_select(1, prefix) * x2.index_select(1, last)
            if sl is not None:
                out[:, sl] = val
            else:
                out[:, cols_t] = val
        return out if two_d else out.reshape(*x.shape[:-1], p.n_output)

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def __repr__(self) -> str:
        return (
            f"PolynomialLibrary(degree={self.degree}, include_bias={self.include_bias}, "
            f"include_interaction={self.include_interaction}, interaction_only={self.interaction_only})"
        )
