"""User config: TOML in the platform config folder ($WORKBENCH_CONFIG in tests)."""

from __future__ import annotations

import pytest

from workbench import config


@pytest.fixture(autouse=True)
def probe_cpu(monkeypatch):
    import workbench.device_probe as probe

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))


def test_default_location_is_the_platform_config_folder(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.delenv(config.ENV, raising=False)
    assert config.config_path() == __import__("pathlib").Path(
        platformdirs.user_config_dir("workbench")) / "config.toml"
    monkeypatch.setenv(config.ENV, str(tmp_path / "c.toml"))
    assert config.config_path() == tmp_path / "c.toml"


def test_valid_config_is_read(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('theme = "nord"\nbell = true\n[keys]\njobs = "x"\nquit = "ctrl+q, Q"\n')
    cfg, warning = config.load(path)
    assert warning is None
    assert (cfg.theme, cfg.bell, cfg.keys) == ("nord", True, {"jobs": "x", "quit": "ctrl+q,Q"})


def test_missing_file_gives_defaults_silently(tmp_path):
    cfg, warning = config.load(tmp_path / "none.toml")
    assert warning is None and cfg == config.Config()


@pytest.mark.parametrize("text, words", [
    ("theme = ", "not valid TOML"),
    ("colour = 'red'", "unknown setting(s) ['colour']"),
    ("bell = 'yes'", "bell must be true or false"),
    ("theme = 3", "theme must be"),
    ("[keys]\nlaunch = 'x'", "unknown key binding id(s) ['launch']"),
    ("[keys]\njobs = 7", "keys.jobs must be"),
    ("keys = 'j'", "keys must be a table"),
])
def test_bad_config_gives_defaults_and_one_warning(tmp_path, text, words):
    path = tmp_path / "c.toml"
    path.write_text(text)
    cfg, warning = config.load(path)
    assert cfg == config.Config()
    assert words in warning and str(path) in warning and warning.endswith("using defaults")
    assert "\n" not in warning


def test_every_remappable_id_is_a_binding():
    from workbench.app import WorkbenchApp
    from workbench.screens.jobs import JobsScreen

    ids = {b.id for b in WorkbenchApp.BINDINGS + JobsScreen.BINDINGS if b.id}
    assert ids == set(config.KEY_ACTIONS)


async def test_app_applies_keys_theme_and_bell(session, tmp_path, monkeypatch):
    from workbench.app import WorkbenchApp
    from workbench.screens.jobs import JobsScreen

    path = tmp_path / "c.toml"
    path.write_text('theme = "nord"\nbell = true\n[keys]\njobs = "x"\n')
    monkeypatch.setenv(config.ENV, str(path))
    app = WorkbenchApp(session=session, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "nord" and app.config_bell()
        await pilot.press("j")
        await pilot.pause()
        assert not isinstance(app.screen, JobsScreen)  # j no longer opens it
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert dict(app.screen.rows())["x"] == "Jobs"


async def test_app_warns_once_and_opens_with_defaults(session_root, tmp_path, monkeypatch):
    from engine.session import Session
    from workbench.app import WorkbenchApp

    for text, words in (("bell = [", "not valid TOML"), ('theme = "no-such-theme"', "unknown theme")):
        path = tmp_path / "c.toml"
        path.write_text(text)
        monkeypatch.setenv(config.ENV, str(path))
        app = WorkbenchApp(session=Session.open("t", session_root), poll=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            warnings = [n for n in app._notifications if n.severity == "warning"]
            assert len(warnings) == 1 and words in warnings[0].message
            assert app.theme == "textual-dark" and not app.config_bell()
            await pilot.press("j")
            assert app.screen.id == "jobs-screen"


async def test_bell_rings_when_a_job_ends_only_if_configured(session, tmp_path, monkeypatch):
    import os
    import time

    from engine.session import Session
    from workbench.app import WorkbenchApp

    for bell in (True, False):
        path = tmp_path / "c.toml"
        path.write_text(f"bell = {str(bell).lower()}\n")
        monkeypatch.setenv(config.ENV, str(path))
        s = Session.open("t", session.path.parent)
        job = s.create_job("fake", ["count"], {})
        s.update_job(job, state="running", pid=os.getpid(), heartbeat=time.time(), host=os.uname().nodename)
        app = WorkbenchApp(session=s)
        rings = []
        monkeypatch.setattr(app, "bell", lambda: rings.append(1))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.8)
            with Session.open("t", session.path.parent) as w:
                w.finish_job(job, "finished")
            deadline = time.monotonic() + 10
            while not any(n.title == job for n in app._notifications) and time.monotonic() < deadline:
                await pilot.pause(0.2)
            assert any(n.title == job and "finished" in n.message for n in app._notifications)
        assert rings == ([1] if bell else [])
