"""Results pane: baselines and the ceiling set apart, the best model marked, NaN read right."""

from __future__ import annotations

import pandas as pd

from tests.helpers.tui import settle
from workbench.app import WorkbenchApp
from workbench.panes.results import prepare_table


def _retina_like() -> pd.DataFrame:
    # the shape engine/analyses/retina_eval.score writes
    return pd.DataFrame({
        "role": ["model", "model", "baseline", "ceiling"],
        "mae:c0": [0.09, 0.10, 0.07, 0.06],
        "mae": [0.085, 0.11, 0.066, 0.058],
        "corr": [0.47, 0.31, float("nan"), 0.72],
        "bits_per_spike": [1.08, 0.54, -24.5, 2.09],
        "diverged": [False, False, False, False],
        "worse_than_zeros": [True, True, False, False],
        "best": [True, False, False, False],
        "rank_by": ["bits_per_spike"] * 4,
    }, index=["CfC", "SINDy", "zeros", "noise-free rate"])


def test_prepare_table_orders_columns_and_takes_out_the_marks():
    entry = prepare_table({"name": "retina MAE", "job_id": None, "frame": _retina_like()})
    # what a row is first, then the ranking metric, the other scores, then per-cell columns
    assert list(entry["frame"].columns) == ["role", "bits_per_spike", "mae", "corr", "mae:c0"]
    marks = entry["marks"]
    assert marks.best == "CfC" and marks.rank_by == "bits_per_spike"
    assert marks.worse == {"CfC", "SINDy"} and marks.diverged == set()


async def test_best_is_a_model_never_the_ceiling_and_nan_is_not_diverged(session, monkeypatch):
    import workbench.device_probe as probe

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))
    session.save_table("retina MAE", _retina_like())
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("4")
        await settle(pilot, 0.5)
        pane = app.query_one("#results-pane")
        rows = {r[0].plain: [c.plain for c in r[1:]] for r in pane._cells(pane.current())}
        assert set(rows) == {"CfC ★ ✗", "SINDy ✗", "zeros", "noise-free rate"}
        cfc, ceiling, zeros = rows["CfC ★ ✗"], rows["noise-free rate"], rows["zeros"]
        # bits/spike: the ceiling's 2.09 is higher, but the best mark goes to the best model
        assert cfc[1] == "1.08*" and ceiling[1] == "2.09"
        # MAE: lower is better among the models; the zeros baseline's lower MAE is not "best"
        assert cfc[2] == "0.085*" and zeros[2] == "0.066"
        assert zeros[3] == "n/a"  # a constant prediction has no correlation; it did not diverge
        title_widget = app.query_one("#result-title")
        assert title_widget.size.height >= 2  # the ranking line is drawn, not cut off
        title = str(title_widget.render())
        assert "ranked by bits_per_spike" in title and "best model CfC" in title
        assert "worse than predicting zero" in title


def test_scores_come_first_and_settings_are_never_marked_best():
    from workbench.panes.results_table import is_metric

    frame = pd.DataFrame({"amount": [0.0, 0.5], "pruned": [0, 976], "test_corr": [0.52, 0.51],
                          "test_mae": [0.085, 0.083]}, index=["CfC", "CfC-p50"])
    entry = prepare_table({"name": "retina pruning", "job_id": None, "frame": frame})
    assert list(entry["frame"].columns) == ["test_corr", "test_mae", "amount", "pruned"]
    assert [is_metric(c) for c in ("amount", "pruned", "W_slope", "W_r2", "val_loss")] == [False, False, False, True, True]
