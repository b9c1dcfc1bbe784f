"""A SINDy library is sized before it is built, and a long fit stops within a second of a cancel
(issue 22 item 8: a degree-40 demo fit ran 11 minutes and ignored SIGTERM)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from engine.analyses.base import ParamError, StepContext
from engine.reporting import Cancelled, RecordingReporter
from engine.sindy import Sindy, threshold_sweep
from engine.sindy.budget import LibraryTooLarge, check_library, library_need


def test_need_counts_the_library_and_its_memory():
    need = library_need(14_400, 2, 2, 40)
    assert need.n_features == 861  # C(42, 2): every monomial of x0, x1 up to degree 40
    assert need.bytes >= 14_400 * 861 * 8  # at least the library matrix in float64


def test_degree_40_is_refused_with_features_and_memory(tmp_path):
    from engine.analyses.sindy_fit import fit_and_sweep

    z = np.random.default_rng(0).normal(size=(6, 300, 2))
    ctx = StepContext(workdir=tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(ParamError) as err:
        fit_and_sweep(ctx, "demo", list(z), 0.01, degree=40, threshold=0.05, alpha=0.0)
    msg = str(err.value)
    assert time.perf_counter() - t0 < 1.0  # refused before building anything
    assert "\n" not in msg and "861 library features" in msg and "MiB" in msg


def test_memory_beyond_the_machine_is_refused():
    with pytest.raises(LibraryTooLarge, match=r"100,000 samples.*GiB, more than the 1\.0 GiB available"):
        check_library(100_000, 40, 40, 3, memory=2**30)  # 12,341 features: 9.3 GiB of Θ alone
    assert check_library(1000, 3, 3, 3, memory=2**30).n_features == 20


def test_direct_fit_checks_too():
    x = np.random.default_rng(1).normal(size=(200, 2))
    with pytest.raises(LibraryTooLarge, match="861 library features"):
        Sindy(degree=40).fit(x, t=0.01)
    with pytest.raises(LibraryTooLarge, match="10 library features.*more than 9 features"):
        Sindy(degree=3).fit(x, t=0.01, max_features=9)


def test_cancel_stops_a_long_sweep_within_a_second():
    # 3 states at degree 12: 455 features, ill-conditioned (alpha 0): the uncancelled sweep
    # runs for many seconds of Gram products, eigen-solves and refits
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 0.05, (20_000, 3)), 0)
    x /= np.abs(x).max()
    rep = RecordingReporter()
    flag = threading.Event()
    times: dict[str, float] = {}

    def cancel():
        if flag.is_set() and "asked" not in times:
            times["asked"] = time.perf_counter()
        return flag.is_set()

    threading.Timer(0.4, flag.set).start()
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        threshold_sweep(x, t=0.01, model=Sindy(degree=12, alpha=0.0), thresholds=64, reporter=rep, cancel=cancel)
    stopped = time.perf_counter()
    assert stopped - t0 >= 0.4  # it was still working when the cancel came
    assert stopped - (t0 + 0.4) < 1.0  # ... and stopped within a second of it
    assert not any(e["message"] == "done" for e in rep.of("progress"))


def test_cancel_through_the_reporter_in_a_step(tmp_path):
    from engine.analyses.sindy_fit import fit_and_sweep

    rep = RecordingReporter(artifact_root=tmp_path)
    rep.cancel_event.set()  # SIGTERM sets this flag in a job
    z = np.random.default_rng(2).normal(size=(6, 300, 2))
    with pytest.raises(Cancelled):
        fit_and_sweep(StepContext(workdir=tmp_path, reporter=rep), "demo", list(z), 0.01, degree=3,
                      threshold=0.05, alpha=0.0)
