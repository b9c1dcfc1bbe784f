"""Error and fit metrics shared by every analysis (numpy only; no torch).

Conventions
-----------
* Arguments are ``(y_true, y_pred)`` in that order, as in scikit-learn.  (The
  Neural Latents Benchmark writes ``bits_per_spike(rates, spikes)``; here it is
  ``bits_per_spike(spikes, rates)``, same maths.)
* The last axis is the cell (neuron) axis; all leading axes (time, trials...) are
  samples and are flattened.  A 1-D array is one cell.
* ``per_cell=True`` returns one value per cell (shape ``(cells,)``), otherwise one
  float for all cells together.  "Overall" is pooled over every entry for MAE,
  RMSE and the Poisson likelihoods, and the mean over cells for correlation and
  FEV (a correlation of pooled entries would be dominated by differences in
  mean rate between cells).
* A prediction with non-finite values is *diverged*: the cells it touches get
  NaN and so does the overall value -- never a huge finite number.  A non-finite
  target is a data error and raises ``ValueError``.

:func:`score_table` evaluates many models at once (in parallel with joblib) and
returns one row per model with an explicit ``diverged`` column; :func:`score_meta` says
what its columns mean, to store with it.

Split by what is scored: ``regression`` (continuous targets), ``spikes`` (spike counts),
``table`` (many models at once), on ``arrays`` (pairing, divergence).
"""

from engine.metrics import table
from engine.metrics.arrays import is_diverged
from engine.metrics.regression import (LinearFit, corrected_r2, fev, mae, oracle_correlation, pearson,
                                       rmse)
from engine.metrics.spikes import bits_per_spike, co_bps, poisson_loss, poisson_nll
from engine.metrics.table import METRICS, score_meta, score_table

__all__ = [
    "mae",
    "rmse",
    "pearson",
    "fev",
    "poisson_loss",
    "poisson_nll",
    "bits_per_spike",
    "co_bps",
    "LinearFit",
    "corrected_r2",
    "oracle_correlation",
    "is_diverged",
    "METRICS",
    "score_table",
    "score_meta",
    "table",
]
