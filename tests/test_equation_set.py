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
    from tests.tui_fixtures import workers_done
    from workbench.app import WorkbenchApp

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))
    session.save_equations("lds_latents", _LDS_OLD)
    session.save_equations("broken", _HAND_EDITED)
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause(0.5)
        await workers_done(app)
        await pilot.pause()
        pane = app.query_one("#equations-pane")
        assert [s["name"] for s in pane.sets] == ["lds_latents"]
        assert np.asarray(pane.coef_of(pane.current())).shape == (2, 3)
        assert "y1" in app.export_screenshot()
        assert any("broken" in n.message for n in app._notifications)


def test_report_after_metrics_without_a_step_and_odd_equation_rows(session, tmp_path):
    from engine.report import write_report

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
