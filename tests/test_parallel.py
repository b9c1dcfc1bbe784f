"""engine.parallel: one helper over joblib, backends chosen per session (loky, dask, ray)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from engine import parallel
from engine.analyses.base import Analysis, Step
from engine.parallel import ParallelConfig, ParallelError, imap, parallel_backend, pmap
from engine.reporting import Cancelled, RecordingReporter
from tests.helpers.process import cli


def _slow_first(x):
    time.sleep(0.6 if x == 0 else 0.02)
    return x * x


def _pid(x):
    time.sleep(0.2)  # long enough that both workers get a share
    return os.getpid()


def test_pmap_keeps_order_and_imap_yields_as_finished():
    assert pmap(_slow_first, range(8), backend="threading", n_jobs=2) == [i * i for i in range(8)]
    got = list(imap(_slow_first, range(8), backend="threading", n_jobs=2))
    assert sorted(got) == [(i, i * i) for i in range(8)]
    assert got[0][0] != 0  # item 0 is the slowest: an ordered map would have waited for it


def test_progress_events_and_cancel():
    rep = RecordingReporter()
    pmap(_slow_first, range(5), n_jobs=1, reporter=rep, message="squares")
    prog = rep.of("progress")
    assert [(e["done"], e["total"]) for e in prog] == [(i, 5) for i in range(6)]
    assert all(e["message"] == "squares" for e in prog)

    rep = RecordingReporter()
    seen = []
    with pytest.raises(Cancelled):
        for i, _ in imap(_slow_first, range(1, 20), n_jobs=1, reporter=rep):
            seen.append(i)
            if len(seen) == 3:
                rep.cancel_event.set()
    assert len(seen) == 3


def test_config_parsing_and_validation(session):
    assert parallel.load_config(session) == ParallelConfig()  # loky, nothing stored
    cfg = parallel.save_config(session, backend="dask", n_workers="3")
    assert cfg == ParallelConfig("dask", None, 3) == parallel.load_config(session)
    cfg = parallel.save_config(session, address="tcp://10.0.0.5:8786")
    assert cfg.address == "tcp://10.0.0.5:8786" and cfg.n_workers == 3
    assert parallel.save_config(session, backend="loky").address is None  # address dropped
    for bad, msg in [({"backend": "spark"}, "unknown parallel backend"),
                     ({"n_workers": "0"}, "positive integer"),
                     ({"n_workers": "two"}, "positive integer"),
                     ({"backend": "loky", "address": "tcp://x:1"}, "needs the dask or ray"),
                     ({"threads": 2}, "unknown parallel setting")]:
        with pytest.raises(ParallelError, match=msg):
            parallel.save_config(session, **bad)
    # a rejected change is not stored
    assert parallel.load_config(session) == ParallelConfig("loky", None, 3)


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel.backend, "DASK_CONNECT_TIMEOUT_S", 1)
    with parallel_backend("dask", address="tcp://127.0.0.1:9") as h:
        with pytest.raises(ParallelError, match="cannot reach the dask scheduler at tcp://127.0.0.1:9"):
            pmap(abs, [1, 2])
        assert not h.started


@pytest.fixture(scope="module")
def dask_cluster():
    """One two-worker LocalCluster for the module (starting one costs ~1-2 s)."""
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    yield cluster.scheduler_address
    cluster.close()


def test_dask_runs_on_the_workers_with_progress(dask_cluster):
    rep = RecordingReporter()
    with parallel_backend("dask", address=dask_cluster, reporter=rep) as h:
        pids = pmap(_pid, range(6))
        assert h.started and h.client is not None
        n_workers = len(h.client.scheduler_info()["workers"])
    assert os.getpid() not in pids and len(set(pids)) == n_workers == 2
    assert [e["done"] for e in rep.of("progress")] == list(range(7))
    with parallel_backend("dask", address=dask_cluster):  # n_jobs=1 stays in this process
        assert set(pmap(_pid, range(2), n_jobs=1)) == {os.getpid()}


def test_ensemble_and_score_table_on_dask_match_local(dask_cluster):
    from engine.metrics import score_table
    from engine.sindy import Sindy
    from engine.sindy.bagging import ensemble

    rng = np.random.default_rng(0)
    t = np.arange(600) * 0.01
    x = np.stack([np.sin(t), np.cos(t)], 1) + rng.normal(0, 0.01, (600, 2))
    kw = dict(model=Sindy(degree=2, threshold=0.3), n_models=8, method="samples", random_state=3)
    local = ensemble(x, 0.01, n_jobs=1, **kw)
    preds = {f"m{i}": x + rng.normal(0, 0.1 * (i + 1), x.shape) for i in range(4)}
    big = {k: np.tile(v, (40, 1)) for k, v in preds.items()}  # past score_table's in-process size
    table_local = score_table(big, np.tile(x, (40, 1)), metrics=("mae",), n_jobs=1)
    with parallel_backend("dask", address=dask_cluster) as h:
        remote = ensemble(x, 0.01, **kw)
        table_remote = score_table(big, np.tile(x, (40, 1)), metrics=("mae",))
        assert h.started
    np.testing.assert_array_equal(remote.coefs, local.coefs)  # same bags, same order
    np.testing.assert_allclose(table_remote["mae"].to_numpy(), table_local["mae"].to_numpy(), rtol=1e-12)
    assert list(table_remote.index) == list(preds)  # ordered by model, not by finishing time
    assert table_remote["mae"].is_monotonic_increasing  # noise grows with i


# A one-step analysis for the runner test: which processes ran its parallel loop.
def _pids_step(ctx, p):
    return {"pids": sorted(set(pmap(_pid, range(4))))}


ANALYSIS = Analysis(name="ptest", title="parallel test",
                    steps=(Step("pids", "tests.test_parallel:_pids_step", "worker pids"),))


def test_job_runner_uses_the_sessions_backend(session, dask_cluster):
    from engine import analyses
    from engine.jobs import runner

    analyses.register("ptest", "tests.test_parallel")
    parallel.save_config(session, backend="dask", address=dask_cluster)
    job = runner.run_job(session, runner.submit(session, "ptest"))
    assert job.state == "finished", job.error
    assert os.getpid() not in job.result["pids"] and len(job.result["pids"]) == 2
    prog = [e.payload for e in session.events(job.id, kinds=("progress",))]
    assert prog and prog[-1]["done"] == prog[-1]["total"] == 4 and prog[-1]["parallel"]
    assert parallel.active() is None  # the job's backend is left when it ends

    parallel.save_config(session, backend="loky")
    job = runner.run_job(session, runner.submit(session, "ptest"))
    assert job.state == "finished" and os.getpid() not in job.result["pids"]  # loky processes


class _FakeRay:
    """The part of ray that engine.parallel uses: init/is_initialized/shutdown and
    ``ray.util.joblib.register_ray``, whose joblib backend runs on a thread pool that, like
    ray's (a multiprocessing pool), cannot stream results.  The real package is an
    optional extra; this runs the binding in every test run."""

    def __init__(self, fail: Exception | None = None):
        self.inits: list[dict] = []
        self.shutdowns = 0
        self.initialized = False
        self.fail = fail

    def modules(self) -> dict:
        import types

        from joblib._parallel_backends import ThreadingBackend

        class PoolBackend(ThreadingBackend):
            supports_return_generator = False

        ray, util, rjoblib = (types.ModuleType(n) for n in ("ray", "ray.util", "ray.util.joblib"))
        ray.init, ray.is_initialized, ray.shutdown = self.init, lambda: self.initialized, self.shutdown
        ray.util, util.joblib = util, rjoblib
        rjoblib.register_ray = lambda: __import__("joblib").register_parallel_backend("ray", PoolBackend)
        return {"ray": ray, "ray.util": util, "ray.util.joblib": rjoblib}

    def init(self, **kw):
        if self.fail is not None:
            raise self.fail
        self.inits.append(kw)
        self.initialized = True

    def shutdown(self):
        self.shutdowns += 1
        self.initialized = False


@pytest.fixture
def fake_ray(monkeypatch):
    import sys

    import joblib.parallel

    # register_ray adds "ray" to joblib's backends: to a copy, dropped after the test
    monkeypatch.setattr(joblib.parallel, "BACKENDS", dict(joblib.parallel.BACKENDS))

    def install(fake: _FakeRay) -> _FakeRay:
        for name, module in fake.modules().items():
            monkeypatch.setitem(sys.modules, name, module)
        return fake

    return install


def test_ray_backend_starts_a_local_ray_runs_in_waves_and_shuts_it_down(fake_ray):
    ray = fake_ray(_FakeRay())
    rep = RecordingReporter()
    with parallel_backend("ray", n_workers=2, reporter=rep) as handle:
        assert ray.inits == []  # started on first use
        assert pmap(_slow_first, range(6)) == [i * i for i in range(6)]
        assert handle.started and ray.shutdowns == 0
    assert ray.inits == [{"include_dashboard": False, "log_to_driver": False, "num_cpus": 2}]
    assert ray.shutdowns == 1  # the ray it started ends with the block
    # ray's joblib backend cannot stream results: progress still comes, wave by wave
    assert [e["done"] for e in rep.of("progress")] == list(range(7))


def test_ray_backend_cancels_between_waves(fake_ray):
    fake_ray(_FakeRay())
    rep = RecordingReporter()
    ran: list[int] = []

    def work(x):
        ran.append(x)
        rep.cancel_event.set()  # a cancel arrives while the first wave runs
        return x

    with parallel_backend("ray"), pytest.raises(Cancelled):
        pmap(work, range(40), n_jobs=2, reporter=rep)
    assert len(ran) == 4  # one wave (two tasks per worker) ran; the later ones never started


def test_ray_backend_joins_a_running_ray_or_says_why_it_cannot(fake_ray):
    ray = fake_ray(_FakeRay())
    ray.initialized = True  # e.g. a ray the user started in this process: left running
    with parallel_backend("ray", address="ray://head:10001"):
        assert pmap(abs, [-1, -2]) == [1, 2]
    assert ray.inits == [] and ray.shutdowns == 0

    down = fake_ray(_FakeRay(fail=ConnectionError("connection refused")))
    with parallel_backend("ray", address="ray://head:10001"), pytest.raises(
            ParallelError, match="cannot start or reach ray at ray://head:10001: connection refused"):
        pmap(abs, [1])
    assert down.shutdowns == 0


def test_ray_backend_when_installed():
    pytest.importorskip("ray")
    rep = RecordingReporter()
    with parallel_backend("ray", n_workers=2, reporter=rep):
        assert pmap(_slow_first, range(4)) == [0, 1, 4, 9]
    # ray's joblib backend cannot stream results: progress still comes, wave by wave
    assert [e["done"] for e in rep.of("progress")] == [0, 1, 2, 3, 4]


def test_selecting_a_backend_that_is_not_installed_is_refused(session, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ParallelError, match=r'pip install "neuro-workbench\[ray\]"'):
        parallel.save_config(session, backend="ray")
    assert parallel.load_config(session).backend == "loky"
    assert parallel.save_config(session, backend="dask").backend == "dask"  # installed for the tests


def test_missing_optional_package_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *a, **kw):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("no ray here")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with parallel_backend("ray"), pytest.raises(ParallelError, match=r'pip install "neuro-workbench\[ray\]"'):
        pmap(abs, [1])


def test_cli_parallel_set_show_and_errors(session_root):
    out = cli("--session", "cfg", "parallel", "set", "backend", "dask", check=True)
    assert "backend = dask" in out.stdout
    cli("--session", "cfg", "parallel", "set", "n_workers", "4", check=True)
    shown = cli("--session", "cfg", "parallel", check=True).stdout
    assert "backend = dask" in shown and "n_workers = 4" in shown and "address = local" in shown, shown
    bad = cli("--session", "cfg", "parallel", "set", "backend", "spark")
    assert bad.returncode == 2 and "unknown parallel backend" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("--session", "cfg", "parallel", "set", "nope", "1")
    assert bad.returncode == 2 and "known: backend, address, n_workers" in bad.stderr
    cli("--session", "cfg", "parallel", "unset", "n_workers", check=True)
    assert "n_workers = auto" in cli("--session", "cfg", "parallel", check=True).stdout


async def test_palette_picks_the_sessions_backend(session, monkeypatch):
    import workbench.device_probe as probe
    from workbench.app import WorkbenchApp
    from workbench.commands import AnalysisCommands

    monkeypatch.setattr(probe, "probe", lambda: ("CPU (test)", []))
    app = WorkbenchApp(session=session)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)

        def entries():  # what the command palette lists (typing into it is slow under load)
            cmds = AnalysisCommands(app.screen)._commands()
            return {title: (cb, help_text) for title, cb, help_text in cmds if title.startswith("Parallel")}

        listed = entries()
        assert set(listed) == {"Parallel backend: loky", "Parallel backend: dask", "Parallel backend: ray"}
        assert listed["Parallel backend: loky"][1].endswith("(current)")
        listed["Parallel backend: dask"][0]()
        await pilot.pause(0.2)
        assert parallel.load_config(app.session).backend == "dask"
        assert entries()["Parallel backend: dask"][1].endswith("(current)")
        assert any("parallel backend: dask" in n.message for n in app._notifications)
