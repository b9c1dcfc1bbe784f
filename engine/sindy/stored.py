"""A sweep as stored on disk: read it back, refit hand edits and score them like the sweep did.

:meth:`SweepResult.arrays <engine.sindy.sweep.SweepResult.arrays>` writes the arrays,
:func:`load_sweep` reads them into a :class:`StoredSweep`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gram import GramStats
from .holdout import rollout_errors
from .stlsq_algorithm import refit_support

__all__ = ["StoredSweep", "load_sweep", "gram_arrays", "gram_from"]


def gram_arrays(prefix: str, g: GramStats) -> dict[str, np.ndarray]:
    out = {f"{prefix}_G": g.G, f"{prefix}_b": g.b, f"{prefix}_yy": g.yy, f"{prefix}_n": np.array(g.n_samples)}
    if g.y_sum is not None:
        out[f"{prefix}_ysum"] = g.y_sum
    return out


def gram_from(z, prefix: str) -> GramStats | None:
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
    gram: GramStats | None = None
    val_gram: GramStats | None = None
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
            err, _ = rollout_errors(coef[None], library, self.rollouts, self.rollout_substeps, self.bound, None,
                                    self.rollout_method)
            out["rollout_err"] = float(err[0])
        return out


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
            thresholds=z["thresholds"], coefs=z["coefs"], gram=gram_from(z, "gram"),
            val_gram=gram_from(z, "val_gram"), rollouts=ro, rollout_substeps=int(sub), bound=float(bound),
            rollout_method=str(z["ro_method"]) if "ro_method" in z else "rk4",
        )
