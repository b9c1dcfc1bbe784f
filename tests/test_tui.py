"""The TUI: panes, keys, state restored on reopen, read-only second window, jobs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static, TabbedContent

from engine.session import Session
from tests.tui_fixtures import make_snapshot_session
from workbench.app import WorkbenchApp


@pytest.fixture(autouse=True)
def fixed_env(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    import workbench.device_probe as probe

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))


@pytest.fixture
def snap_session(session_root):
    s = make_snapshot_session(session_root)
    yield s
    s.close()


async def _settle(pilot, seconds: float = 0.6) -> None:
    await pilot.pause(seconds)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_keys_switch_the_four_panes(snap_session):
    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=(80, 24)) as pilot:
        tabs = app.query_one("#panes", TabbedContent)
        for key, pane in zip("1234", ("datasets", "training", "equations", "results")):
            await pilot.press(key)
            assert tabs.active == pane


async def test_panes_show_the_store(snap_session):
    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await _settle(pilot)
        training = app.query_one("#training-pane")
        assert training.selected == "snap-0001"
        assert training.facts["snap-0001"]["val_corr"] == pytest.approx(0.9 * (1 - 2.718281828 ** -5), rel=1e-3)
        assert len(training.series["snap-0001"]["train_loss"][0]) == 30
        plot = app.query_one("#loss-plot", Static).render()
        assert "train_loss" in str(plot)
        await pilot.press("4")
        await _settle(pilot)
        table = app.query_one("#result-table", DataTable)
        assert table.row_count == 4
        best = table.get_cell("CfC", "mae")
        assert "green" in str(best.style) and best.plain == "0.081"
        assert table.get_cell("SINDy-pruned", "mae").plain == "diverged"
        await pilot.press("3")
        await _settle(pilot)
        text = str(app.query_one("#eq-text", Static).render())
        assert "(x0)' = " in text and "2 x1^3" in text and "[2 terms]" in text


async def test_reopening_restores_the_screen(session_root, snap_session):
    app = WorkbenchApp(session=snap_session)
    async with app.run_test() as pilot:
        await pilot.press("4")
        await _settle(pilot, 0.2)
    again = WorkbenchApp(session=Session.open("snap", session_root))
    async with again.run_test() as pilot:
        assert again.query_one("#panes", TabbedContent).active == "results"


async def test_second_window_is_read_only_and_follows(session_root, snap_session):
    first = WorkbenchApp(session=snap_session)
    async with first.run_test():
        second = WorkbenchApp(session=Session.open("snap", session_root))
        assert second.readonly
        async with second.run_test() as pilot:
            await _settle(pilot)
            assert "READ-ONLY" in str(second.query_one("#status", Static).render())
            assert second.start_job("fake", ["count"]) is None  # refuses to write
            assert Session.open("snap", session_root).jobs()[-1].id == "snap-0001"


async def test_job_started_in_the_tui_runs_and_is_followed(session):
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(100, 30)) as pilot:
        job_id = app.start_job("fake", ["count"])
        assert job_id
        deadline = time.monotonic() + 30
        while session.job(job_id).state != "finished" and time.monotonic() < deadline:
            await pilot.pause(0.2)
        await _settle(pilot, 1.2)
        pane = app.query_one("#training-pane")
        assert pane.jobs[job_id].state == "finished"
        assert len(pane.series[job_id]["loss"][0]) == 20


async def test_quitting_with_running_jobs_says_they_keep_running(session):
    job_id = session.create_job("fake", ["count"], {})
    session.update_job(job_id, state="running", pid=os.getpid(), heartbeat=time.time(),
                       host=os.uname().nodename)
    app = WorkbenchApp(session=session)
    async with app.run_test() as pilot:
        await pilot.press("q")
    assert "1 job keeps running in the background" in app.exit_message


async def test_help_lists_pane_keys(snap_session):
    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "question_mark")
        await pilot.pause()
        rows = dict(app.screen.rows())
        assert rows["c"] == "Cancel job" and rows["R"] == "Resume job" and "ctrl+p" in rows
        await pilot.press("escape")
        assert app.screen is app.screen_stack[0]


SNAPSHOTS = Path(__file__).parent / "__snapshots__" / "text"


def screen_text(app) -> str:
    """The screen as plain text lines, read from Textual's SVG export."""
    import html
    import re

    rows: dict[float, list[tuple[float, str]]] = {}
    svg = app.export_screenshot()
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    return "\n".join("".join(t for _, t in sorted(v)).replace("\xa0", " ").rstrip()
                     for _, v in sorted(rows.items())) + "\n"


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
@pytest.mark.parametrize("key", ["1", "2", "3", "4"], ids=["datasets", "training", "equations", "results"])
async def test_screen_snapshots(snap_session, size, key):
    """Each pane at 80x24 and 200x50, compared as text (colours are left to Textual);
    WORKBENCH_UPDATE_SNAPSHOTS=1 rewrites them after an intended change."""
    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=size) as pilot:
        await pilot.press(key)
        await _settle(pilot, 0.8)
        text = screen_text(app)
    path = SNAPSHOTS / f"{['datasets', 'training', 'equations', 'results'][int(key) - 1]}-{size[0]}x{size[1]}.txt"
    if os.environ.get("WORKBENCH_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing snapshot {path.name}: run with WORKBENCH_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text()
    assert len(text.splitlines()) == size[1]


async def test_resumed_job_shows_the_whole_loss_curve(session):
    first = session.create_job("fake", ["count"], {})
    session.add_events(first, [("metric", {"name": "loss", "value": 1 / i, "step": i}) for i in range(1, 6)])
    session.finish_job(first, "interrupted", error="worker vanished")
    second = session.create_job("fake", ["count"], {}, resume_of=first)
    session.add_events(second, [("metric", {"name": "loss", "value": 1 / i, "step": i}) for i in range(6, 11)])
    session.finish_job(second, "finished")
    app = WorkbenchApp(session=session)
    async with app.run_test() as pilot:
        await _settle(pilot)
        pane = app.query_one("#training-pane")
        assert pane.selected == second
        assert pane.series[second]["loss"][0] == list(range(1, 11))


async def test_results_export_writes_csv_markdown_and_latex(snap_session):
    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await _settle(pilot)
        await pilot.press("e")
        await pilot.pause()
    out = snap_session.artifacts / "exports"
    tex = next(out.glob("*.tex")).read_text()
    md = next(out.glob("*.md")).read_text()
    assert r"\begin{tabular}" in tex and r"SINDy-pruned & True & diverged" in tex
    assert "| CfC | False | 0.081 |" in md
    assert next(out.glob("*.csv")).read_text().startswith(",diverged,mae")
