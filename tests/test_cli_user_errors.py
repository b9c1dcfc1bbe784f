"""The CLI's one-line path: every engine.errors.UserError, and --headless against --detach."""

from __future__ import annotations

import pytest

from engine import errors
from tests.helpers.process import cli
from workbench import cli as wb_cli


@pytest.mark.parametrize("exc", [
    errors.ParamError("lr: must be > 0, got -1"),
    errors.DataError("x.h5: not an HDF5 file"),
    errors.SessionError("no session 'nope'"),
    errors.NonFiniteLoss("the loss became NaN at step 7", step=7, last_good_step=5),
    errors.LibraryTooLarge("4,960 features need 12 GiB; the limit is 2,000 features"),
])
def test_every_user_error_is_one_line_and_status_2(exc, monkeypatch, capsys, session_root):
    def boom(args):
        raise exc

    monkeypatch.setattr(wb_cli, "cmd_sessions", boom)
    assert wb_cli.main(["sessions"]) == wb_cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err == f"workbench: {exc}\n"


def test_errors_raised_where_the_engine_raises_them_are_user_errors():
    """Raised by the code that raises them, not built from engine.errors: a class defined
    twice (one copy outside the hierarchy) would pass the test above and still print a traceback."""
    from engine.sindy.budget import check_library

    with pytest.raises(errors.UserError, match="SINDy library refused"):
        check_library(1000, 40, 40, 6)


def test_a_bug_keeps_its_traceback(monkeypatch, session_root):
    def boom(args):
        raise KeyError("a bug, not the user's")

    monkeypatch.setattr(wb_cli, "cmd_sessions", boom)
    with pytest.raises(KeyError):
        wb_cli.main(["sessions"])


def test_headless_and_detach_together_are_refused(session_root):
    proc = cli("run", "fake", "--detach", "--headless")
    assert proc.returncode == 2
    assert "--headless: not allowed with argument --detach" in proc.stderr
    assert proc.stdout == ""  # nothing started: no job id


def test_the_old_homes_hold_the_same_classes():
    """Code that catches an error by its old name still catches what the engine raises."""
    from engine.analyses.base import ParamError
    from engine.data.errors import DataError
    from engine.parallel import ParallelError
    from engine.reporting import Cancelled
    from engine.session import SessionBusy, SessionError
    from engine.train import NonFiniteLoss, TrainingError

    assert (ParamError, DataError, ParallelError, Cancelled, SessionError, SessionBusy, NonFiniteLoss, TrainingError) == (
        errors.ParamError, errors.DataError, errors.ParallelError, errors.Cancelled, errors.SessionError,
        errors.SessionBusy, errors.NonFiniteLoss, errors.TrainingError)
    assert not issubclass(errors.Cancelled, errors.UserError)  # a cancel is recorded as such, not as a failure
    assert issubclass(errors.ParamError, ValueError) and issubclass(errors.TrainingError, RuntimeError)
