"""The TUI: panes, keys, state restored on reopen, read-only second window, jobs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import DataTable, Static, TabbedContent

from engine.session import Session
from tests.helpers.snapshot_session import make_snapshot_session
from tests.helpers.screen import screen_text
from tests.helpers.tui import settle as _settle
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
        assert "green" in str(best.style) and best.plain == "0.081*"  # a mark too, for NO_COLOR
        assert table.get_cell("SINDy-pruned", "mae").plain == "diverged"
        await pilot.press("3")
        await _settle(pilot)
        text = str(app.query_one("#eq-text", Static).render())
        assert "(x0)' = " in text and "2 x1^3" in text and "[2 terms]" in text


async def test_a_job_of_single_values_shows_no_curve_rather_than_a_one_step_plot(session_root):
    s = Session.open("evalonly", session_root)
    job = s.create_job("retina", ["sindy", "evaluate"], {}, job_id="eval-0001")
    s.add_events(job, [("metric", {"name": "CfC SINDy val R2 (control)", "value": 0.797}),
                       ("metric", {"name": "CfC SINDy val R2 (no control, all terms)", "value": 0.463})])
    s.finish_job(job, "finished", result={})
    app = WorkbenchApp(session=s)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await _settle(pilot)
        text = " ".join(screen_text(app).split())  # the message wraps in the pane
        assert "no curve: this job reported single values" in text and "val R2 (control)" in text
        assert "┤" not in text and "└┬" not in text  # no axes drawn around two dots
    s.close()


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


# -- jobs screen (issue #13) --------------------------------------------------------------
FAKE_GPU = [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "mem_used": 12288.0, "mem_total": 81559.0,
             "util": 35.0, "procs": {}}]


def _jobs_session(root, monkeypatch):
    """The snapshot session plus one job in each other state; a fixed clock and a fake GPU."""
    import workbench.device_probe as probe
    import workbench.screens.jobs as jobs_screen
    from tests.helpers.snapshot_session import T0

    s = make_snapshot_session(root)
    host = os.uname().nodename
    for k, (state, error) in enumerate([("failed", "ValueError: the data has NaN in column 3"),
                                        ("interrupted", "the worker process ended without finishing"),
                                        ("cancelled", None), ("running", None)], start=2):
        jid = s.create_job("fake", ["count", "table"], {"n": 20}, job_id=f"snap-000{k}")
        s.update_job(jid, state=state, current_step="count", started=T0 + 5, device="cuda:0",
                     host=host, pid=os.getpid(), heartbeat=time.time(), error=error)
        s.add_event(jid, "progress", {"done": 300, "total": 1000, "eta_s": 95.0})
        with s._write() as c:
            c.execute("UPDATE jobs SET created=?, ended=? WHERE id=?",
                      (T0 + k, None if state == "running" else T0 + 65, jid))
    gpu = [dict(FAKE_GPU[0], procs={os.getpid(): 10240.0})]
    monkeypatch.setattr(probe, "probe", lambda: (probe.describe(gpu), gpu))
    monkeypatch.setattr(jobs_screen, "_now", lambda: T0 + 125)
    return s


@pytest.mark.parametrize("size", [(80, 24), (200, 50)], ids=["80x24", "200x50"])
async def test_jobs_screen_snapshots(session_root, monkeypatch, size):
    s = _jobs_session(session_root, monkeypatch)
    app = WorkbenchApp(session=s)
    async with app.run_test(size=size) as pilot:
        await _settle(pilot, 0.8)
        await pilot.press("j")
        await _settle(pilot, 0.8)
        # pid and host vary by machine
        text = screen_text(app).replace(f"pid {os.getpid()} · {os.uname().nodename}", "pid PID · HOST")
        table = app.screen.query_one("#jobs-table", DataTable)
        # newest first; every state carries its own symbol (readable without colour)
        assert [str(table.get_row_at(i)[0]) for i in range(5)] == [
            "● running", "■ cancelled", "! interrupted", "✗ failed", "✓ finished"]
        row = [str(c) for c in table.get_row_at(0)]
        assert "30%" in row[4] and row[5] == "1m35s" and "10.0 GiB" in row
        await pilot.press("j")  # j again: back to the panes
        assert app.screen is app.screen_stack[0]
    s.close()
    path = SNAPSHOTS / f"jobs-{size[0]}x{size[1]}.txt"
    if os.environ.get("WORKBENCH_UPDATE_SNAPSHOTS"):
        path.write_text(text)
    assert path.exists(), f"missing snapshot {path.name}: run with WORKBENCH_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text()
    assert len(text.splitlines()) == size[1]


async def test_jobs_screen_starts_cancels_resumes_and_deletes(session):
    from workbench.screens.confirm import ConfirmScreen
    from workbench.screens.jobs import JobsScreen

    session.set_params("fake", {"n": 400, "sleep": 0.05, "ckpt_every": 5})  # a 20 s job
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("j")
        assert isinstance(app.screen, JobsScreen)
        await pilot.press("s")  # start: the run palette
        await pilot.press(*"Run fake: count")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        await pilot.press("enter")  # the parameter form, with the session's values: run
        first = await _wait_state(pilot, session, None, ("running",))
        await pilot.press("j")
        await _wait_shown(pilot, app, first.id)
        await pilot.press("c")
        await _wait_state(pilot, session, first.id, ("cancelled",))
        await _wait_shown(pilot, app, first.id, "cancelled")
        await pilot.press("R")
        resumed = await _wait_state(pilot, session, None, ("running", "finished"), resume_of=first.id)
        # delete the cancelled one: asks first, n keeps it, y deletes it
        table = app.screen.query_one("#jobs-table", DataTable)
        await _wait_shown(pilot, app, resumed.id)
        table.move_cursor(row=table.get_row_index(first.id))
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert first.id in [j.id for j in session.jobs()]
        await pilot.press("d", "y")
        await pilot.pause()
        assert first.id not in [j.id for j in session.jobs()]
        runner_cancel = __import__("engine.jobs.runner", fromlist=["cancel"]).cancel
        runner_cancel(session, resumed.id)
        await _wait_state(pilot, session, resumed.id, ("cancelled", "finished"))


async def _wait_state(pilot, session, job_id, states, resume_of=None, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for j in session.jobs():
            if (job_id is None or j.id == job_id) and j.state in states and (
                    resume_of is None or j.resume_of == resume_of):
                return j
        await pilot.pause(0.2)
    raise AssertionError(f"no job reached {states} in {timeout} s: {session.jobs()}")


async def _wait_shown(pilot, app, job_id, state=None, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = app.screen.query_one("#jobs-table", DataTable)
        if job_id in table.rows and (state is None or state in str(table.get_row(job_id)[0])):
            table.move_cursor(row=table.get_row_index(job_id))
            return
        await pilot.pause(0.2)
    raise AssertionError(f"{job_id} not shown as {state or 'any state'}")


async def test_no_color_keeps_meaning_in_symbols(session_root, monkeypatch):
    from textual.filter import Monochrome, NoColor

    monkeypatch.setenv("NO_COLOR", "1")
    s = _jobs_session(session_root, monkeypatch)
    app = WorkbenchApp(session=s)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color and any(isinstance(f, (Monochrome, NoColor)) for f in app._filters)
        await _settle(pilot)
        await pilot.press("j")
        await _settle(pilot)
        text = screen_text(app)
        for mark in "●■!✗✓":
            assert mark in text
    s.close()


async def test_screen_saved_as_svg_and_text_and_report_from_the_palette(snap_session):
    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await _settle(pilot)
        await pilot.press("S")
        await pilot.pause()
        await pilot.press("ctrl+p", *"Export session report")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await _settle(pilot)
    shots = snap_session.artifacts / "exports" / "screens"
    svg, txt = next(shots.glob("results-*.svg")), next(shots.glob("results-*.txt"))
    assert svg.read_text().lstrip().startswith("<svg")
    lines = txt.read_text().splitlines()
    assert len(lines) == 24 and any("CfC" in line and "0.081" in line for line in lines)
    report = next((snap_session.artifacts / "exports").glob("report-*.md")).read_text()
    assert "| CfC | False | 0.081 |" in report and "(x0)' = -0.1 x0^3 + 2 x1^3" in report


def test_nvidia_smi_rows_give_per_process_gpu_memory():
    from workbench.device_probe import describe, parse_gpus
    from workbench.screens.jobs import job_gpu

    gpus = parse_gpus(
        [["0", "GPU-aaa", "NVIDIA H100 80GB HBM3", "20480", "81559", "87"],
         ["1", "GPU-bbb", "NVIDIA H100 80GB HBM3", "1024", "81559", "[N/A]"]],
        [["GPU-aaa", "4242", "18432"], ["GPU-bbb", "4242", "512"], ["GPU-bbb", "99", "[N/A]"]])
    assert [g["procs"] for g in gpus] == [{4242: 18432.0}, {4242: 512.0}]
    assert gpus[1]["util"] == 0.0
    assert describe(gpus) == "NVIDIA H100 80GB HBM3 20.0/80 GiB 87% (+1 GPU)"
    from engine.session import Job

    job = Job("j", "demo", ["train"], {}, "running", 4242, None, "cuda", 0.0, 0.0, None, None,
              None, None, None)
    assert job_gpu(job, gpus) == ("18.5 GiB", "87%/0%")
    job.state = "finished"
    assert job_gpu(job, gpus) == ("", "")


async def test_run_entries_open_the_parameter_form_which_validates_before_starting(snap_session):
    """The palette's run entries open a form listing the steps' parameters with their values;
    a bad value is named on the form and nothing starts; a good one starts the job with it."""
    from engine import analyses
    from workbench.screens.params import ParamsScreen

    app = WorkbenchApp(session=snap_session)
    started = []
    app.start_job = lambda analysis, steps=None, overrides=None: started.append((analysis, steps, overrides))
    async with app.run_test(size=(80, 24)) as pilot:
        app.ask_run("demo", ["train"])
        await pilot.pause()
        assert isinstance(app.screen, ParamsScreen)
        assert set(app.screen.form.specs) == set(analyses.get("demo").params(["train"]))
        assert app.screen.form.texts["lr"] == "0.003"
        box = app.screen.query_one("#param-lr")
        box.value = "fast"
        await pilot.pause()
        assert box.has_class("-invalid")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ParamsScreen) and started == []
        assert "lr: expected a number, got 'fast'" in str(app.screen.query_one("#params-status").render())
        box.value = "0.01"
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, ParamsScreen)
        (analysis, steps, values), = started
        assert (analysis, steps, values["lr"]) == ("demo", ["train"], 0.01)
        assert snap_session.params("demo")["lr"] == 0.01  # the next form opens with it
        app.ask_run("demo", ["train"])
        await pilot.pause()
        assert app.screen.form.texts["lr"] == "0.01"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ParamsScreen) and len(started) == 1


async def test_q_quits_from_help_and_jobs_and_esc_goes_back(session_root, snap_session):
    for first in ("question_mark", "j"):
        app = WorkbenchApp(session=Session.open("snap", session_root))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(first)
            await pilot.pause()
            assert app.screen is not app.screen_stack[0]
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is app.screen_stack[0]
            await pilot.press(first, "q")
            await pilot.pause()
            assert not app.is_running


async def test_training_pane_follows_a_new_job_and_tells_rows_apart(snap_session):
    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await _settle(pilot)
        training = app.query_one("#training-pane")
        assert training.selected == "snap-0001"
        new = snap_session.create_job("demo", ["train"], {}, job_id="snap-0002")
        snap_session.update_job(new, state="running", current_step="train", pid=os.getpid(),
                                heartbeat=time.time(), host=os.uname().nodename)
        # the previous step's full bar must not stand for this step's
        snap_session.add_events(new, [("progress", {"done": 2, "total": 2, "step": "generate"})])
        app.request_poll()
        await _settle(pilot)
        assert training.selected == "snap-0002"
        table = app.query_one("#job-table", DataTable)
        assert table.get_row("snap-0002")[-1] == ""  # no count yet for train
        assert table.get_row("snap-0001")[-1] == time.strftime("%H:%M", time.localtime(snap_session.job("snap-0001").ended))
        assert "train" in str(app.query_one("#job-title", Static).render())


async def test_jobs_screen_refits_its_columns_after_a_resize(session_root, monkeypatch):
    s = _jobs_session(session_root, monkeypatch)
    app = WorkbenchApp(session=s)
    async with app.run_test(size=(200, 50)) as pilot:
        await _settle(pilot, 0.5)
        await pilot.press("j")
        await _settle(pilot, 0.5)
        assert "GPU util" in app.screen_text()
        for size in ((80, 24), (100, 30), (200, 50), (80, 24)):
            await pilot.resize_terminal(*size)
            await _settle(pilot, 0.5)
            text = app.screen_text()
            header = next(line for line in text.splitlines() if line.lstrip().startswith("state"))
            table = app.screen.query_one("#jobs-table", DataTable)
            # every column header is drawn whole, inside the screen
            for col in table.columns.values():
                assert str(col.label) in header, (size, header)
            assert len(header) <= size[0]
        # resized while hidden: shown again, it fits the new width at once
        await pilot.press("escape")
        await pilot.resize_terminal(200, 50)
        await _settle(pilot, 0.3)
        await pilot.press("j")
        await _settle(pilot, 0.5)
        assert "GPU util" in app.screen_text()
    s.close()


async def test_browse_your_own_data_files_and_folders(session_root, snap_session, tmp_path):
    """--data and "Open data…" list HDF5 files of any suffix (.hdf5, .nwb) and folders of
    them beside the session's own, without copying them; bad paths get one line."""
    import h5py

    from workbench.screens.open_data import OpenDataScreen, check_data_path

    own = tmp_path / "mine"
    (own / "day1").mkdir(parents=True)
    with h5py.File(own / "day1" / "rec.hdf5", "w") as f:
        f["x"] = np.arange(5.0)
    nwb = tmp_path / "units.nwb"
    with h5py.File(nwb, "w") as f:
        f["units/spike_times"] = np.arange(3.0)
    (tmp_path / "notes.txt").write_text("no")
    assert check_data_path(str(tmp_path / "nope"))[1].endswith("no such file or folder")
    assert "not an HDF5/NWB file" in check_data_path(str(tmp_path / "notes.txt"))[1]

    app = WorkbenchApp(session=snap_session, data=[own])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1")
        await _settle(pilot)
        tree = app.query_one("#ds-tree")
        names = [str(n.label) for n in tree.root.children]
        assert names == ["rec.hdf5", "demo.h5"]
        app.action_open_data()
        await pilot.pause()
        assert isinstance(app.screen, OpenDataScreen)
        await pilot.press(*str(tmp_path / "nope"), "enter")
        await pilot.pause()
        assert "no such file" in str(app.screen.query_one("#open-error").render())
        app.screen.query_one("#open-path").value = str(nwb)
        await pilot.press("enter")
        await _settle(pilot)
        assert [str(n.label) for n in tree.root.children] == ["units.nwb", "rec.hdf5", "demo.h5"]
        await pilot.press("enter")  # the tree has the keys: the first file expands
        await _settle(pilot)
        assert any("units" in str(n.label) for n in tree.root.children[0].children)
    assert not list(snap_session.artifacts.rglob("*.nwb"))  # nothing copied
    again = WorkbenchApp(session=Session.open("snap", session_root))
    assert nwb.resolve() in again.extra_data  # kept in the session's UI state


