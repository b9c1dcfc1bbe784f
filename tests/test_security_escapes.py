"""Terminal escapes from files and sessions never reach the terminal (issue 22, item 3)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from engine.session import Session
from engine.text import has_controls, safe_line, safe_text
from tests.helpers.process import cli

OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"  # write "rm -rf ~" to the clipboard
TITLE = "\x1b]0;owned\x1b\\"  # set the window title, ST-terminated
CSI = "\x1b[2J\x9b31m"  # clear the screen; an 8-bit CSI
BIDI = "\u202eexe.txt"  # right-to-left override


@pytest.mark.parametrize("bad", [OSC52, TITLE, CSI, BIDI, "a\rb", "bell\x07", "nul\x00"])
def test_safe_text_escapes_every_control_and_keeps_it_visible(bad):
    shown = safe_text(bad)
    assert not has_controls(shown.replace("\n", "").replace("\t", ""))
    assert all(ord(c) >= 0x20 and not 0x7f <= ord(c) <= 0x9f for c in shown)
    assert "\\x1b" in shown or "\\u202e" in shown or "\\x0d" in shown or "\\x07" in shown or "\\x00" in shown


def test_safe_text_keeps_ordinary_text_and_lines():
    assert safe_text("naïve 10 µm — ok\n\tnext") == "naïve 10 µm — ok\n\tnext"
    assert safe_line("two\nlines") == "two\\x0alines"
    assert safe_text(b"fi\x80ing") == "fi\\x80ing" and safe_text("fi\udc80ing") == "fi\\x80ing"
    safe_text("lone \ud83d").encode("utf-8")  # printable: a lone surrogate would raise on print


def _hostile_session(root) -> str:
    s = Session.open("hostile", root)
    job_id = s.create_job("fake", ["count"], {})
    s.finish_job(job_id, "failed", error=f"ValueError: bad file {OSC52}{TITLE}{CSI}")
    s.add_event(job_id, "log", {"message": f"loading {TITLE}"})
    assert "\x1b" not in s.job(job_id).error  # what the store hands out is already safe to show
    assert "\x1b" not in s.events(job_id, kinds=("log",))[0].payload["message"]
    s.close()
    return job_id


def test_cli_jobs_and_sessions_print_no_escapes(session_root):
    _hostile_session(session_root)
    for args in (["--session", "hostile", "jobs"], ["sessions", "show", "hostile"]):
        out = cli(*args)
        assert out.returncode == 0, out.stderr
        assert "ValueError: bad file \\x1b]52;c;" in out.stdout
        assert not any(c in out.stdout + out.stderr for c in "\x1b\x07\x9b"), repr(out.stdout)


def test_cli_data_tree_prints_no_escapes(tmp_path):
    path = tmp_path / "names.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset(f"x{OSC52}", data=np.zeros(3))
        fh.create_group(f"g{TITLE}").attrs["note"] = CSI
    out = cli("data", "tree", str(path))
    assert out.returncode == 0, out.stderr
    assert "x\\x1b]52;c;" in out.stdout and "g\\x1b]0;owned" in out.stdout
    assert not any(c in out.stdout for c in "\x1b\x07\x9b"), repr(out.stdout)
    bad = cli("data", "tree", str(tmp_path / f"missing{OSC52}.h5"))  # an error quoting the name
    assert bad.returncode == 2 and "\x1b" not in bad.stderr and "\\x1b" in bad.stderr


def test_stored_tables_and_equation_names_come_back_escaped(session):
    import pandas as pd

    frame = pd.DataFrame({f"mae{OSC52}": [0.1], "note": [f"ok{TITLE}"]}, index=[f"model{CSI}"])
    session.save_table(f"errors{OSC52}", frame)
    session.save_equations(f"eqs{TITLE}", {"coef": [[1.0]], "feature_names": ["x0"], "state_names": ["x0"]})
    (t,) = session.tables()
    shown = [t["name"], *map(str, t["frame"].index), *map(str, t["frame"].columns), *t["frame"]["note"]]
    assert not any("\x1b" in x or "\x07" in x or "\x9b" in x for x in shown), shown
    assert t["frame"].iloc[0, 0] == 0.1 and t["name"].startswith("errors\\x1b]52")
    assert "\x1b" not in session.equations()[0]["name"]
