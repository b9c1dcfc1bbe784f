"""Metrics of predicted rates against spike counts: the seed's Poisson loss, the Poisson
negative log-likelihood and bits per spike as the Neural Latents Benchmark defines them."""

from __future__ import annotations

import numpy as np

from engine.metrics.arrays import _bad_cells, _finish, _pair, is_diverged

_LN2 = np.log(2.0)


# --------------------------------------------------------------------------- Poisson


def _check_rates(spikes, rates):
    s, r = _pair(spikes, rates, allow_nan_true=True)
    if np.any(s[np.isfinite(s)] < 0):
        raise ValueError("spike counts must be non-negative")
    return s, r


def poisson_loss(spikes, rates) -> float:
    """The seed's training loss: ``mean(rate - spikes * log(rate))`` (no log k! term)."""
    s, r = _check_rates(spikes, rates)
    if is_diverged(r):
        return float("nan")
    if np.any(r < 0):
        raise ValueError("rates must be non-negative")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = r - s * np.log(r)
    # 0 * log(0) is 0 in the Poisson likelihood.
    terms = np.where((s == 0) & (r == 0), 0.0, terms)
    return float(np.nanmean(terms))


def _nll_terms(s: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Poisson NLL per entry, NLB convention: zero rates clipped to 1e-9."""
    from scipy.special import gammaln

    r = np.where(r == 0, 1e-9, r)
    return r - s * np.log(r) + gammaln(s + 1.0)


def poisson_nll(spikes, rates, *, per_cell: bool = False):
    """Total Poisson negative log-likelihood ``sum(r - k log r + log k!)`` (NLB).

    NaN spike counts are masked out (as in NLB); zero rates are clipped to 1e-9.
    Returns NaN for a diverged prediction; raises on negative rates.
    """
    s, r = _check_rates(spikes, rates)
    bad = _bad_cells(r)
    r_ok = np.where(bad, 1.0, r)
    if np.any(r_ok < 0):
        raise ValueError("rates must be non-negative (negative rate predictions found)")
    terms = np.where(np.isnan(s), 0.0, _nll_terms(np.nan_to_num(s), r_ok))
    return _finish(terms.sum(axis=0), terms.sum(), bad, per_cell)


def bits_per_spike(spikes, rates, *, per_cell: bool = False):
    """Bits per spike, exactly as the Neural Latents Benchmark defines it.

    ``(NLL_null - NLL_model) / (n_spikes * ln 2)`` where the null model predicts
    each neuron's mean count over the evaluation data given (NaN-aware mean over
    all axes but the last).  A perfect predictor of the rates scores > 0, the
    per-neuron mean scores exactly 0, worse than the mean scores < 0.

    Parameters
    ----------
    spikes : array (..., neurons)
        Observed counts (NaN entries are ignored).
    rates : array (..., neurons)
        Predicted rates, in counts per bin, non-negative.
    per_cell : bool
        Per neuron (each normalised by its own spike count; NaN for a silent
        neuron) instead of the NLB total.
    """
    s, r = _check_rates(spikes, rates)
    bad = _bad_cells(r)
    if np.any(np.where(bad, 1.0, r) < 0):
        raise ValueError("rates must be non-negative (negative rate predictions found)")
    with np.errstate(invalid="ignore"):
        null = np.broadcast_to(np.nanmean(s, axis=0, keepdims=True), s.shape)
    mask = np.isnan(s)
    s0 = np.where(mask, 0.0, s)
    model_terms = np.where(mask, 0.0, _nll_terms(s0, np.where(bad, 1.0, r)))
    null_terms = np.where(mask, 0.0, _nll_terms(s0, np.nan_to_num(null)))
    n_spk = s0.sum(axis=0)
    gain = null_terms.sum(axis=0) - model_terms.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cell = np.where(n_spk > 0, gain / (n_spk * _LN2), np.nan)
        total = gain.sum() / (n_spk.sum() * _LN2) if n_spk.sum() > 0 else np.nan
    return _finish(cell, total, bad, per_cell)


def co_bps(heldout_spikes, heldout_rates, *, per_cell: bool = False):
    """Co-smoothing bits per spike: :func:`bits_per_spike` on held-out neurons.

    In NLB the rates of held-out neurons are predicted from the held-in ones; pass
    only the held-out columns (evaluation trials) here.
    """
    return bits_per_spike(heldout_spikes, heldout_rates, per_cell=per_cell)
