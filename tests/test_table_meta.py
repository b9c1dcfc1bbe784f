"""Metric tables carry their metadata (issue #20 item 1): which way each score is better and
what a NaN in it means, stored with the table; tables stored without it still read."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from engine.metrics import score_meta
from engine.seed_table import FigureStats
from engine.session import MIGRATIONS, Score, Session, TableMeta
from tests.helpers.tui import settle
from workbench.app import WorkbenchApp
from workbench.panes.results_table import nan_text, prepare_table, score_of
from workbench.panes.seeds_view import n_text, nan_word

NAN = float("nan")
# names chosen so that the name heuristic reads every score the wrong way round
META = TableMeta.of(lower=["corr_distance"], higher=["err_gain", "corr"], diverged=["err_gain"])


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "corr_distance": [0.2, 0.5, 0.9],  # lower is better: A (the names say C)
        "err_gain": [1.0, 3.0, NAN],  # higher is better: B (the names say A); NaN = diverged
        "corr": [0.4, NAN, 0.1],  # NaN = n/a
        "loss_weight": [1.0, 2.0, 3.0],  # a setting, not a score (the names say a score)
    }, index=["A", "B", "C"])


def test_meta_round_trips_and_reads_per_cell_columns():
    assert TableMeta.from_payload(META.to_payload()) == META
    assert META.score("corr_distance") == Score(higher=False)
    assert META.score("err_gain:cell3") == Score(higher=True, nan="diverged")  # its metric's
    assert META.score("loss_weight") is None and META.score("loss_weight:x") is None
    # what a newer or hand-edited session stored is ignored, never half-read
    assert TableMeta.from_payload({"version": 99, "scores": {}}) is None
    assert TableMeta.from_payload({"version": 1, "scores": {"x": {"higher": "yes"}}}) is None
    with pytest.raises(ValueError):
        Score(higher=True, nan="bad")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TableMeta.of(higher=["mae"], diverged=["corr"])


def test_score_meta_states_score_tables_columns():
    meta = score_meta(("mae", "corr", "bits_per_spike"), rank_by="bits_per_spike")
    assert meta.score("mae") == Score(higher=False, nan="diverged")
    assert meta.score("corr:c0") == Score(higher=True, nan="n/a")  # a constant cell: no corr
    assert meta.score("bits_per_spike").higher and meta.rank_by == "bits_per_spike"
    with pytest.raises(ValueError):
        score_meta(("nope",))


def test_session_stores_meta_and_old_tables_read_without(session):
    session.save_table("with", _frame(), meta=META)
    session.save_table("without", _frame())
    got = {t["name"]: t["meta"] for t in session.tables()}
    assert got == {"with": META, "without": None}


def test_a_schema_3_session_reads_read_only_and_migrates(tmp_path):
    path = tmp_path / "old"
    path.mkdir()
    conn = sqlite3.connect(path / "session.sqlite")
    for script in MIGRATIONS[:3]:
        conn.executescript(script)
    conn.execute("INSERT INTO tables (name, job_id, created, data) VALUES ('t', NULL, 0, ?)",
                 (_frame().to_json(orient="split"),))
    conn.execute("PRAGMA user_version=3")
    conn.commit()
    conn.close()
    with Session(path, readonly=True) as old:  # no meta column: read as no metadata
        (entry,) = old.tables()
        assert entry["meta"] is None and list(entry["frame"].index) == ["A", "B", "C"]
    with Session(path) as s:  # migrated: the old row has none, a new one has its own
        s.save_table("t", _frame(), meta=META)
        assert [t["meta"] for t in s.tables()] == [None, META]


def test_pane_reads_direction_and_nan_from_meta_else_names():
    stated = prepare_table({"name": "t", "job_id": None, "frame": _frame(), "meta": META})
    guessed = prepare_table({"name": "t", "job_id": None, "frame": _frame()})
    assert [score_of(stated, c) for c in ("corr_distance", "loss_weight")] == [Score(False), None]
    assert [score_of(guessed, c).higher for c in ("corr_distance", "err_gain")] == [True, False]
    assert score_of(guessed, "loss_weight") is not None  # the names' mistake, which meta fixes
    # the scores before the settings, in the table's order
    assert list(stated["frame"].columns) == ["corr_distance", "err_gain", "corr", "loss_weight"]
    assert nan_text(stated, "C", "err_gain") == "diverged" and nan_text(stated, "B", "corr") == "n/a"
    assert nan_text(guessed, "C", "err_gain") == "n/a"  # no row mark, no metadata: not a failure


async def test_results_pane_marks_best_by_stated_direction(session, monkeypatch):
    import workbench.device_probe as probe

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))
    session.save_table("stated", _frame(), meta=META)
    session.save_table("guessed", _frame())
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("4")
        await settle(pilot, 0.5)
        pane = app.query_one("#results-pane")
        cells = {t["name"]: {r[0].plain: [c.plain for c in r[1:]] for r in pane._cells(t)}
                 for t in pane.tables}
        # columns: corr_distance, err_gain, corr, loss_weight
        assert cells["stated"] == {"A": ["0.2*", "1", "0.4*", "1"], "B": ["0.5", "3*", "n/a", "2"],
                                   "C": ["0.9", "diverged", "0.1", "3"]}
        # without metadata, today's guess from the names (corr_distance: higher; err: lower)
        assert cells["guessed"] == {"A": ["0.2", "1*", "0.4*", "1*"], "B": ["0.5", "3", "n/a", "2"],
                                    "C": ["0.9*", "n/a", "0.1", "3"]}


def test_seeds_view_says_what_a_nan_is():
    fig = FigureStats("t", "C", "err_gain", None, {0: 1.0, 1: NAN}, 1.0, 0.0, 1.0, 1.0, n=1, nonfinite=1)
    assert nan_word(fig, {"t": META}) == "diverged"
    assert nan_word(FigureStats(**{**fig.__dict__, "column": "corr"}), {"t": META}) == "n/a"
    assert nan_word(fig, {}) == "NaN"  # a table stored without metadata: as before
    assert n_text(fig, "diverged").plain == "1 +1 diverged"


def test_a_step_stores_its_tables_meta_and_rank_by_orders_the_columns(session, tmp_path):
    from engine.analyses.base import StepContext

    ctx = StepContext(workdir=tmp_path, session=session, job_id=None)
    ranked = TableMeta.of(lower=["corr_distance"], higher=["err_gain", "corr"], rank_by="corr")
    ctx.save_table("t", _frame(), meta=ranked)
    (entry,) = session.tables("t")
    assert entry["meta"] == ranked
    shown = prepare_table(entry)
    assert shown["marks"].rank_by == "corr"  # from the metadata: the table has no rank_by column
    assert list(shown["frame"].columns) == ["corr", "corr_distance", "err_gain", "loss_weight"]
