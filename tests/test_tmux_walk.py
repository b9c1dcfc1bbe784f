"""A new user's walk, in a real terminal (tmux) at 80×24: a session holding a finished run of
EVERY analysis (made by their own steps, tiny sizes), through panes 1–4 — each job, each
equation set, each table and figure —, help, the jobs screen, the report and a resize.  The
walk fails on any traceback, any error toast naming an exception, and any key hint cut off
in the footer."""

from __future__ import annotations

import re
import shutil
import sys
import time

import pytest

from tests.helpers.process import ROOT
from tests.helpers.tmux import Tmux
from tests.walk_sessions import TINY, make_walk_session

# slow: making the session runs every analysis (1-3 min on two busy cores); it still runs by
# default, and `-m "not slow"` leaves it out
pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
              pytest.mark.slow]

W, H = 80, 24
CRASH = re.compile(r"Traceback|\b[A-Z]\w*(Error|Exception)\b(?!\w)")


@pytest.fixture(scope="module")
def walk_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("walk") / "sessions"
    root.mkdir()
    states = make_walk_session(root)
    assert states == {a: "finished" for a in TINY}, states
    return root


def _known_hints() -> set[str]:
    """Every "key description" a footer may show (what a whole, uncut hint reads)."""
    from textual.app import App
    from textual.binding import Binding

    from workbench.app import WorkbenchApp
    from workbench.panes.datasets import EdaView, FrameView, NwbBrowser
    from workbench.panes.equations import EquationsPane
    from workbench.panes.results import ResultsPane
    from workbench.panes.training import TrainingPane
    from workbench.screens.jobs import JobsScreen

    plain = App()  # key display needs no running app
    hints = set()
    for cls in (WorkbenchApp, EquationsPane, ResultsPane, TrainingPane, JobsScreen, FrameView, EdaView, NwbBrowser):
        for b in cls.BINDINGS:
            b = b if isinstance(b, Binding) else Binding(*b)
            if b.show and b.description:
                for key in b.key.split(","):
                    hints.add(f"{plain.get_key_display(Binding(key.strip(), b.action))} {b.description}")
    return hints


class Walk:
    def __init__(self, tmux: Tmux, hints: set[str]) -> None:
        self.tmux, self.hints, self.seen = tmux, hints, []

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "wb")

    def check(self, where: str, text: str | None = None) -> str:
        text = text if text is not None else self.screen()
        self.seen.append((where, text))
        bad = CRASH.search(text)
        assert bad is None, f"{where}: {bad.group(0)} on screen:\n{text}"
        lines = text.rstrip("\n").splitlines()
        footer = lines[-1] if lines else ""
        assert "q Quit" in footer and "? Help" in footer, f"{where}: footer without q/?:\n{text}"
        # every hint left of the pinned keys is whole: "key description" as bound
        left = footer.split("▏")[0].strip()
        for hint in filter(None, re.split(r"\s{2,}", left)):
            assert hint in self.hints, f"{where}: cut or unknown key hint {hint!r} in {footer!r}"
        return text

    def keys(self, *keys: str, settle: float = 0.6) -> None:
        for k in keys:
            self.tmux("send-keys", "-t", "wb", k)
            time.sleep(0.15)
        time.sleep(settle)

    def wait(self, *words: str, timeout: float = 20) -> str:
        return self.tmux.wait_screen(*words, timeout=timeout)


def test_a_session_of_every_analysis_walks_without_crash_or_cut_hint(walk_root):
    tmux = Tmux()
    env = {"WORKBENCH_SESSIONS": str(walk_root), "PYTHONPATH": str(ROOT),
           "WORKBENCH_CONFIG": str(walk_root / "no-config.toml")}
    status_file = walk_root / "exit-status"
    # the shell records the exit status itself: tmux may report the pane dead while the
    # exited process is still a zombie it has not reaped, with #{pane_dead_status} empty
    cmd = " ".join(["env", *(f"{k}={v}" for k, v in env.items()),
                    sys.executable, "-m", "workbench.cli", "--session", "walk",
                    ";", "echo", "$?", ">", str(status_file)])
    try:
        tmux("new-session", "-d", "-s", "wb", "-x", str(W), "-y", str(H), "-c", str(ROOT), cmd)
        tmux("set-option", "-t", "wb", "remain-on-exit", "on")  # a crash leaves its traceback
        walk = Walk(tmux, _known_hints())
        walk.wait("Datasets", "Results")
        time.sleep(1.5)  # the first poll and the panes behind the front one
        n_jobs = len(TINY)

        # 2 Training: every job (newest first), its curve and facts
        walk.keys("2")
        walk.check("training")
        for i in range(n_jobs):
            walk.keys("down")
            walk.check(f"training, job {i + 1}")
        # 3 Equations: every equation set of every analysis (lds's own shape included)
        walk.keys("3", settle=1.0)
        text = walk.check("equations")
        assert "no equations yet" not in text
        for i in range(12):
            walk.keys("down", settle=0.5)
            walk.check(f"equations, set {i + 1}")
        walk.keys("plus", "minus", "k")
        walk.check("equations, threshold keys")
        # y in tmux's default (set-clipboard external): says how to turn copies on, not "copied"
        walk.keys("y", settle=0.3)
        text = walk.wait("set-clipboard", timeout=10)
        assert "copied to the clipboard" not in text
        walk.check("equations, copy in tmux", text)
        # 4 Results: every table, each figure of the analyses
        walk.keys("4", settle=1.0)
        walk.check("results")
        for i in range(10):
            walk.keys("down", settle=0.4)
            walk.check(f"results, table {i + 1}")
            walk.keys("v", settle=0.6)
            walk.check(f"results, table {i + 1}, next figure")
        # 1 Datasets: the tree has the keys on arrival
        walk.keys("1", settle=1.0)
        walk.keys("enter", settle=1.0)
        walk.check("datasets, first file expanded")
        walk.keys("down", "enter", settle=1.0)
        walk.check("datasets, first entry shown")
        # help, then back; the jobs screen, then back
        walk.keys("?")
        text = walk.screen()
        assert "Everywhere" in text and not CRASH.search(text), text
        walk.keys("escape")
        walk.keys("j", settle=1.0)
        text = walk.check("jobs screen")
        assert "Jobs · session walk" in text and f"{n_jobs} ended" in text
        walk.keys("escape")
        # the report (E): written, not crashed
        walk.keys("E")
        text = walk.wait("report written", timeout=60)
        walk.check("report", text)
        # a resize, smaller and back
        for size in ((60, 20), (W, H)):
            tmux("resize-window", "-t", "wb", "-x", str(size[0]), "-y", str(size[1]))
            time.sleep(1.0)
            for key in "1234":
                walk.keys(key, settle=0.5)
                text = walk.screen()
                assert not CRASH.search(text), f"after resize to {size}, pane {key}:\n{text}"
        walk.keys("q", settle=0.2)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not status_file.exists():  # quitting closes the store
            time.sleep(0.2)
        assert status_file.exists(), f"the workbench did not quit on q:\n{walk.screen()}"
        time.sleep(0.1)  # the shell's echo has finished writing
        status = status_file.read_text().strip()
        assert status == "0", f"it exited with status {status}:\n{walk.screen()}"
    finally:
        tmux("kill-server", check=False)
