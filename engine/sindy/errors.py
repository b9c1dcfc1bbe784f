"""The package's errors and warnings, and the cancel check the long loops share."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["NotFittedError", "ConvergenceWarning", "check_is_fitted", "check_cancel"]


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (same bases as scikit-learn's ``NotFittedError``)."""


class ConvergenceWarning(UserWarning):
    """STLSQ hit ``max_iter`` before the support settled (pysindy warns the same)."""


def check_is_fitted(model: Any) -> None:
    """Raise :class:`NotFittedError` unless ``model`` has coefficients (scikit-learn's name)."""
    if not hasattr(model, "coef_"):
        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet. "
            "Call 'fit' with appropriate arguments before using this method."
        )


def check_cancel(cancel: Callable[[], bool] | None, what: str = "SINDy fit") -> None:
    """Raise :class:`engine.reporting.Cancelled` if ``cancel()`` says so (``None``: never).

    Called between solves and between blocks of the Gram product: each of those is one
    uninterruptible LAPACK/BLAS call, so a cancel is honoured within one of them.
    """
    if cancel is not None and cancel():
        from ..reporting import Cancelled

        raise Cancelled(f"{what} cancelled")
