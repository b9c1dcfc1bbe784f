"""One way to run embarrassingly parallel work: joblib over a backend chosen per session.

Every parallel loop of the engine (SINDy ensembles, :func:`engine.metrics.score_table`,
MEIs per neuron) goes through :func:`imap` (results as they finish) or :func:`pmap`
(results in order).  Which machines run the work is not the call site's business: it is
the session's ``parallel`` setting, entered around every job step by the job runner.

``loky``
    joblib's default, processes on this machine.  Call sites keep their own local
    preference (``prefer="threads"`` where the work releases the GIL and copying the inputs
    would cost more than it saves).
``dask``
    a ``distributed`` Client: on the scheduler at ``address`` (``tcp://host:8786``), or on a
    ``LocalCluster`` of ``n_workers`` single-threaded processes started on first use and
    closed when the step ends.  Needs ``pip install "neuro-workbench[dask]"``.
``ray``
    ray's joblib backend on the cluster at ``address`` (or a local ray).  Needs
    ``pip install "neuro-workbench[ray]"``.

Where the cluster is, is never read from a session: a session is a file someone may have
handed you, and a scheduler it named would receive your data and send back pickles that
run on your machine.  A session stores only the backend's name and the number of local
workers, signed with a key that only this user has (``parallel.key`` in the user's config
folder); the address comes from the user's own settings: ``$WORKBENCH_DASK_ADDRESS`` /
``$WORKBENCH_RAY_ADDRESS``, else ``parallel.toml`` in the same folder (written by
``workbench parallel set address ...``: the user typing it is the confirmation).  A session
whose setting this user did not sign (made elsewhere, or by an older version that stored an
address) runs on loky, and :func:`notice` says so in one line.

Under ``dask``/``ray`` a call site's ``n_jobs=None`` means every worker of the cluster; an
explicit ``n_jobs=1`` runs in this process (and so does joblib on a one-core dask cluster).  Progress (``done/total``)
goes to the step's reporter as results arrive, from every backend; a cancel request stops
the loop at the next result and drops the tasks not yet started.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import json
import logging
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from engine.errors import Cancelled, ParallelError

BACKENDS = ("loky", "dask", "ray")
# the session's setting lives in its params table under this name (it is no analysis)
CONFIG_SCOPE = "workbench.parallel"
DASK_CONNECT_TIMEOUT_S = 10
MAX_WORKERS = 1024  # local worker processes; a session cannot ask this machine for more
USER_SETTINGS_ENV = "WORKBENCH_PARALLEL_CONFIG"  # path of the user's parallel.toml
ADDRESS_ENV = {"dask": "WORKBENCH_DASK_ADDRESS", "ray": "WORKBENCH_RAY_ADDRESS"}


@dataclass(frozen=True)
class ParallelConfig:
    backend: str = "loky"
    address: str | None = None  # dask scheduler / ray cluster; None: start one locally
    n_workers: int | None = None  # local workers (LocalCluster, loky); None: all cores

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ParallelError(f"unknown parallel backend {self.backend!r} (known: {', '.join(BACKENDS)})")
        if self.n_workers is not None and (isinstance(self.n_workers, bool)
                                           or not isinstance(self.n_workers, int) or self.n_workers < 1):
            raise ParallelError(f"n_workers must be a positive integer, got {self.n_workers!r}")
        if self.n_workers is not None and self.n_workers > MAX_WORKERS:
            raise ParallelError(f"n_workers must be at most {MAX_WORKERS}, got {self.n_workers}")
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise ParallelError(f"address must be a non-empty string, got {self.address!r}")
        if self.address is not None and self.backend == "loky":
            raise ParallelError("an address needs the dask or ray backend (loky runs on this machine)")


def backend_from_config(values: dict[str, Any] | None) -> ParallelConfig:
    """A :class:`ParallelConfig` from stored or typed values (strings are parsed)."""
    values = dict(values or {})
    unknown = set(values) - {"backend", "address", "n_workers"}
    if unknown:
        raise ParallelError(f"unknown parallel setting(s) {sorted(unknown)} (known: backend, address, n_workers)")
    n = values.get("n_workers")
    if isinstance(n, str):
        n = n.strip()
        if n.lower() in ("", "none", "auto"):
            n = None
        else:
            try:
                n = int(n)
            except ValueError:
                raise ParallelError(f"n_workers must be a positive integer, got {n!r}") from None
    addr = values.get("address")
    if isinstance(addr, str) and addr.strip().lower() in ("", "none", "local"):
        addr = None
    return ParallelConfig(backend=str(values.get("backend", "loky")).strip().lower(), address=addr, n_workers=n)


# --------------------------------------------------------------------------- the user's own settings


def user_settings_path() -> Path:
    """``$WORKBENCH_PARALLEL_CONFIG``, else ``parallel.toml`` in the user's config folder."""
    env = os.environ.get(USER_SETTINGS_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("workbench")) / "parallel.toml"


