"""Per-neuron reliability measures on responses with known structure."""

import numpy as np
import pytest

from engine.reliability import correlation_matrix, reliability_table, reliable, response_entropy, sort_neurons


def _trials(seed=0):
    rng = np.random.default_rng(seed)
    n_img, reps = 80, 8
    signal = rng.gamma(2.0, 2.0, (n_img, 1))
    # neurons 0-9 reliable copies of one tuning (+ a little own tuning), 10-19 pure noise
    own = rng.gamma(2.0, 0.5, (n_img, 10))
    rates = np.concatenate([signal + own, np.full((n_img, 10), 4.0)], axis=1)
    trials = rng.poisson(np.broadcast_to(rates, (reps, *rates.shape))).astype(float)
    trials[:, :, 19] *= 20  # one wildly different neuron
    return trials


def test_table_separates_reliable_from_noise():
    table, corr, info = reliability_table(_trials(), sort="pc1", contamination=0.05)
    assert info["sort_method"] == "pc1"
    assert table["oracle_corr"][:10].min() > 0.6 and table["oracle_corr"][10:19].abs().max() < 0.3
    assert table["entropy"][:10].max() < table["entropy"][10:19].min()  # tuned neurons are less uniform
    assert table.loc[19, "outlier"]
    assert set(table["best_partner"][:10]) <= set(range(10))
    # rank: the correlated block sits together in the sort
    ranks = np.sort(table["sort_rank"][:10].to_numpy())
    assert ranks[-1] - ranks[0] == 9
    keep = reliable(table, min_oracle=0.5)
    assert keep[:10].all() and not keep[10:].any()
    assert reliable(table, oracle_percentile=60).sum() == 8
    assert corr.shape == (20, 20) and np.allclose(np.diag(corr)[:19], 1)


def test_helpers_and_bad_input():
    assert response_entropy(np.ones((16, 1)))[0] == pytest.approx(np.log(16))
    assert response_entropy(np.eye(16)[:, :1])[0] == pytest.approx(0)
    c = correlation_matrix(np.column_stack([np.arange(5.0), np.ones(5)]))
    assert c[0, 0] == pytest.approx(1) and np.isnan(c[1, 1])
    order, used = sort_neurons(np.random.default_rng(0).normal(size=(6, 30)), "pc1")
    assert sorted(order) == list(range(6)) and used == "pc1"
    with pytest.raises(ValueError, match="sort method"):
        sort_neurons(np.zeros((3, 3)), "tsne")
    with pytest.raises(ValueError, match="repeats"):
        reliability_table(np.zeros((1, 5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        reliability_table(np.full((2, 5, 3), np.nan))
    table, _, _ = reliability_table(_trials(1), sort="pc1")
    with pytest.raises(ValueError, match="percentile"):
        reliable(table, oracle_percentile=120)