async def test_help_shows_keys_as_the_footer_does(snap_session):
    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3", "question_mark")
        await pilot.pause()
        rows = dict(app.screen.rows())
        assert rows["+/="] == "Threshold up" and not any("equals_sign" in k for k in rows)
        await pilot.press("escape", "1", "question_mark")
        await pilot.pause()
        rows = dict(app.screen.rows())
        assert "[b]Datasets pane[/b]" in rows and "enter" in rows and rows["g"] == "go to frame"


async def test_results_show_whole_columns_sort_by_the_metric_and_export_plain_names(snap_session):
    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("4")
        await _settle(pilot)
        pane = app.query_one("#results-pane")
        table = app.query_one("#result-table", DataTable)
        shown = [str(c.label) for c in table.columns.values()]
        # what does not fit is left out whole, and the title says so; nothing is cut mid-number
        # (the stored `diverged` column is read as a mark on the row, not shown as a column)
        assert pane.hidden_columns and shown + pane.hidden_columns == ["model", "mae", "mae:0", "mae:1"]
        assert f"+{len(pane.hidden_columns)} col" in str(app.query_one("#result-title", Static).render())
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= table.size.width
        await pilot.resize_terminal(200, 50)
        await _settle(pilot)
        assert pane.hidden_columns == [] and len(table.columns) == 4
        await pilot.press("s")  # on the model column: sorts by the metric, best (lowest MAE) first
        await pilot.pause()
        assert [table.get_row_at(i)[0].plain for i in range(3)] == ["CfC", "CfC-pruned", "SINDy"]
        assert str(table.columns[next(k for k in table.columns if k.value == "mae")].label) == "mae ▲"
        await pilot.press("e")
        await _settle(pilot, 0.3)
    files = sorted((snap_session.artifacts / "exports").glob("*.csv"))
    assert [f.name for f in files] and all(" " not in f.name for f in files)
    umask = os.umask(0)
    os.umask(umask)
    assert files[0].stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