def _read_user_settings() -> dict[str, str]:
    path = user_settings_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ParallelError(f"{path}: cannot read the parallel settings ({exc})") from None
    known = {f"{b}_address" for b in ADDRESS_ENV}
    bad = sorted(set(data) - known) + sorted(k for k in set(data) & known if not isinstance(data[k], str))
    if bad:
        raise ParallelError(f"{path}: unknown or non-text setting(s) {bad} (known: {', '.join(sorted(known))})")
    return data


def user_address(backend: str) -> tuple[str | None, str]:
    """(address, where it came from) of ``backend``'s cluster in the user's own settings;
    (None, "local") when none is set."""
    if backend not in ADDRESS_ENV:
        return None, "local"
    env = os.environ.get(ADDRESS_ENV[backend], "").strip()
    if env:
        return env, f"${ADDRESS_ENV[backend]}"
    addr = _read_user_settings().get(f"{backend}_address", "").strip()
    return (addr, str(user_settings_path())) if addr else (None, "local")


def set_user_address(backend: str, address: str | None) -> Path:
    """Store (``None``: forget) the address of ``backend``'s cluster in the user's settings."""
    if backend not in ADDRESS_ENV:
        raise ParallelError(f"an address needs the dask or ray backend, not {backend!r} (loky runs on this machine)")
    if address is not None and (not address.strip() or any(c in address for c in "\"\n\r")):
        raise ParallelError(f"not a usable address: {address!r}")
    data = _read_user_settings()
    key = f"{backend}_address"
    if address is None or address.strip().lower() in ("local", "none"):
        data.pop(key, None)
    else:
        data[key] = address.strip()
    path = user_settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "# cluster addresses for `workbench parallel` (yours; never read from a session)\n"
    body += "".join(f"{k} = {json.dumps(v)}\n" for k, v in sorted(data.items()))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _user_key() -> bytes:
    """This user's signing key (created on first use, readable by the user only)."""
    path = user_settings_path().with_name("parallel.key")
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ParallelError(f"cannot read the signing key {path}: {exc}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        return path.read_bytes()
    except OSError as exc:
        raise ParallelError(f"cannot keep a signing key in {path} ({exc}); parallel settings stay local") from None


def _signature(session, backend: str, n_workers: int | None) -> str:
    """Binds a setting to this user and this session's folder: copied elsewhere, or written
    by someone else, it no longer verifies."""
    msg = f"{Path(session.path).resolve()}|{backend}|{n_workers}".encode()
    return hmac.new(_user_key(), msg, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- a session's setting


def _stored(session) -> tuple[ParallelConfig, str | None]:
    """(the setting to use, why the stored one was set aside or None)."""
    try:
        values = dict(session.params(CONFIG_SCOPE))
    except (ValueError, TypeError):  # a row that is not JSON (hand-edited)
        values = {"backend": "?", "signature": None}
    if not values:
        return ParallelConfig(), None
    backend, n, sig = values.get("backend") or "loky", values.get("n_workers"), values.get("signature")
    try:
        signed = isinstance(sig, str) and hmac.compare_digest(sig, _signature(session, str(backend), n))
    except (ParallelError, TypeError):  # no key here, or a non-ASCII "signature": nothing verifies
        signed = False
    if values.get("address"):
        why = f"it named a cluster address ({_short(values['address'])}), which is never taken from a session"
    elif not signed:
        if backend == "loky":
            return ParallelConfig(), None  # nothing to reset: only a worker count not set by you, dropped
        why = "it was not set by you on this machine"
    else:
        try:
            return ParallelConfig(backend=str(backend), n_workers=n), None
        except ParallelError as exc:
            why = str(exc)
    return ParallelConfig(), (f"session {_short(session.name)}: its parallel backend {_short(backend)!r} was reset to "
                              f"loky (local): {why}; choose one with `workbench parallel set backend ...`")


def _short(value: Any) -> str:
    from engine.text import safe_line

    text = safe_line(value)
    return text if len(text) <= 60 else text[:59] + "…"


def load_config(session) -> ParallelConfig:
    """The session's setting with the cluster address from the user's own settings; a
    setting this user did not make gives loky (see :func:`notice`)."""
    cfg, _ = _stored(session)
    if cfg.backend == "loky":
        return cfg
    address, _ = user_address(cfg.backend)
    return ParallelConfig(cfg.backend, address, cfg.n_workers)


def notice(session, reset: bool = True) -> str | None:
    """One line when the session's stored setting is not used (made elsewhere), else None.

    With ``reset`` the stored setting is replaced by loky where the session is writable,
    so that the line is said once."""
    _, why = _stored(session)
    if why and reset and not getattr(session, "readonly", False):
        with contextlib.suppress(Exception):
            session.set_params(CONFIG_SCOPE, {"backend": "loky", "address": None, "n_workers": None,
                                              "signature": None})
    return why


def save_config(session, **changes: Any) -> ParallelConfig:
    """Validate and store a session's parallel setting; returns the whole new setting.

    ``address`` goes to the user's own settings (for the session's backend, or the
    ``backend`` given with it), never into the session.  Switching to ``loky`` leaves
    the user's addresses alone (they are not the session's)."""
    cfg, _ = _stored(session)
    merged = {"backend": cfg.backend, "n_workers": cfg.n_workers, **changes}
    address = merged.pop("address", None)
    new = backend_from_config(merged)
    if isinstance(address, str) and address.strip().lower() in ("", "none", "local"):
        address = None
    if address is not None and not isinstance(address, str):
        raise ParallelError(f"address must be text such as tcp://host:8786, got {address!r}")
    has_address = address is not None
    if has_address and new.backend == "loky":
        raise ParallelError("an address needs the dask or ray backend (loky runs on this machine)")
    check_installed(new.backend)  # jobs run here: say now, not at their first parallel loop
    if "address" in changes and new.backend != "loky":
        set_user_address(new.backend, address if has_address else None)
    session.set_params(CONFIG_SCOPE, {"backend": new.backend, "n_workers": new.n_workers, "address": None,
                                      "signature": _signature(session, new.backend, new.n_workers)})
    return load_config(session)


_EXTRA = {"dask": ("distributed", "dask"), "ray": ("ray", "ray")}


def check_installed(backend: str) -> None:
    """Raise :class:`ParallelError` with the pip line if the backend's package is missing."""
    import importlib.util

    if backend in _EXTRA:
        module, extra = _EXTRA[backend]
        if importlib.util.find_spec(module) is None:
            raise ParallelError(f'the {backend} backend needs {module}: pip install "neuro-workbench[{extra}]"')


# --------------------------------------------------------------------------- the active backend


class ActiveBackend:
    """The backend entered by :func:`parallel_backend`; starts its cluster on first use."""

    def __init__(self, config: ParallelConfig, reporter=None):
        self.config = config
        self.reporter = reporter
        self._stack = contextlib.ExitStack()
        self._started = False
        self.client = None  # the dask Client, once started

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


# --------------------------------------------------------------------------- the one helper


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


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


__all__ = ["BACKENDS", "ParallelConfig", "ParallelError", "active", "backend_from_config", "check_installed", "imap",
           "load_config", "notice", "parallel_backend", "pmap", "save_config", "session_backend", "set_user_address",
           "user_address", "user_settings_path"]
