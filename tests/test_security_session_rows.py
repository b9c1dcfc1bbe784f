"""What the TUI reads from a session is checked, and set aside with a warning (issue 22, 1 and 16)."""

from __future__ import annotations

from engine import parallel
from engine.parallel import CONFIG_SCOPE


async def test_unknown_pane_and_foreign_backend_open_with_defaults_and_say_so(session, monkeypatch):
    import workbench.device_probe as probe
    from workbench.app import WorkbenchApp

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))
    session.set_ui(pane="no-such-pane\x1b]0;title\x07")  # a hand-edited row, with an escape in it
    session.set_params(CONFIG_SCOPE, {"backend": "dask", "address": "tcp://198.51.100.7:8786"})
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        assert app._active_pane() == "training"
        notes = [n.message for n in app._notifications]
        assert any("saved pane" in n and "unknown" in n and "\x1b" not in n for n in notes), notes
        assert any("reset to loky" in n for n in notes), notes
        assert parallel.load_config(session).backend == "loky" and parallel.notice(session) is None  # reset once


async def test_ui_row_that_is_not_json_opens_on_training(session, monkeypatch):
    import workbench.device_probe as probe
    from workbench.app import WorkbenchApp

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))
    with session._write() as c:
        c.execute("INSERT OR REPLACE INTO ui_state VALUES ('pane', 'not json {')")
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        assert app._active_pane() == "training"  # the row is left out: no crash in any pane


def test_a_job_row_cannot_point_its_folder_outside_the_session(session, tmp_path):
    import pytest

    from engine.session import SessionError

    job_id = session.create_job("fake", ["count"], {})
    assert session.job_dir(job_id).is_relative_to(session.path)
    for bad in ("/etc", "../../outside", "artifacts/../../x"):
        with session._write() as c:
            c.execute("UPDATE jobs SET workdir=? WHERE id=?", (bad, job_id))
        with pytest.raises(SessionError, match="outside session"):
            session.job_dir(job_id)
