"""Results pane, seeds view: mean ± spread per figure over a sweep's seeds, redrawn as they end."""

from __future__ import annotations

import pytest

from engine import analyses, seed_sweep
from engine.jobs import runner
from tests.helpers.screen import screen_text
from tests.helpers.tui import settle
from workbench.app import WorkbenchApp
from workbench.panes.seeds_view import PREFIX, seeds_text


@pytest.fixture
def pipeline_session(session, monkeypatch):
    import workbench.device_probe as probe

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))
    monkeypatch.setitem(analyses._MODULES, "pipeline", "tests.seeded_pipeline")
    return session


def _run_next(session, sweep):
    _, job_id = seed_sweep.submit_next(session, sweep)
    return runner.run_job(session, job_id)


def test_seeds_text():
    assert [seeds_text(s) for s in ([0, 1, 2], [3, 7], [0, 2, 3], list(range(20, 30)))] == \
        ["0-2", "3,7", "0,2,3", "20-29"]


async def test_seeds_view_at_80x24_mean_spread_failed_and_updates(pipeline_session):
    session = pipeline_session
    sweep = seed_sweep.create(session, "pipeline", [0, 1, 2, 3], {"fail_at": 1, "nan_at": 3})
    _run_next(session, sweep)  # seed 0
    assert _run_next(session, sweep).state == "failed"  # seed 1
    session.set_ui(**{"results.table": PREFIX + sweep.id, "pane": "results"})
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.8)
        pane = app.query_one("#results-pane")
        view = app.query_one("#seeds-view")
        assert pane.has_class("seeds") and view.display and view.region.height > 5
        text = screen_text(app)
        # the failed seed is counted and named, never dropped; two seeds are still to come
        assert "1 finished · 1 failed · 2 to come" in text and "seed 1: ValueError" in text
        assert "fit · mae" in text and "n" in text

        _run_next(session, sweep)  # seed 2 ends while the view is open
        _run_next(session, sweep)  # seed 3 diverges: its NaN is counted apart
        app.request_poll()
        await settle(pilot, 1.0)
        rows = {str(r[0]).strip(): [str(c) for c in r[1:]] for r in
                (view.query_one("#seeds-table").get_row_at(i) for i in range(view.query_one("#seeds-table").row_count))}
        assert "3 finished · 1 failed" in screen_text(app)
        # fit mae: seeds 0 and 2 (0.1, 0.3) finite, seed 3 NaN
        assert rows["fit · mae"] == ["0.2 ± 0.14", "2 +1 NaN", "0.1–0.3"]
        # corr 0.2*seed over seeds 0, 2, 3: mean 0.3333, std 0.3055
        assert rows["fit · corr"] == ["0.3333 ± 0.31", "3", "0–0.6"]
        # the baseline after the model, named and set apart
        names = list(rows)
        assert names.index("zeros · mae (baseline)") > names.index("fit · corr")
        assert rows["zeros · mae (baseline)"] == ["0.5 ± 0", "3", "0.5–0.5"]
        # at 80 columns every column is on screen, n included
        assert "n  " in screen_text(app).split("figure", 1)[1].splitlines()[0]
        assert all(len(line) <= 80 for line in screen_text(app).splitlines())
        assert "pipeline scores" in rows and "result" in rows


def test_read_request_names_the_bad_field(pipeline_session):
    from engine.analyses.base import ParamError
    from workbench.screens.seeds import SeedsRequest, read_request

    assert read_request(" pipeline ", "0-2", "") == SeedsRequest("pipeline", [0, 1, 2], 1)
    for args, match in ((("fake", "0", "1"), "no seed parameter"), (("pipeline", "a", "1"), "--seeds"),
                        (("pipeline", "0", "0"), "at once"), (("nope", "0", "1"), "unknown analysis")):
        with pytest.raises(ParamError, match=match):
            read_request(*args)


async def test_palette_form_starts_a_sweep_and_shows_it(pipeline_session, monkeypatch):
    from workbench.commands import ask_seeds

    started = []
    monkeypatch.setattr(seed_sweep, "start_detached", lambda s, sweep: started.append(sweep) or 1)
    app = WorkbenchApp(session=pipeline_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.5)
        ask_seeds(app)
        await pilot.pause()
        form = app.screen
        form.query_one("#seeds-analysis").value = "pipeline"
        form.query_one("#seeds-list").value = "1,x"
        await pilot.press("enter")
        assert app.screen is form and "--seeds" in str(form.query_one("#seeds-error").render())
        form.query_one("#seeds-list").value = "4-6"
        await pilot.press("enter")
        await settle(pilot, 0.5)
        assert app.screen is not form and [s.seeds for s in started] == [[4, 5, 6]]
        assert seed_sweep.sweeps(pipeline_session)[-1].id == started[0].id
        assert app.query_one("#panes").active == "results"
        assert "seeds 4-6: 0 finished · 0 failed · 3 to come" in screen_text(app)
