"""The one helper for embarrassingly parallel loops: :func:`imap` (results as they finish)
and :func:`pmap` (results in order), on the active backend, with progress and cancel."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

from engine.errors import Cancelled
from engine.parallel.backend import ActiveBackend, _cores, active
from engine.parallel.config import ParallelConfig


def _indexed(fn: Callable, i: int, item: Any) -> tuple[int, Any]:
    if not callable(fn):  # a dask future of the function that reached this process unresolved
        fn = fn.result()
    return i, fn(item)


def imap(fn: Callable[[Any], Any], items: Iterable, *, n_jobs: int | None = None,
         backend: str | None = None, prefer: str | None = None, reporter=None,
         message: str = "") -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(item))`` as results finish, on the active backend.

    ``backend`` (a joblib backend name, e.g. ``"threading"``) forces one for this call;
    ``prefer="threads"`` is the call site's soft hint, used unless a dask/ray backend is
    active.  ``reporter`` (default: the active backend's) gets ``progress(done, total)``
    and is checked for cancel between results (raises :class:`Cancelled`).
    """
    import joblib

    items = list(items)
    total = len(items)
    handle = active()
    reporter = reporter if reporter is not None else (handle.reporter if handle else None)
    if reporter is not None:
        reporter.progress(0, total, message, parallel=True)
    if total == 0:
        return
    if backend is None and n_jobs != 1 and handle is not None and handle.config.backend == "dask":
        # ship the function (and the arrays its closure holds, e.g. a whole library matrix)
        # to every worker once, not once per task: the tasks then name it by its future.
        # (joblib runs the tasks in this process when the cluster has a single core.)
        handle.start()
        if sum(handle.client.nthreads().values()) > 1:
            fn = handle.client.scatter(fn, hash=False, broadcast=True)  # no worker favoured
    tasks = [joblib.delayed(_indexed)(fn, i, it) for i, it in enumerate(items)]
    if n_jobs == 1 and backend is None:  # in this process, whatever the cluster
        ctx = joblib.parallel_config(backend="sequential")
    elif backend is not None:
        ctx = joblib.parallel_config(backend=backend, n_jobs=n_jobs if n_jobs is not None else -1)
    else:  # outside any job: the default setting (loky, every core)
        ctx = (handle or ActiveBackend(ParallelConfig())).joblib_config(n_jobs)
    done = 0
    with ctx:
        for i, out in _run(tasks, prefer):
            done += 1
            if reporter is not None:
                reporter.progress(done, total, message, parallel=True)
                if reporter.cancelled and done < total:
                    raise Cancelled()
            yield i, out


def _run(tasks: list, prefer: str | None) -> Iterator[tuple[int, Any]]:
    import joblib

    backend, _ = joblib.parallel.get_active_backend(prefer=prefer)
    if getattr(backend, "supports_return_generator", False) or type(backend).__name__ == "SequentialBackend":
        gen = joblib.Parallel(prefer=prefer, return_as="generator_unordered")(tasks)
        try:
            yield from gen
        finally:
            gen.close()  # a cancel or an error drops the tasks not yet started
        return
    # ray's joblib backend (a multiprocessing pool) cannot stream results: run waves of
    # a few tasks per worker so that progress and cancel still come between waves
    par = joblib.Parallel(prefer=prefer)
    wave = max(1, 2 * abs(par.n_jobs if par.n_jobs and par.n_jobs > 0 else _cores()))
    for a in range(0, len(tasks), wave):
        yield from par(tasks[a:a + wave])


def pmap(fn: Callable[[Any], Any], items: Sequence, **kw: Any) -> list:
    """:func:`imap` collected in the order of ``items``."""
    out: list[Any] = [None] * len(items)
    for i, r in imap(fn, items, **kw):
        out[i] = r
    return out
