"""Hand editing of a fitted model's terms, refitted from its training Gram (no data pass).

:class:`HandEditing` is a mixin of :class:`~engine.sindy.model.Sindy`: switch terms on and
off, refit the kept support by least squares, and read the training error of any coefficients.
"""

from __future__ import annotations

import numpy as np

from .errors import NotFittedError, check_is_fitted
from .gram import GramStats
from .stlsq_algorithm import refit_support

__all__ = ["HandEditing"]


class HandEditing:
    """Term edits on ``coef_``/``support_`` with refits from ``gram_`` (set by ``fit``)."""

    coef_: np.ndarray
    support_: np.ndarray
    state_names_: list[str]
    feature_names_: list[str]
    gram_: GramStats

    def _check_fitted(self) -> None:
        check_is_fitted(self)

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
        self._check_fitted()
        if not hasattr(self, "gram_"):
            raise NotFittedError("this model has no training statistics (built from coefficients); fit it first")
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.coef_.shape:
            raise ValueError(f"mask must have shape {self.coef_.shape}")
        return refit_support(self.gram_, mask)  # the same refit as hand edits in the Equations pane

    def set_support(self, mask, refit: bool = True) -> "HandEditing":
        """Keep exactly the terms in ``mask``; refit them (``refit``) or just zero the others."""
        self._check_fitted()
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.coef_.shape:
            raise ValueError(f"mask must have shape {self.coef_.shape}")
        self.coef_ = self.refit_support(mask) if refit else np.where(mask, self.coef_, 0.0)
        self.support_ = mask & (self.coef_ != 0) if not refit else mask.copy()
        return self

    def toggle_term(self, target, term, on: bool | None = None, refit: bool = True) -> "HandEditing":
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

