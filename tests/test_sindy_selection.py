"""Selection per equation by teacher-forced held-out rollouts in absolute units."""

from __future__ import annotations

import numpy as np
import pytest

from engine.sindy import Sindy, examples, threshold_sweep
from engine.sindy.selection import equation_errors


def _map(T=3000, seed=0, dead=False):
    ex = examples.linear_map(T, seed)
    x = ex.x[0]
    if dead:  # a unit that barely moves (a saturated CfC unit): noise of std 1e-3
        x = np.c_[x, 0.99 + 1e-3 * np.random.default_rng(seed + 1).normal(size=T)]
    return x, ex.u


def test_each_equation_is_chosen_on_its_own_and_recovers_the_map():
    x, u = _map()
    sw = threshold_sweep(x, t=1.0, u=u, model=Sindy(degree=2, discrete_time=True), thresholds=24,
                         select="per_equation")
    f = sw.feature_names
    assert {(i, f[j]) for i, j in zip(*np.nonzero(sw.selected))} == {
        (0, "x0"), (0, "x1"), (0, "u0"), (1, "x0"), (1, "x1"), (1, "u0")}
    assert np.all(sw.equation_err[sw.rows, [0, 1]] < 1e-8)
    m = sw.model("selected")
    assert m.equations()[0] == "x0[k+1] = x0[k] - 0.5 x0 + 0.2 x1 + 1 u0"


def test_errors_are_absolute_and_a_diverging_equation_is_never_chosen():
    x, u = _map()
    ro = {"x0": x[:4], "truth": np.stack([x[i:i + 11] for i in (100, 200)]),
          "grid": np.tile(np.arange(11.0), (2, 1)), "u": np.stack([u[i:i + 11] for i in (100, 200)])}
    from engine.sindy.library import PolynomialLibrary

    lib = PolynomialLibrary(degree=1).fit(3)  # 1, x0, x1, u0
    exact = np.array([[0, -0.5, 0.2, 1.0], [0, -0.3, -0.4, 0.5]])
    off = exact + np.array([[0.01, 0, 0, 0], [0, 0, 0, 0]])  # x0 drifts by 0.01 a step
    blow = exact + np.array([[0, 0, 0, 0], [0, 0, 3.0, 0]])  # x1 grows 4x a step
    err, div = equation_errors(np.stack([exact, off, blow]), lib, ro, method="euler", bound=1e3)
    assert err[0, 0] < 1e-12 and err[0, 1] < 1e-12
    # teacher-forced: x0's offset is x0's error alone, in x0's units: e[k+1] = 0.5 e[k] + 0.01
    e = 0.02 * (1 - 0.5 ** np.arange(1, 11))
    assert err[1, 0] == pytest.approx(np.sqrt(np.mean(e**2)), rel=1e-9)
    assert err[1, 1] < 1e-12
    assert div[2, 1] and np.isinf(err[2, 1]) and not div[2, 0]


def test_a_dead_unit_neither_dominates_nor_is_fitted():
    x, u = _map(dead=True)
    sw = threshold_sweep(x, t=1.0, u=u, model=Sindy(degree=2, discrete_time=True, constant_tol=1e-2),
                         thresholds=24, select="per_equation")
    assert set(sw.constants) == {"x2"} and not sw.selected[2].any()
    f = sw.feature_names
    assert {(i, f[j]) for i, j in zip(*np.nonzero(sw.selected))} == {
        (0, "x0"), (0, "x1"), (0, "u0"), (1, "x0"), (1, "x1"), (1, "u0")}
    assert sw.model("selected").equations()[2] == "x2 = 0.99 (constant)"


def test_stabilise_moves_equations_to_sparser_supports_until_the_whole_model_holds():
    from engine.sindy.selection import stabilise

    # 3 rows per equation with 3, 2, 1 terms; the whole model diverges unless equation 1
    # uses at most 1 term (a fake score standing for the held-out rollouts)
    coefs = np.zeros((3, 2, 4))
    for r, n in enumerate((3, 2, 1)):
        coefs[r, :, :n] = 1.0

    def score(stack):
        n1 = np.count_nonzero(stack[:, 1], axis=1)
        n0 = np.count_nonzero(stack[:, 0], axis=1)
        return -n0 - 0.1 * n1 + 10.0, (n1 > 1).astype(float)  # fuller is better, unless diverged

    rows, moves = stabilise(coefs, np.array([0, 0]), score)
    assert list(rows) == [0, 2] and moves == 2


def test_a_cubic_ode_selected_per_equation_stays_bounded_and_is_the_truth():
    from engine.analyses.demo.data import cubic_oscillator, rk4

    rng = np.random.default_rng(0)
    ang = rng.uniform(0, 2 * np.pi, 12)
    z0 = np.stack([np.cos(ang), np.sin(ang)], 1) * rng.uniform(0.6, 1.4, (12, 1))
    z = rk4(cubic_oscillator, z0, 0.01, 400) + 1e-4 * rng.normal(size=(12, 400, 2))
    sw = threshold_sweep(list(z), t=0.01, model=Sindy(degree=3, alpha=0.0, normalize_columns=True),
                         thresholds=32, select="per_equation", rollout_steps=100)
    m = sw.model("selected")
    f = m.feature_names_
    assert {(i, f[j]) for i, j in zip(*np.nonzero(m.coef_))} == {(0, "x0^3"), (0, "x1^3"), (1, "x0^3"), (1, "x1^3")}
    sim = m.simulate(z[-1, 0], np.arange(2000) * 0.01)  # 5x longer than any training trajectory
    assert not sim.diverged and np.abs(np.asarray(sim.x)).max() < 2.0


def test_stability_runs_cover_the_held_out_data_from_several_starts():
    """A chosen model must stay bounded over the longest held-out run and over runs half as
    long from 8 starts spread across the held-out blocks (one start is not enough)."""
    from engine.sindy.holdout import stability_rollouts

    xs = [np.arange(300.0)[:, None] * [1.0, -1.0], np.arange(500.0)[:, None] * [2.0, 0.5]]
    ts = [0.01, 0.01]
    runs = stability_rollouts((xs, ts, None), stability_steps=2000, rollout_steps=20)
    assert [r["x0"].shape for r in runs] == [(1, 2), (8, 2)]
    assert runs[0]["truth"].shape[1] == 500  # the longest block, from its start
    assert runs[1]["truth"].shape[1] == 250  # half of it
    firsts = {tuple(x) for x in runs[1]["x0"]}
    assert any(x[1] > 0 for x in firsts) and any(x[1] < 0 for x in firsts)  # starts in both blocks ...
    assert len(firsts) == 8  # ... and all 8 distinct
    # a short cap: both runs at the cap; one shorter than the teacher-forced rollouts: none
    assert [r["truth"].shape[1] for r in stability_rollouts((xs, ts, None), 100, 20)] == [101, 101]
    assert stability_rollouts((xs, ts, None), 15, 20) == []
