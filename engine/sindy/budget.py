"""What a SINDy library will cost, checked before anything is allocated.

A polynomial library grows as ``C(n + d, d)``: 2 variables at degree 40 are 861 columns,
12 at degree 6 are 18,564.  The fit holds the library matrix ``[Θ y]`` of the training
samples (float64), the held-out library, the Gram matrix and its inverse, and the sweep's
coefficient stacks.  :func:`check_library` estimates that before the first column is built
and refuses, in one line that names the number of features and the memory, a library that
the machine cannot hold or whose degree float64 monomials cannot resolve.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import LibraryTooLarge

from .library import n_poly_features

__all__ = ["LibraryTooLarge", "LibraryNeed", "library_need", "check_library", "available_memory",
           "MAX_DEGREE", "MAX_FEATURES"]

# Monomials of one variable on [-1, 1] are numerically collinear in float64 well before
# degree 20 (the Gram's condition number grows like 16^d; it passes 1e16, float64's
# resolution, near degree 13): a higher degree is a fit of rounding error that also costs
# minutes of SVD fallbacks.  Raise ``max_degree`` to override.
MAX_DEGREE = 12
# Each STLSQ solve is O(F^3) on the Gram and a sweep makes hundreds of them: beyond this the
# sweep stops being interactive, and one solve (a Cholesky of 2,000 columns, about a second
# of one core) is the longest a cancel has to wait.
MAX_FEATURES = 2000


@dataclass(frozen=True)
class LibraryNeed:
    """Size of a fit: ``n_features`` library columns and ``bytes`` of float64 working memory."""

    n_features: int
    n_inputs: int
    degree: int
    n_samples: int
    bytes: int

    def describe(self) -> str:
        return (f"degree {self.degree} over {self.n_inputs} variable{'s' * (self.n_inputs != 1)} gives "
                f"{self.n_features:,} library features; {self.n_samples:,} samples need about "
                f"{_size(self.bytes)}")


def library_need(n_samples: int, n_inputs: int, n_targets: int, degree: int, *, include_bias: bool = True,
                 include_interaction: bool = True, interaction_only: bool = False, n_thresholds: int = 1) -> LibraryNeed:
    """Working memory of a fit or a sweep of ``n_thresholds`` thresholds (float64)."""
    F = n_poly_features(n_inputs, degree, include_bias, include_interaction, interaction_only)
    K, P = max(1, n_targets), max(1, n_thresholds)
    cells = (n_samples * (F + K)  # [Θ y] of every sample (training and held out)
             + 3 * F * F  # Gram, its ridge inverse, one factor
             + 4 * P * K * F)  # coefficient stacks (biased, unbiased, cache, result)
    return LibraryNeed(F, n_inputs, int(degree), int(n_samples), int(8 * cells))


def available_memory() -> int | None:
    """Bytes the system can give now (``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        pass
    return None


def check_library(n_samples: int, n_inputs: int, n_targets: int, degree: int, *, include_bias: bool = True,
                  include_interaction: bool = True, interaction_only: bool = False, n_thresholds: int = 1,
                  max_degree: int = MAX_DEGREE, max_features: int = MAX_FEATURES,
                  memory: int | None = None) -> LibraryNeed:
    """Raise :class:`LibraryTooLarge` (one line) if the fit would not fit; else its need.

    ``memory`` is what may be used (default: 80 % of what the system has available now).
    """
    need = library_need(n_samples, n_inputs, n_targets, degree, include_bias=include_bias,
                        include_interaction=include_interaction, interaction_only=interaction_only,
                        n_thresholds=n_thresholds)
    if memory is None:
        avail = available_memory()
        memory = None if avail is None else int(0.8 * avail)
    if memory is not None and need.bytes > memory:
        raise LibraryTooLarge(f"SINDy library refused: {need.describe()}, more than the {_size(memory)} "
                              f"available; lower the degree or the number of samples")
    if degree > max_degree:
        raise LibraryTooLarge(f"SINDy library refused: {need.describe()}; monomials above degree {max_degree} "
                              f"are collinear in float64: lower the degree")
    if need.n_features > max_features:
        raise LibraryTooLarge(f"SINDy library refused: {need.describe()}; more than {max_features:,} features: "
                              f"lower the degree or the number of variables")
    return need


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover
