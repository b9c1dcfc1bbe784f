"""Polynomial library and finite differences against pysindy's."""

from __future__ import annotations

import numpy as np
import pytest

from engine.sindy.derivatives import differentiate, finite_difference, savgol_derivative, smoothed_finite_difference
from engine.sindy.library import PolynomialLibrary, n_poly_features

ps = pytest.importorskip("pysindy")

CONFIGS = [
    dict(degree=3),
    dict(degree=2, include_bias=False),
    dict(degree=3, include_interaction=False),
    dict(degree=3, interaction_only=True),
    dict(degree=1),
    dict(degree=0),
]


@pytest.mark.parametrize("kw", CONFIGS)
def test_columns_and_names_equal_pysindy(kw):
    x = np.random.default_rng(0).standard_normal((300, 4))
    ref = ps.PolynomialLibrary(**kw)
    A = np.asarray(ref.fit_transform(x))
    lib = PolynomialLibrary(**kw)
    B = lib.fit_transform(x)
    np.testing.assert_array_equal(A, B)  # bit for bit
    assert lib.get_feature_names() == ref.get_feature_names()
    names = ["h0", "h1", "u0", "u1"]
    assert lib.get_feature_names(names) == ref.get_feature_names(names)
    np.testing.assert_array_equal(lib.powers_, ref.powers_)
    assert lib.n_output_features_ == n_poly_features(4, **kw)


def test_retina_case_has_220_terms_named_like_the_seed():
    lib = PolynomialLibrary(3).fit(9)
    names = lib.get_feature_names([f"h{i}" for i in range(9)])
    assert len(names) == 220
    assert names[:3] == ["1", "h0", "h1"]
    assert "h0 h1" in names and "h0^2 h1" in names and names[-1] == "h8^3"


def test_control_inputs_are_appended_variables():
    # SINDYc: library over [x, u], names x0.., u0..
    rng = np.random.default_rng(1)
    x, u = rng.standard_normal((50, 2)), rng.standard_normal((50, 1))
    model = ps.SINDy(feature_library=ps.PolynomialLibrary(2))
    model.fit(x, t=0.1, u=u)
    lib = PolynomialLibrary(2).fit(3)
    assert lib.get_feature_names(["x0", "x1", "u0"]) == model.get_feature_names()


def test_torch_tensors_give_the_same_matrix():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal((100, 3))
    lib = PolynomialLibrary(3).fit(3)
    out = lib.transform(torch.from_numpy(x))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_array_equal(out.numpy(), lib.transform(x))
    batched = lib.transform(torch.from_numpy(x).reshape(10, 10, 3))
    assert batched.shape == (10, 10, lib.n_output_features_)


def test_list_input_and_shape_checks():
    lib = PolynomialLibrary(2).fit(2)
    out = lib.transform([np.ones((3, 2)), np.zeros((4, 2))])
    assert [o.shape for o in out] == [(3, 6), (4, 6)]
    with pytest.raises(ValueError):
        lib.transform(np.ones((3, 3)))
    with pytest.raises(ValueError):
        PolynomialLibrary(-1).fit(2)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_finite_difference_equals_pysindy(order):
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.standard_normal((200, 3)), axis=0)
    t_nonuniform = np.sort(rng.uniform(0, 10, 200))
    for t in (0.01, t_nonuniform, np.arange(200) * 0.01):
        ref = ps.FiniteDifference(order=order, axis=-2)._differentiate(x, t)
        np.testing.assert_array_equal(finite_difference(x, t, order=order), ref)


def test_smoothed_finite_difference_equals_pysindy():
    x = np.cumsum(np.random.default_rng(4).standard_normal((200, 2)), axis=0)
    sfd = ps.SmoothedFiniteDifference(axis=-2)
    ref = sfd._differentiate(x, 0.01)
    xs, xd = smoothed_finite_difference(x, 0.01)
    np.testing.assert_array_equal(xd, ref)
    np.testing.assert_array_equal(xs, sfd.smoothed_x_)


def test_savgol_derivative_is_accurate():
    t = np.arange(0, 6, 0.01)
    d = savgol_derivative(np.sin(t)[:, None], 0.01)
    assert np.abs(d[:, 0] - np.cos(t)).max() < 1e-4


def test_differentiate_per_trajectory_and_validation():
    xs = [np.sin(np.arange(50) * 0.1)[:, None], np.cos(np.arange(30) * 0.1)[:, None]]
    _, d = differentiate(xs, 0.1)
    assert [a.shape for a in d] == [(50, 1), (30, 1)]
    _, d2 = differentiate(xs, [np.arange(50) * 0.1, np.arange(30) * 0.1])
    np.testing.assert_allclose(d[0], d2[0], rtol=1e-9)
    with pytest.raises(ValueError):
        finite_difference(np.ones((5, 1)), -0.1)
    with pytest.raises(ValueError):
        finite_difference(np.ones((5, 1)), np.array([0, 1, 1, 2, 3.0]))
    with pytest.raises(ValueError):
        differentiate(xs, 0.1, method="nope")
