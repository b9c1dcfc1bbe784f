"""EquationSet: the one typed form of a stored equation set (validated, migrated)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.sindy.equation_set import EquationSet, EquationSetError, linear_map_payload, read_rows
from engine.sindy.export import model_from_dict, model_to_dict
from engine.sindy.model import Sindy


def _model() -> Sindy:
    # x0' = -x0 + 2 x1,  x1' = -3 x0   (degree 1 with bias: 1, x0, x1)
    return Sindy.from_coefficients([[0.0, -1.0, 2.0], [0.0, -3.0, 0.0]], degree=1, feature_names=["x0", "x1"])


def test_round_trip_keeps_the_model():
    eqs = EquationSet.from_model(_model(), extra={"val_error": 0.25})
    payload = json.loads(json.dumps(eqs.to_payload()))  # what the session stores
    back = EquationSet.from_payload(payload)
    np.testing.assert_array_equal(back.coef, eqs.coef)
    assert back.n_terms == 3 and back.extra == {"val_error": 0.25}
    x = np.array([[0.5, -1.0]])
    np.testing.assert_allclose(back.model().predict(x), [[-0.5 - 2.0, -1.5]])
    # the canonical payload is still what model_from_dict reads
    assert model_from_dict(payload).feature_names_ == ["1", "x0", "x1"]


def test_old_v1_payload_reads_unchanged():
    payload = model_to_dict(_model())  # what sessions stored before set_version existed
    eqs = EquationSet.from_payload(payload)
    assert eqs.state_names == ("x0", "x1") and eqs.feature_names == ("1", "x0", "x1")


def test_lds_shape_is_migrated_to_a_map():
    # the lds step stored y[t+1] - y[t] = y[t] @ coef + c with coef as (source, target)
    coef = np.array([[-0.1, 0.2], [0.0, -0.3]])
    old = {"system": "lds", "backend": "pysindy", "coef": coef.tolist(), "intercept": [0.01, 0.0],
           "truth": coef.tolist(), "features": ["y0", "y1"], "threshold": 0.008}
    eqs = EquationSet.from_payload(old)
    assert eqs.discrete_time and eqs.feature_names == ("1", "y0", "y1")
    # target y1 gets 0.2 * y0 (source 0 -> target 1) and -0.3 * y1
    np.testing.assert_allclose(eqs.coef, [[0.01, -0.1, 0.0], [0.0, 0.2, -0.3]])
    np.testing.assert_allclose(eqs.extra["truth_coef"], [[0, -0.1, 0.0], [0, 0.2, -0.3]])
    # the rebuilt model predicts the increment of the map: y[k+1] - y[k] = Θ(y[k]) ξ
    y = np.array([[1.0, 2.0]])
    step = eqs.model().predict(y)
    np.testing.assert_allclose(step, y @ coef + [0.01, 0.0])
    assert linear_map_payload(["y0", "y1"], coef, [0.01, 0.0])["coef"] == eqs.to_payload()["coef"]


@pytest.mark.parametrize("bad, words", [
    ({"format": "engine.sindy", "state_names": ["x"], "feature_names": ["1", "x"], "coef": [[0, 1]],
      "threshold": "0.1"}, "threshold"),
    ({"format": "engine.sindy", "state_names": ["x"], "feature_names": ["1", "x"], "coef": [[0]]}, "coef"),
    ({"format": "engine.sindy", "state_names": ["x"], "feature_names": ["1", "x"], "coef": [[0, "a"]]}, "coef"),
    ({"format": "other", "coef": []}, "format"),
    ({"format": "engine.sindy", "state_names": ["x"], "feature_names": ["1", "x"], "coef": [[0, 1]],
      "sweep": {"threshold": [0.1, 0.2], "n_terms": [2], "knee": 0}}, "sweep.n_terms"),
    ({"format": "engine.sindy", "state_names": ["x"], "feature_names": ["1", "x"], "coef": [[0, 1]],
      "sweep": {"threshold": [0.1], "n_terms": [2], "knee": 5}}, "sweep.knee"),
    ({"set_version": 99, "feature_names": [], "coef": []}, "newer"),
    ([1, 2], "mapping"),
])
def test_bad_payloads_give_one_line(bad, words):
    with pytest.raises(EquationSetError, match=words) as info:
        EquationSet.from_payload(bad)
    assert "\n" not in str(info.value)


def test_read_rows_skips_bad_rows_with_a_line():
    rows = [{"id": 1, "name": "good", "data": model_to_dict(_model())},
            {"id": 2, "name": "hand-edited", "data": {"feature_names": ["1"], "coef": [[1.0]], "threshold": "x"}}]
    good, bad = read_rows(rows)
    assert [r["name"] for r, _ in good] == ["good"]
    assert len(bad) == 1 and "hand-edited" in bad[0] and "threshold" in bad[0]


# -- the consumers: no payload crashes the Equations pane or the report ------------------
_LDS_OLD = {"system": "lds latents", "backend": "pysindy", "coef": [[-0.1, 0.0], [0.0, -0.2]],
            "intercept": [0.0, 0.0], "truth": [[-0.1, 0.0], [0.0, -0.2]], "features": ["y0", "y1"],
            "threshold": 0.008}
_HAND_EDITED = {"format": "engine.sindy", "state_names": ["x"], "feature_names": ["1", "x"],
                "coef": [[0.0, 1.0]], "threshold": "0.1"}


async def test_equations_pane_reads_an_lds_set_and_skips_a_bad_row(session, monkeypatch):
    import workbench.device_probe as probe
    from tests.helpers.tui import settle
    from workbench.app import WorkbenchApp

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))
    session.save_equations("lds_latents", _LDS_OLD)
    session.save_equations("broken", _HAND_EDITED)
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await settle(pilot, 0.5)
        pane = app.query_one("#equations-pane")
        assert [s["name"] for s in pane.sets] == ["lds_latents"]
        assert np.asarray(pane.coef_of(pane.current())).shape == (2, 3)
        assert "y1" in app.export_screenshot()
        assert any("broken" in n.message for n in app._notifications)


def test_report_after_metrics_without_a_step_and_odd_equation_rows(session, tmp_path):
    from engine.session_report import write_report

    job = session.create_job("retina", ["evaluate"], {}, job_id="r-0001")
    session.add_events(job, [("metric", {"name": "mae", "value": 0.12, "step": None}),
                             ("metric", {"name": "mae", "value": 0.11, "step": None})])
    session.finish_job(job, "finished")
    session.save_equations("lds_latents", _LDS_OLD, job_id=job)
    session.save_equations("broken", _HAND_EDITED, job_id=job)
    out = tmp_path / "r.md"
    write_report(session, out)
    text = out.read_text()
    assert "### lds_latents" in text and "y1" in text
    assert "'broken'" in text and "skipped" in text


# -- maps, constants, normalisation (set_version 3) ----------------------------------------
def _map_model(dt=0.5):
    x = np.zeros((400, 3))
    u = np.random.default_rng(0).normal(size=(400, 1))
    x[:, 2] = 0.7 + 1e-6 * np.random.default_rng(1).normal(size=400)  # a saturated unit
    for k in range(399):
        x[k + 1, :2] = np.array([[0.5, 0.2], [-0.3, 0.6]]) @ x[k, :2] + np.array([1.0, 0.5]) * u[k]
    return Sindy(degree=1, threshold=0.05, discrete_time=True, constant_tol=1e-3).fit(x, t=dt, u=u)


def test_a_map_is_written_as_a_map_everywhere():
    from engine.sindy.export import to_latex, to_sympy

    m = _map_model(dt=0.5)
    eqs = EquationSet.from_model(m)
    back = EquationSet.from_payload(json.loads(json.dumps(eqs.to_payload())))
    assert back.discrete_time and back.dt == 0.5 and back.constants == {"x2": pytest.approx(0.7, abs=1e-5)}
    # what one step adds: (A - I) x + B u, the stored increments per unit time times dt
    want = ["x0[k+1] = x0[k] - 0.5 x0 + 0.2 x1 + 1 u0", "x1[k+1] = x1[k] - 0.3 x0 - 0.4 x1 + 0.5 u0",
            "x2 = 0.7 (constant)"]
    assert back.equations() == want == m.equations() == back.model().equations()
    assert back.lhs("x0") == "x0[k+1] = x0[k] + " and back.display_scale == 0.5
    tex = to_latex(back.model())
    assert r"x_{0}[k+1] &= x_{0}[k] - 0.5 x_{0}" in tex and r"x_{2} &= 0.7" in tex and r"\dot" not in tex
    sy = to_sympy(back.model())
    assert "Derivative" not in str(sy)
    import sympy as sp

    k = sp.Symbol("k", integer=True)
    x0, x1, u0 = (sp.Function(n) for n in ("x0", "x1", "u0"))
    assert sy[0].lhs == x0(k + 1)
    point = {x0(k): 0.3, x1(k): -1.1, u0(k): 2.0}  # the map itself: A x + B u
    assert float(sy[0].rhs.subs(point)) == pytest.approx(0.5 * 0.3 + 0.2 * -1.1 + 2.0, abs=1e-9)
    assert sy[2] == sp.Eq(sp.Function("x2")(k), sp.Float(m.constants_["x2"]))


def test_older_sets_stay_readable_and_an_ode_stays_an_ode():
    old = model_to_dict(_map_model())
    for k in ("dt", "constants", "constant_tol", "normalize_columns"):
        old.pop(k)
    old["dt"] = 0.5  # v2 retina sets kept the step among the extras
    eqs = EquationSet.from_payload(old)
    assert eqs.dt == 0.5 and eqs.constants == {} and eqs.equations()[0].startswith("x0[k+1] = x0[k] ")
    ode = EquationSet.from_model(_model())
    assert ode.equations()[0] == "(x0)' = -1 x0 + 2 x1" and ode.lhs("x1") == "(x1)' = "
    with pytest.raises(EquationSetError, match="constants"):
        EquationSet.from_payload({**eqs.to_payload(), "constants": {"nope": 1.0}})


def test_a_map_of_unknown_step_says_so():
    p = model_to_dict(_map_model())
    p.pop("dt")
    assert EquationSet.from_payload(p).equations()[0].startswith("(x0[k+1] - x0[k])/Δt = ")


def test_the_equations_pane_writes_maps_and_constants():
    from workbench.panes.equation_parts import render_equations

    text = render_equations(EquationSet.from_model(_map_model()).to_payload()).plain.splitlines()
    assert text[0].startswith("x0[k+1] = x0[k] + 1 u0 - 0.5 x0 + 0.2 x1")
    assert text[2].startswith("x2 = 0.7 (constant)") and "'" not in "".join(text)


def test_the_equations_pane_says_what_the_control_inputs_are_and_escapes_it():
    from workbench.panes.equation_parts import render_equations

    payload = EquationSet.from_model(_map_model(), extra={"control": "1 drive: the direction\x1b]0;pwn\x07 that moves x0"}).to_payload()
    last = render_equations(payload).plain.splitlines()[-1]
    assert last.startswith("u: 1 drive: the direction\\x1b]0;pwn\\x07 that moves x0")
    assert "\x1b" not in render_equations(payload).plain
    # a model without control inputs shows no such line
    assert "u: " not in render_equations(EquationSet.from_model(_model(), extra={"control": "x"}).to_payload()).plain
