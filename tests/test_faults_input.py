"""Faults, part 3: bad input, fuzzed with hypothesis (HDF5 layouts: see test_data_errors.py).

Bad ``--set`` pairs and values, unknown analysis and step names and bad session names, given
to the real CLI entry point: each ends with exit status 2 and exactly one line on stderr, no
traceback, nothing on stdout, and no write at all under the sessions folder (no session made,
no job row, no event).  ``parse_sets`` itself either returns well-typed values or raises
``ParamError`` with a one-line message — never another exception.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine import analyses
from engine.analyses.base import ParamError, parse_sets
from engine.session import Session, SessionError, check_name
from tests.helpers.process import cli
from workbench.cli import main

pytestmark = pytest.mark.timeout(120)

DEFAULTS = {"n": 20, "lr": 0.1, "flag": True, "name": "x", "dims": [1, 2], "path": None}
FAKE = analyses.get("fake")
FAKE_DEFAULTS = FAKE.defaults()
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)
keys = st.one_of(st.sampled_from(sorted(DEFAULTS)), texts)
pairs = st.one_of(st.builds(lambda k, v: f"{k}={v}", keys, texts), texts)


@FUZZ
@given(st.lists(pairs, min_size=1, max_size=4))
def test_parse_sets_types_or_one_line_param_error(items):
    try:
        out = parse_sets(items, DEFAULTS)
    except ParamError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for key, value in out.items():
        default = DEFAULTS[key]
        if isinstance(default, bool):
            assert isinstance(value, bool)
        elif isinstance(default, int):
            assert type(value) is int
        elif isinstance(default, float):
            assert isinstance(value, float) and math.isfinite(value)
        elif isinstance(default, list):
            assert isinstance(value, list) and all(type(v) is int for v in value)
        else:
            assert isinstance(value, str)


def _tree(root) -> list:
    """Files under the sessions folder (not SQLite's -wal/-shm side files) and every row stored."""
    import sqlite3

    files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if not p.name.endswith(("-wal", "-shm")))
    rows = []
    for db in sorted(root.glob("*/session.sqlite")):
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            for table in ("jobs", "events", "params", "tables", "equations", "ui_state"):
                rows.append((db.parent.name, table, conn.execute(f"SELECT * FROM {table}").fetchall()))
        finally:
            conn.close()
    return [files, rows]


def _run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: not expected for these inputs
            code = f"SystemExit({exc.code})"
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def existing(session_root):
    """A session with one finished job: bad commands must leave it exactly as it was."""
    s = Session.open("keep", session_root)
    job = s.create_job("fake", ["count"], {"n": 1})
    s.finish_job(job, "finished", result={"counted": 1})
    s.close()
    return session_root


def _assert_rejected(argv, root, before, message=None):
    code, out, err = _run_main(["--root", str(root), *argv])
    assert code == 2, (argv, code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("workbench: "), (argv, err)
    assert "Traceback" not in err and out == ""
    if message:
        assert message in lines[0], (argv, err)
    assert _tree(root) == before, f"{argv} wrote to the sessions folder"


not_option = texts.filter(lambda s: not s.startswith("-"))


@FUZZ
@given(name=not_option)
def test_unknown_analysis_is_one_line(existing, name):
    assume(name not in analyses.names())
    _assert_rejected(["run", name, "--session", "keep"], existing, _tree(existing), "unknown analysis")


@FUZZ
@given(steps=st.lists(texts, min_size=1, max_size=3))
def test_unknown_or_empty_step_is_one_line(existing, steps):
    named = [p.strip() for v in steps for p in v.split(",") if p.strip()]
    assume(not named or any(n not in [s.name for s in FAKE.steps] for n in named))
    argv = ["run", "fake", "--session", "keep"] + [f"--step={s}" for s in steps]
    _assert_rejected(argv, existing, _tree(existing), "step")


bad_sets = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(sorted(FAKE_DEFAULTS)), texts),
    st.builds(lambda k, v: f"{k}={v}", texts, texts),
    texts,
)


@FUZZ
@given(items=st.lists(bad_sets, min_size=1, max_size=3), new=st.booleans())
def test_bad_set_values_are_one_line_and_write_nothing(existing, items, new):
    try:
        parse_sets(items, FAKE_DEFAULTS)
    except ParamError:
        pass
    else:
        assume(False)  # a valid set of overrides: not this test's business
    session = "brand-new" if new else "keep"  # a new session is not even created
    argv = ["run", "fake", "--step", "count", "--session", session] + [f"--set={i}" for i in items]
    _assert_rejected(argv, existing, _tree(existing))


@FUZZ
@given(name=texts)
def test_bad_session_names_are_one_line(existing, name):
    try:
        check_name(name)
    except SessionError:
        pass
    else:
        assume(False)
    before = _tree(existing)
    _assert_rejected(["run", "fake", "--step", "count", f"--session={name}", "--set", "n=1"], existing,
                     before, "invalid session name")
    _assert_rejected([f"--session={name}", "jobs"], existing, before, "invalid session name")
    with pytest.raises(SessionError, match="invalid session name"):
        Session.open(name, existing)
    assert _tree(existing) == before


@pytest.mark.parametrize("argv", [
    ["run", "jobs", "--session", "keep", "--set", "n=1"],
    ["jobs", "--session", "keep", "--resume", "no-such-job"],
    ["jobs", "--session", "keep", "--delete", "no-such-job"],
    ["cancel", "no-such-job"],
])
def test_unknown_ids_write_nothing(existing, argv):
    _assert_rejected(argv, existing, _tree(existing))


@pytest.mark.skipif(sys.platform != "linux", reason="bytes in argv")
def test_undecodable_and_multiline_arguments_in_a_fresh_interpreter(existing):
    """What a shell can pass that Python cannot print naively: still one clean line."""
    before = _tree(existing)
    for argv in (["run", "fake\udcff\udcfe", "--session", "keep"],
                 ["run", "fake", "--session", "keep", "--set", "n=1\n2"],
                 ["run", "fake", "--session=a\nb"]):
        proc = cli("--root", str(existing), *argv)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert _tree(existing) == before