async def test_footer_pins_quit_and_help_keeps_hints_whole_and_clicks(snap_session):
    from workbench.screens.jobs import JobsScreen
    from workbench.widgets.footer import WorkbenchFooter

    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("3")
        await _settle(pilot, 0.3)
        footer = app.screen.query_one(WorkbenchFooter)
        line = footer.render().plain
        assert line.rstrip().endswith("q Quit  ? Help") and len(line) <= 60
        main, _ = footer.hints()
        shown = [f"{k} {d}" for _, k, d in main if f" {k} {d} " in line]
        assert shown and all(f" {k} {d} " in line for _, k, d in main[:len(shown)])
        # a click on a key presses it: "? Help" at the right edge
        x0 = next(x0 for x0, _, key in footer._keys if key == "question_mark")
        await pilot.click(WorkbenchFooter, offset=(x0 + 1, 0))
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape", "j")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        assert app.screen.query_one(WorkbenchFooter).render().plain.rstrip().endswith("q Quit  ? Help")


async def test_keys_work_on_arrival_and_after_a_typed_threshold(snap_session):
    from textual.widgets import OptionList, Tree

    app = WorkbenchApp(session=snap_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1")
        await _settle(pilot)
        assert isinstance(app.focused, Tree)  # the Datasets tree has the keys at once
        await pilot.press("enter")  # the first Enter expands the first file
        await _settle(pilot)
        assert app.focused.root.children[0].is_expanded
        await pilot.press("3", "t", *"0.1", "enter")
        await pilot.pause()
        assert isinstance(app.focused, OptionList) and app.focused.id == "eq-list"
        assert app.screen.query_one(".side:focus-within") is not None  # drawn with the accent edge
