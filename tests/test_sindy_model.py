"""The Sindy estimator: recovery, pysindy agreement end to end, API contract, export."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from engine.sindy import NotFittedError, Sindy, from_json, to_json, to_latex, to_sympy, to_text

from tests.helpers.sindy_systems import LORENZ_TERMS, damped_oscillator, linear3d, lorenz, tanh_network

ps = pytest.importorskip("pysindy")


def _pysindy_fit(x, t, u=None, degree=3, threshold=0.1, **fit_kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ps.SINDy(optimizer=ps.STLSQ(threshold=threshold), feature_library=ps.PolynomialLibrary(degree))
        m.fit(x, t=t, u=u, **fit_kw)
    return m


@pytest.fixture(scope="module")
def lorenz_model():
    xs, dt = lorenz()
    return Sindy(degree=3, threshold=0.5).fit(xs[0], dt)


def test_recovers_lorenz_exactly(lorenz_model):
    m = lorenz_model
    names = m.feature_names_
    expected = np.zeros_like(m.coef_)
    for (i, term), c in LORENZ_TERMS.items():
        expected[i, names.index(term)] = c
    np.testing.assert_array_equal(m.coef_ != 0, expected != 0)  # exactly the true terms
    nz = expected != 0
    assert np.all(np.abs(m.coef_[nz] - expected[nz]) <= 0.02 * np.abs(expected[nz]))


def test_end_to_end_equals_pysindy_fit():
    xs, dt = lorenz()
    ours = Sindy(degree=3, threshold=0.1).fit(xs[0], dt)
    ref = _pysindy_fit(xs[0], dt)
    np.testing.assert_array_equal(ours.coef_ != 0, ref.coefficients() != 0)
    np.testing.assert_allclose(ours.coef_, ref.coefficients(), rtol=1e-6)
    assert ours.feature_names_ == ref.get_feature_names()
    assert ours.score(xs[0], dt) == pytest.approx(ref.score(xs[0], t=dt), rel=1e-9)
    np.testing.assert_allclose(ours.predict(xs[0][:50]), ref.predict(xs[0][:50]), rtol=1e-8, atol=1e-8)


def test_multiple_trajectories_and_time_arrays_equal_pysindy():
    xs, dt, _ = linear3d()
    t = np.arange(len(xs[0])) * dt
    ours = Sindy(degree=2, threshold=0.05).fit(xs, t)
    ref = _pysindy_fit(xs, t, degree=2, threshold=0.05)
    np.testing.assert_array_equal(ours.coef_ != 0, ref.coefficients() != 0)
    np.testing.assert_allclose(ours.coef_, ref.coefficients(), rtol=1e-6)
    # a stacked (n_traj, T, n) array is the same as the list
    np.testing.assert_allclose(Sindy(degree=2, threshold=0.05).fit(np.stack(xs), dt).coef_,
                               Sindy(degree=2, threshold=0.05).fit(xs, dt).coef_, rtol=1e-12)


def test_control_input_recovers_u_coefficients_and_matches_pysindy():
    x, t, u, p = damped_oscillator()
    dt = t[1] - t[0]
    m = Sindy(degree=2, threshold=0.05).fit(x, dt, u=u, feature_names=["pos", "vel"], control_names=["drive"])
    names = m.feature_names_
    assert names[:4] == ["1", "pos", "vel", "drive"]
    c = m.coef_
    assert c[0, names.index("vel")] == pytest.approx(1.0, rel=0.02)
    assert c[1, names.index("pos")] == pytest.approx(-p["omega"] ** 2, rel=0.02)
    assert c[1, names.index("vel")] == pytest.approx(-2 * p["zeta"] * p["omega"], rel=0.02)
    assert c[1, names.index("drive")] == pytest.approx(p["gain"], rel=0.02)
    assert np.count_nonzero(c) == 4
    ref = _pysindy_fit(x, dt, u=u, degree=2, threshold=0.05)
    np.testing.assert_array_equal(c != 0, ref.coefficients() != 0)
    np.testing.assert_allclose(c, ref.coefficients(), rtol=1e-6)
    assert m.n_features_in_ == 2 and m.n_control_features_ == 1
    with pytest.raises(ValueError, match="u is required"):
        m.predict(x)
    assert m.predict(x, u=u).shape == x.shape


def test_equations_format():
    coef = np.zeros((2, 6))
    names = ["h0", "h1"]
    coef[0, :4] = [0.5341, 10.377, 0.0, -2.1]  # 1, h0, h1, h0^2
    coef[1, 5] = -1234.5678  # h1^2
    m = Sindy.from_coefficients(coef, degree=2, feature_names=names)
    eqs = m.equations()
    assert eqs[0] == "(h0)' = 0.534 + 10.4 h0 - 2.1 h0^2"
    assert eqs[1] == "(h1)' = -1235 h1^2"
    assert m.equations(precision=5)[0] == "(h0)' = 0.5341 + 10.377 h0 - 2.1 h0^2"
    assert m.equations(lhs=False)[1] == "-1235 h1^2"
    empty = Sindy.from_coefficients(np.zeros((1, 3)), degree=2)
    assert empty.equations() == ["(x0)' = 0"]


def test_equations_of_a_fit_use_the_given_state_names(lorenz_model):
    xs, dt = lorenz()
    m = Sindy(degree=2, threshold=0.5).fit(xs[0], dt, feature_names=["h0", "h1", "h2"])
    eqs = m.equations()
    assert eqs[0].startswith("(h0)' = ")
    assert re.fullmatch(r"\(h2\)' = -2\.67 h2 \+ 1 h0 h1", eqs[2]), eqs[2]
    assert m.feature_names_[:4] == ["1", "h0", "h1", "h2"]


def test_unfitted_model_raises_not_fitted():
    m = Sindy()
    for call in (lambda: m.predict(np.ones((3, 2))), m.equations, lambda: m.simulate([1.0], np.arange(3.0)),
                 lambda: m.score(np.ones((5, 1)), 0.1), lambda: m.coef_):
        with pytest.raises((NotFittedError, AttributeError)):
            call()
    with pytest.raises(NotFittedError):
        m.equations()
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises_value_error(bad):
    x = np.random.default_rng(0).standard_normal((100, 2))
    x[17, 1] = bad
    with pytest.raises(ValueError, match=r"NaN or inf.*sample 17"):
        Sindy().fit(x, 0.1)
    u = np.ones((100, 1))
    u[3, 0] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        Sindy().fit(np.ones((100, 2)), 0.1, u=u)


def test_invalid_parameters_and_shapes_raise():
    x = np.random.default_rng(0).standard_normal((50, 2))
    for kw in (dict(threshold=-1), dict(alpha=-0.1), dict(max_iter=0), dict(degree=-1)):
        with pytest.raises(ValueError):
            Sindy(**kw).fit(x, 0.1)
    with pytest.raises(ValueError):
        Sindy().fit(x, 0.1, u=np.ones((49, 1)))
    with pytest.raises(ValueError):
        Sindy().fit(x, np.arange(10.0))
    with pytest.raises(ValueError):
        Sindy().fit(x, 0.1, feature_names=["a"])
    with pytest.raises(ValueError):
        Sindy().set_params(nope=1)


def test_sklearn_style_params_and_attributes(lorenz_model):
    m = lorenz_model
    assert m.get_params()["threshold"] == 0.5
    assert m.coef_.shape == (3, 20) and m.n_features_in_ == 3 and m.n_output_features_ == 20
    assert len(m.feature_names_) == 20 and m.state_names_ == ["x0", "x1", "x2"]
    assert m.complexity == 7
    assert "threshold=0.5" in repr(m)


def test_toggle_terms_and_errors_without_refitting():
    xs, dt = lorenz()
    m = Sindy(degree=2, threshold=0.5).fit(xs[0], dt)
    base = m.training_error()
    assert base.max() < 1e-6
    # drop x1 from x0' -> the error of that equation jumps, the others do not change
    m.toggle_term(0, "x1")
    err = m.training_error()
    assert err[0] > 0.1 and np.allclose(err[1:], base[1:])
    # and back on: the refit from the Gram restores the original coefficients
    m.toggle_term("x0", "x1")
    np.testing.assert_allclose(m.training_error(), base, rtol=1e-6, atol=1e-14)
    ref = Sindy(degree=2, threshold=0.5).fit(xs[0], dt)
    np.testing.assert_allclose(m.coef_, ref.coef_, rtol=1e-8)
    # error of a hypothetical edit, without committing it
    trial = m.coef_.copy()
    trial[2] = 0
    g = m.gram_
    assert m.training_error(trial)[2] == pytest.approx(g.yy[2] / g.sst()[2], rel=1e-9)  # Σẋ² / Σ(ẋ-mean)²
    np.testing.assert_allclose(m.coef_, ref.coef_)
    # switching a term on without refit is refused
    with pytest.raises(ValueError):
        m.toggle_term(0, "x2", on=True, refit=False)


def test_refit_support_matches_direct_least_squares():
    xs, dt = tanh_network()
    m = Sindy(degree=2, threshold=0.05).fit(xs, dt)
    mask = m.support_.copy()
    mask[:, :3] = True
    c = m.refit_support(mask)
    X = np.concatenate(m.library_.transform(xs))
    from engine.sindy.derivatives import finite_difference

    Y = np.concatenate([finite_difference(x, dt) for x in xs])
    for k in range(c.shape[0]):
        idx = np.flatnonzero(mask[k])
        ref = np.linalg.lstsq(X[:, idx], Y[:, k], rcond=None)[0]
        np.testing.assert_allclose(c[k, idx], ref, rtol=1e-6, atol=1e-10)


def test_export_text_latex_json_sympy(tmp_path, lorenz_model):
    m = lorenz_model
    txt = to_text(m, tmp_path / "eq.txt")
    assert txt.splitlines() == m.equations() and (tmp_path / "eq.txt").read_text() == txt
    tex = to_latex(m)
    assert r"\dot{x}_{0} &= -10 x_{0} + 10 x_{1}" in tex and tex.startswith("\\begin{aligned}")
    doc = json.loads(to_json(m, tmp_path / "m.json"))
    assert doc["feature_names"] == m.feature_names_ and doc["threshold"] == 0.5
    assert np.array(doc["coef"]).shape == m.coef_.shape
    back = from_json(tmp_path / "m.json")
    np.testing.assert_array_equal(back.coef_, m.coef_)
    assert back.equations() == m.equations()
    np.testing.assert_allclose(back.predict(lorenz()[0][0][:5]), m.predict(lorenz()[0][0][:5]))
    sp = pytest.importorskip("sympy")
    eqs = to_sympy(m, form="dict")
    x0, x1, x2 = sp.symbols("x0 x1 x2", real=True)
    val = float(eqs[x1].subs({x0: 1.0, x1: 2.0, x2: 3.0}))
    assert val == pytest.approx(float(m.predict(np.array([[1.0, 2.0, 3.0]]))[0, 1]))
    odes = to_sympy(m)
    assert len(odes) == 3 and str(odes[0]).startswith("Eq(Derivative(x0(t), t)")


def test_smoothed_differentiation_option_runs():
    xs, dt = lorenz()
    noisy = xs[0] + 0.01 * np.random.default_rng(0).standard_normal(xs[0].shape)
    m = Sindy(degree=2, threshold=0.5, differentiation="smoothed_finite_difference").fit(noisy, dt)
    assert np.count_nonzero(m.coef_) >= 7
    m2 = Sindy(degree=2, threshold=0.5, differentiation="savgol").fit(noisy, dt)
    assert m2.score(noisy, dt) > 0.99
