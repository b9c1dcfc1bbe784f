"""The backend a job step runs its parallel loops on: entered around the step, its cluster
(dask LocalCluster or scheduler, ray) started on first use and closed at the end."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from typing import Any, Iterator

from engine.errors import ParallelError
from engine.parallel.config import ParallelConfig, backend_from_config
from engine.parallel.settings import load_config, notice

DASK_CONNECT_TIMEOUT_S = 10


class ActiveBackend:
    """The backend entered by :func:`parallel_backend`; starts its cluster on first use."""

    def __init__(self, config: ParallelConfig, reporter=None):
        self.config = config
        self.reporter = reporter
        self._stack = contextlib.ExitStack()
        self._started = False
        self.client: Any = None  # the dask Client, once started

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> "ActiveBackend":
        """Connect to (or start) the cluster now; :func:`imap` does it on first use."""
        if self._started:
            return self
        cfg = self.config
        if cfg.backend == "dask":
            self.client = self._start_dask(cfg)
        elif cfg.backend == "ray":
            self._start_ray(cfg)
        self._started = True
        return self

    def _start_dask(self, cfg: ParallelConfig):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ParallelError('the dask backend needs dask.distributed: pip install "neuro-workbench[dask]"') from None
        if cfg.address:
            try:
                client = Client(cfg.address, timeout=DASK_CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as exc:
                raise ParallelError(f"cannot reach the dask scheduler at {cfg.address}: {exc}") from None
            self._stack.callback(client.close)
            return client
        # single-threaded worker processes: the workers are the parallelism (no BLAS
        # oversubscription); no dashboard, so that several sessions on one host never clash
        cluster = LocalCluster(n_workers=cfg.n_workers or _cores(), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        self._stack.callback(cluster.close)
        client = Client(cluster)
        self._stack.callback(client.close)  # runs before cluster.close (LIFO)
        return client

    def _start_ray(self, cfg: ParallelConfig) -> None:
        try:
            import ray
            from ray.util.joblib import register_ray
        except ImportError:
            raise ParallelError('the ray backend needs ray: pip install "neuro-workbench[ray]"') from None
        register_ray()
        if not ray.is_initialized():
            kw = {"address": cfg.address} if cfg.address else {"num_cpus": cfg.n_workers or _cores()}
            try:
                ray.init(include_dashboard=False, log_to_driver=False, **kw)
            except (ConnectionError, RuntimeError) as exc:
                raise ParallelError(f"cannot start or reach ray at {cfg.address or 'localhost'}: {exc}") from None
            self._stack.callback(ray.shutdown)

    def joblib_config(self, n_jobs: int | None) -> contextlib.AbstractContextManager:
        """The ``joblib.parallel_config`` that sends a loop to this backend."""
        import joblib

        cfg = self.config
        if cfg.backend == "loky":
            # leave the backend to the call site's ``prefer``; only the worker count is ours
            return joblib.parallel_config(n_jobs=n_jobs if n_jobs is not None else (cfg.n_workers or -1))
        self.start()
        n = -1 if n_jobs is None else n_jobs
        if cfg.backend == "dask":
            return joblib.parallel_config(backend="dask", n_jobs=n, client=self.client)
        return joblib.parallel_config(backend="ray", n_jobs=n)

    def close(self) -> None:
        self._stack.close()
        self._started = False
        self.client = None


_ACTIVE: contextvars.ContextVar[ActiveBackend | None] = contextvars.ContextVar("wb_parallel", default=None)


def active() -> ActiveBackend | None:
    return _ACTIVE.get()


@contextlib.contextmanager
def parallel_backend(name: str | ParallelConfig = "loky", address: str | None = None,
                     n_workers: int | None = None, *, reporter=None, start: bool = False
                     ) -> Iterator[ActiveBackend]:
    """Send every :func:`imap`/:func:`pmap` inside the block to one backend.

    The cluster (dask LocalCluster, ray) starts on first use (``start=True``: now) and
    is closed at the end of the block; a remote scheduler's client is disconnected.
    ``reporter`` receives the progress of loops that were not given their own.
    """
    cfg = name if isinstance(name, ParallelConfig) else backend_from_config(
        {"backend": name, "address": address, "n_workers": n_workers})
    handle = ActiveBackend(cfg, reporter)
    token = _ACTIVE.set(handle)
    try:
        if start:
            handle.start()
        yield handle
    finally:
        _ACTIVE.reset(token)
        handle.close()


def session_backend(session, reporter=None) -> contextlib.AbstractContextManager:
    """The session's configured backend (what the job runner enters around each step);
    a setting made elsewhere runs on loky and the step's log says so."""
    why = notice(session, reset=False)
    if why and reporter is not None:
        reporter.log(why, level="warning")
    return parallel_backend(load_config(session), reporter=reporter)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1
