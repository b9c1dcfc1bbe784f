"""Column normalisation (pysindy's ``normalize_columns``) and constant states."""

from __future__ import annotations

import numpy as np
import pytest

from engine.sindy import Sindy, stlsq


def _badly_scaled(seed=0, n=600):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) * [1.0, 30.0, 0.02]  # columns over four decades
    y = np.column_stack([2 * x[:, 0] - 0.01 * x[:, 1] * x[:, 2], 0.3 + 0.001 * x[:, 1] ** 2, 40 * x[:, 2]])
    return x, y + 0.001 * rng.normal(size=y.shape)


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_same_support_and_coefficients_as_pysindy(alpha):
    ps = pytest.importorskip("pysindy")
    x, y = _badly_scaled()
    theta = ps.PolynomialLibrary(degree=2).fit_transform(x)
    thresholds = [0.05, 0.3, 1.0]
    ours = stlsq(theta, y, thresholds, alpha, normalize_columns=True)
    for p, thr in enumerate(thresholds):
        ref = ps.STLSQ(threshold=thr, alpha=alpha, normalize_columns=True).fit(theta, y).coef_
        np.testing.assert_array_equal(ours[p] != 0, ref != 0)
        np.testing.assert_allclose(ours[p], ref, rtol=1e-8, atol=1e-12)


def test_the_threshold_acts_on_unit_norm_columns():
    # in raw units a coefficient's size says as much about its column's scale as about the
    # term: 0.001 x1^2 (x1 ~ 30) is cut and spurious x2^2 terms (x2 ~ 0.02) are kept;
    # normalised, each term is judged by what it contributes: the true support, original units
    x, y = _badly_scaled()
    raw = Sindy(degree=2, threshold=0.05, alpha=0.0).fit(x, x_dot=y)
    norm = Sindy(degree=2, threshold=0.05, alpha=0.0, normalize_columns=True).fit(x, x_dot=y)
    f = norm.feature_names_
    truth = {(0, "x0"): 2.0, (0, "x1 x2"): -0.01, (1, "1"): 0.3, (1, "x1^2"): 0.001, (2, "x2"): 40.0}
    assert {(i, f[j]) for i, j in zip(*np.nonzero(norm.coef_))} == set(truth)
    for (i, term), c in truth.items():
        assert norm.coef_[i, f.index(term)] == pytest.approx(c, rel=0.02)
    assert {(i, f[j]) for i, j in zip(*np.nonzero(raw.coef_))} != set(truth)
    assert norm.feature_norms_ is not None and raw.feature_norms_ is None


def test_a_state_that_does_not_move_is_a_constant_not_fitted():
    rng = np.random.default_rng(3)
    t = np.arange(3000) * 0.01
    x = np.column_stack([np.sin(t), np.cos(t), 0.99 + 1e-4 * rng.normal(size=len(t))])  # x2: saturated
    m = Sindy(degree=2, threshold=0.05, constant_tol=1e-3).fit(x, t=0.01)
    assert m.constants_ == {"x2": pytest.approx(0.99, abs=1e-4)}
    assert not m.coef_[2].any()  # not fitted
    uses_x2 = m.library_.powers_[:, 2] > 0
    assert not m.coef_[:, uses_x2].any()  # and no other equation leans on it
    assert m.equations()[2] == "x2 = 0.99 (constant)"
    np.testing.assert_allclose(m.coef_[0, m.feature_names_.index("x1")], 1.0, rtol=1e-3)
