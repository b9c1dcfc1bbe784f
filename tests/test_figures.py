"""Analysis figures (engine.views): loaders on artifacts with known contents, the
renderer's size discipline, and the Results / Training panes cycling through them."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from engine.analyses import get
from engine.atomic import save_npz
from engine.views import Figure, Panel, Series, load_figure
from tests.helpers.tui import settle as _settle
from tests.helpers.tui import static_text


def _retina_artifacts(workdir, T=800, cells=3, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.gamma(0.5, 0.2, (T, cells))
    preds = {"CfC": target + 0.1, "CfC_pruned": target + 0.2, "SINDy": target * 0.5,
             "SINDy_pruned": np.where(np.arange(T)[:, None] < T // 2, target, np.nan)}
    save_npz(workdir / "predictions.npz", target=target, **preds)
    save_npz(workdir / "val_predictions.npz", target=target, pred=target * 2 + 0.05,
             expected=target * 0.9, start=np.int64(5000))
    return target, preds


def _view(name):
    return next(v for v in get("retina").views if v.name == name)


def test_retina_traces_figure_reports_the_chosen_model_and_cell(tmp_path):
    target, preds = _retina_artifacts(tmp_path)
    fig = load_figure(_view("traces"), tmp_path, index=1, option="CfC-pruned")
    assert fig.index == 1 and fig.n_index == 3
    assert fig.options == ["CfC", "CfC-pruned", "SINDy", "SINDy-pruned"] and fig.option == "CfC-pruned"
    assert "MAE 0.2000" in fig.caption and "corr 1.000" in fig.caption
    (panel,) = fig.panels
    assert [s.role for s in panel.series] == ["background", "line"]  # target behind the prediction
    np.testing.assert_allclose(panel.series[1].y, preds["CfC_pruned"][:600, 1])
    # out-of-range index is clamped; an unknown model falls back on the first
    fig = load_figure(_view("traces"), tmp_path, index=99, option="nope")
    assert fig.index == 2 and fig.option == "CfC"
    # a half-diverged SINDy says so instead of averaging NaN
    fig = load_figure(_view("traces"), tmp_path, index=0, option="SINDy-pruned")
    assert "50% diverged" in fig.caption and "MAE 0.0000" in fig.caption


def test_retina_validation_figure_has_the_noise_ceiling(tmp_path):
    _retina_artifacts(tmp_path)
    fig = load_figure(_view("validation"), tmp_path, index=2, option=None)
    assert fig.index == 2 and "corr 1.000" in fig.caption and "ceiling 1.000" in fig.caption
    assert fig.panels[0].series[0].x[0] == pytest.approx(50.0)  # seconds from the split's start


def test_missing_artifact_names_the_step(tmp_path):
    with pytest.raises(FileNotFoundError, match="evaluate"):
        load_figure(_view("traces"), tmp_path)
    with pytest.raises(FileNotFoundError, match="train"):
        load_figure(_view("validation"), tmp_path)


def test_render_figure_fits_its_box():
    from rich.console import Console

    from workbench.widgets.figure import render_figure

    x = np.arange(200.0)
    fig = Figure("a title that is much longer than the box it is drawn in, on purpose", [
        Panel("trace", [Series("target", x, np.sin(x / 9), role="background"), Series("model", x, np.cos(x / 9))]),
        Panel("raster", image=np.random.default_rng(0).poisson(1, (40, 200))),
        Panel("mei", image=np.eye(20), aspect=True), Panel("gabor", image=np.eye(20)[::-1], aspect=True),
    ], caption="r 0.5")
    for w, h in ((80, 20), (40, 12), (200, 45)):
        console = Console(width=w, color_system="truecolor", record=True, file=open("/dev/null", "w"))
        console.print(render_figure(fig, w, h))
        lines = console.export_text().splitlines()
        assert len(lines) <= h, (w, h, len(lines))
        assert max(len(line) for line in lines) <= w
        assert lines[-1].startswith("r 0.5")


# -- panes ---------------------------------------------------------------------------
@pytest.fixture
def retina_session(session_root):
    from engine.session import Session

    s = Session.open("figs", session_root)
    job = s.create_job("retina", ["train", "evaluate"], {}, job_id="ret-0001")
    s.update_job(job, state="running", current_step="evaluate", started=time.time(), heartbeat=time.time())
    s.finish_job(job, "finished", result={})
    for run, shift in ((1, 0.0), (2, 0.01)):
        frame = pd.DataFrame({"mae": [0.08 + shift, 0.09 + shift]}, index=["CfC", "SINDy"])
        s.save_table("retina MAE", frame, job_id=job)
    _retina_artifacts(s.job_dir(job))
    yield s
    s.close()




async def test_results_pane_cycles_figures_and_restores_them(retina_session):
    from textual.widgets import DataTable

    from workbench.app import WorkbenchApp

    app = WorkbenchApp(session=retina_session)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("4")
        await _settle(pilot)
        view = app.query_one("#result-bars")
        assert "mae retina MAE" in static_text(view, 200)  # bars first
        await pilot.press("v")
        await _settle(pilot)
        assert "CfC vs target, cell 0" in static_text(view, 200)
        await pilot.press("n", "m")
        await _settle(pilot)
        shown = static_text(view, 200)
        assert "CfC-pruned vs target, cell 1" in shown and "MAE 0.2000" in shown
        # two runs side by side
        await pilot.press("c")
        await _settle(pilot)
        other = app.query_one("#compare-table", DataTable)
        assert other.display and other.get_cell("CfC", "mae").plain.rstrip("*") == "0.08"
        assert app.query_one("#result-table", DataTable).get_cell("CfC", "mae").plain.rstrip("*") == "0.09"
    from engine.session import Session

    again = Session(retina_session.path, create=False)  # the app closed the first one
    app = WorkbenchApp(session=again)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("4")
        await _settle(pilot)
        assert "CfC-pruned vs target, cell 1" in static_text(app.query_one("#result-bars"), 200)
    again.close()


async def test_training_pane_shows_predicted_vs_true(retina_session):
    from workbench.app import WorkbenchApp

    app = WorkbenchApp(session=retina_session)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await _settle(pilot)
        await pilot.press("v")
        await _settle(pilot)
        view = app.query_one("#loss-plot")
        assert "Validation: predicted vs recorded, cell 0" in static_text(view, 200)
        await pilot.press("n")
        await _settle(pilot)
        assert "cell 1: corr 1.000" in static_text(view, 200)


def test_connectome_views_read_the_evaluate_files(tmp_path):
    rng = np.random.default_rng(1)
    n, types = 40, np.repeat(np.arange(4), 10)
    W = rng.normal(size=(n, n)) * (rng.random((n, n)) < 0.5)
    save_npz(tmp_path / "connectivity.npz", W_true=W, W_learned=2 * W + 0.01)
    x = np.linspace(-3, 3, 101)
    save_npz(tmp_path / "functions.npz", x=x, phi_true=np.tile(np.tanh(x), (4, 1)),
             phi_learned=np.tile(np.tanh(x), (4, 1)) * 0.5, psi_true=np.tile(x, (4, 1)),
             psi_learned=np.tile(-x, (4, 1)), embedding=rng.normal(size=(n, 2)) + types[:, None], types=types)
    side = np.linspace(0, 1, 4)
    pos = np.stack(np.meshgrid(side, side), -1).reshape(-1, 2)
    field = rng.normal(size=(30, 16))
    save_npz(tmp_path / "field.npz", true=field, learned=field, learned_corrected=field, pos=pos)
    save_npz(tmp_path / "rollout.npz", t=np.arange(20.0), x_true=np.ones((20, n)), x_pred=np.ones((20, n)))
    views = {v.name: v for v in get("connectome").views}
    assert [v.name for v in get("stimulus").views] == list(views)
    fig = load_figure(views["connectivity"], tmp_path)
    assert "R² 1.000 · slope 2.000" in fig.caption and fig.panels[0].series[0].role == "points"
    assert f"{int((W != 0).sum())} edges" in fig.caption  # absent edges left out of the scatter
    emb = load_figure(views["embedding"], tmp_path)
    assert [s.label for s in emb.panels[0].series] == ["type 0", "type 1", "type 2", "type 3"]
    psi = load_figure(views["functions"], tmp_path, index=3, option="psi (edge)")
    assert psi.index == 3 and "slope -1.000" in psi.caption
    fr = load_figure(views["field"], tmp_path, index=7)
    true_img, learned_img = (p.image for p in fr.panels)
    assert true_img.shape == (4, 4) and np.allclose(np.sort(true_img.ravel()), np.sort(field[7]))
    np.testing.assert_array_equal(true_img, learned_img)
    roll = load_figure(views["rollout"], tmp_path, index=5)
    assert roll.n_index == n and roll.index == 5


def test_demo_rollouts_view(tmp_path):
    rng = np.random.default_rng(2)
    truth = rng.normal(size=(5, 30, 2))
    np.savez(tmp_path / "rollouts.npz", truth=truth, MLP=truth + 0.5, SINDy=truth)
    fig = load_figure(get("demo").views[0], tmp_path, index=3)
    assert fig.index == 3 and fig.n_index == 5 and [p.label for p in fig.panels] == ["x0", "x1"]
    assert fig.caption == "MLP MAE 0.5 · SINDy MAE 0"
    np.testing.assert_array_equal(fig.panels[1].series[0].y, truth[3, :, 1])


def test_titles_and_key_hints_are_never_cut_mid_word():
    from rich.console import Console

    from workbench.widgets.figure import render_figure

    x = np.arange(50.0)
    fig = Figure("val: validation predictions of the CfC", [
        Panel("ceiling 0.93 (split-half)", [Series("r", x, np.sin(x))])])
    for w in (30, 46, 80):
        console = Console(width=w, record=True, file=open("/dev/null", "w"))
        console.print(render_figure(fig, w, 14, hint="v: val (2/3) · n/p: cell 1/9"))
        lines = console.export_text().splitlines()
        # the hint is whole (on the title's line, or its own), the panel label whole or "…"
        assert any("v: val (2/3) · n/p: cell 1/9" in line for line in lines) or w < 30, (w, lines)
        label = next(line for line in lines if line.startswith("ceiling"))
        assert label.strip() == "ceiling 0.93 (split-half)" or label.rstrip().endswith("…"), (w, label)


async def test_a_missing_file_of_a_running_job_reads_not_yet(tmp_path):
    from textual.app import App

    from workbench.widgets.figure_view import FigureView

    class Box(App):
        def compose(self):
            yield FigureView(id="fv")

    app = Box()
    async with app.run_test(size=(80, 20)) as pilot:
        fv = app.query_one(FigureView)
        fv.configure(tmp_path, [_view("validation")])
        await _settle(pilot, 0.3)
        assert "train" in str(fv.render())  # ended without the file: which step makes it
        fv.job_running = True
        await pilot.pause()
        text = str(fv.render())
        assert "appears when the running job writes" in text and "first" not in text
