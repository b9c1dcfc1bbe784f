"""The session store: ``sessions/<name>/session.sqlite`` (WAL) plus ``artifacts/``.

A session is the unit of resumption.  It holds parameters, job records, the
events jobs write (progress, metrics, logs, artifacts, end states), metric
tables, equations and the TUI's state, so that reopening it redraws the same
screen.  Large arrays and checkpoints live in ``artifacts/``, written through
:mod:`engine.atomic` (temp file + rename).

Concurrency: SQLite in WAL mode lets one writer and many readers work at once;
every process (TUI, each job worker, a headless run) opens its own connection
with a busy timeout, and each write is one short transaction.  The TUI also
takes an advisory lock (``tui.lock``): a second TUI on the same session opens it
read-only and follows the first one's updates.

Being busy is not failing: opening retries "database is locked" with backoff (several
processes may create one session at once; creation itself is serialised by an flock), and
a running job's store is *patient*: its writes wait out another process's lock for as
long as it takes.  A session on read-only media (or opened by a read-only command) opens
read-only and is never migrated; a 0-byte database is an error, never a new session.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from engine.atomic import _json_default
from engine.errors import SessionBusy as SessionBusy, SessionError as SessionError  # re-exported
from engine.text import safe_line, safe_text

SCHEMA_VERSION = 3
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
BUSY_TIMEOUT_MS = 10_000

# Each entry upgrades the schema by one version; index i takes version i to i+1.
# Never edit an entry once released: append a new one.
MIGRATIONS: list[str] = [
    # 0 -> 1: the first schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE params (analysis TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                         PRIMARY KEY (analysis, key));
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY, analysis TEXT NOT NULL, steps TEXT NOT NULL, params TEXT NOT NULL,
        state TEXT NOT NULL, pid INTEGER, host TEXT, device TEXT,
        created REAL NOT NULL, started REAL, ended REAL, heartbeat REAL,
        current_step TEXT, error TEXT, result TEXT);
    CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL,
                         ts REAL NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL);
    CREATE INDEX events_by_job ON events (job_id, id);
    CREATE TABLE tables (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
                         job_id TEXT, created REAL NOT NULL, data TEXT NOT NULL);
    CREATE TABLE equations (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
                            job_id TEXT, created REAL NOT NULL, data TEXT NOT NULL);
    CREATE TABLE ui_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 1 -> 2: resumed jobs point at the job they continue; seen-flag for "finished while away"
    """
    ALTER TABLE jobs ADD COLUMN resume_of TEXT;
    ALTER TABLE jobs ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
    """,
    # 2 -> 3: each job works in its own folder (workdir, relative to the session) and may
    # take its inputs from an earlier job (source); pid_start tells a live worker from a
    # reused pid
    """
    ALTER TABLE jobs ADD COLUMN workdir TEXT;
    ALTER TABLE jobs ADD COLUMN source TEXT;
    ALTER TABLE jobs ADD COLUMN pid_start TEXT;
    """,
]
assert len(MIGRATIONS) == SCHEMA_VERSION

ACTIVE_STATES = ("queued", "running")
END_STATES = ("finished", "failed", "cancelled", "interrupted")


@dataclass
class Job:
    id: str
    analysis: str
    steps: list[str]
    params: dict[str, Any]
    state: str
    pid: int | None
    host: str | None
    device: str | None
    created: float
    started: float | None
    ended: float | None
    heartbeat: float | None
    current_step: str | None
    error: str | None
    result: dict[str, Any] | None
    resume_of: str | None = None
    seen: bool = False
    workdir: str | None = None  # relative to the session; None: a job from before schema 3
    source: str | None = None  # the earlier job whose files this job started from
    pid_start: str | None = None  # the worker's process start time (engine.jobs.liveness)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass
class Event:
    id: int
    job_id: str
    ts: float
    kind: str
    payload: dict[str, Any]


# The one rule for where sessions live; the CLI's help, `workbench sessions` and the README
# say it in these words.
ROOT_RULE = ("--root, else $WORKBENCH_SESSIONS, else sessions/ in the workbench's own checkout "
             "(a source install), else the user data folder")


def root_and_reason() -> tuple[Path, str]:
    """Where sessions live when no --root is given, and why there (see ROOT_RULE)."""
    env = os.environ.get("WORKBENCH_SESSIONS")
    if env:
        return Path(env).expanduser(), "$WORKBENCH_SESSIONS"
    project = Path(__file__).resolve().parents[1] / "sessions"
    if project.is_dir() and os.access(project, os.W_OK):
        return project, "the checkout's sessions/ folder"
    import platformdirs

    return Path(platformdirs.user_data_dir("neuro-workbench")) / "sessions", "the user data folder"


def default_root() -> Path:
    """Where sessions live: $WORKBENCH_SESSIONS, else the checkout's ``sessions/`` folder
    (a source install), else the platform's user data folder.  Never the current folder."""
    return root_and_reason()[0]


def check_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise SessionError(
            f"invalid session name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    return name


def list_sessions(root: Path | None = None) -> list[str]:
    root = root or default_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "session.sqlite").is_file())


def _is_busy(exc: BaseException) -> bool:
    msg = str(exc)
    return "locked" in msg or "busy" in msg


def _writable(folder: Path, db: Path) -> bool:
    """False on read-only media (EROFS holds even for root) or a folder we may not write."""
    return os.access(folder, os.W_OK) and os.access(db, os.W_OK)


def _shown(text: str | None) -> str | None:
    """Text a job wrote (an error, a step name) as it may be shown: with its terminal
    control characters escaped (a session may come from anyone; see engine.text)."""
    return safe_text(text) if isinstance(text, str) else text


def _shown_frame(frame: Any) -> Any:
    """A stored table with its labels and text cells escaped (they are shown as they are)."""
    def fix(v: Any) -> Any:
        return safe_line(v) if isinstance(v, str) else v

    frame.index = [fix(v) for v in frame.index]
    frame.columns = [fix(v) for v in frame.columns]
    for col in frame.columns:
        if getattr(frame[col].dtype, "kind", "O") not in "biufcmM":  # text (object or string dtype)
            frame[col] = frame[col].map(fix)
    return frame


def _shown_payload(payload: Any) -> Any:
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        payload["message"] = safe_text(payload["message"])
    return payload


# payload keys that name a file: artifact events' ``path``; an equation set's ``*_path``
_EVENT_PATH_KEYS = {"artifact": ("path",)}


def _path_keys(payload: Any) -> list[str]:
    return [k for k in payload if isinstance(k, str) and k.endswith("_path")] if isinstance(payload, dict) else []


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, allow_nan=True)


class Session:
    """One session folder.  Cheap to open; one SQLite connection per instance and thread.

    Parameters
    ----------
    path : folder of the session (``root/name``).
    create : create it if missing (else a missing session is an error).
    readonly : never write (a second TUI, or a viewer of a finished session).
    """

    def __init__(self, path: Path | str, *, create: bool = True, readonly: bool = False,
                 migrate: bool = True):
        self.path = Path(path)
        self.name = self.path.name
        self.db_path = self.path / "session.sqlite"
        self.artifacts = self.path / "artifacts"
        self._lock_fh = None
        # one connection shared by the UI thread and worker threads: one statement at a time
        self._lock = threading.RLock()
        self._closed = False
        # a job's store waits out a busy lock for as long as it takes (see _begin)
        self.patient = False
        exists = self.db_path.exists()
        if not exists and (not create or readonly):
            raise SessionError(f"no session {self.name!r} at {self.path}")
        # why this session is read-only: asked for, or its folder cannot be written
        self.readonly_reason: str | None = "asked" if readonly else None
        if not readonly and exists and not _writable(self.path, self.db_path):
            readonly, self.readonly_reason = True, "read-only media"
        self.readonly = readonly
        if readonly:
            self._check_not_empty()
            self._conn = self._connect_readonly()
            self._check_version()
            return
        if not exists:
            check_name(self.name)
            self.artifacts.mkdir(parents=True, exist_ok=True)
        if exists and self.db_path.stat().st_size > 0:
            self._conn = self._connect()
        else:  # being created (here or by another process): one creator at a time
            with self._creation_lock():
                self._check_not_empty()
                self._conn = self._connect()
                self._migrate()
        if not migrate and self._version() != SCHEMA_VERSION:
            # a read-only command on an older (or newer) session: browse it, never migrate it
            self._conn.close()
            self.readonly, self.readonly_reason = True, "not migrated"
            self._conn = self._connect_readonly()
            self._check_version()
            return
        self._migrate()

    # -- opening -----------------------------------------------------------------
    @classmethod
    def open(cls, name: str, root: Path | None = None, **kw: Any) -> "Session":
        root = root or default_root()
        return cls(root / check_name(name), **kw)

    def _check_not_empty(self) -> None:
        """A 0-byte database is a file cut short (a full disk, a copy that failed), not a new
        session: opening it as one would hide that every job and table in it is lost."""
        if not self.db_path.exists() or self.db_path.stat().st_size > 0:
            return
        wal = self.db_path.with_name(self.db_path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            return  # its pages are still in the write-ahead log
        raise SessionError(
            f"session file {self.db_path} is empty (0 bytes): it was cut short; move it aside "
            "and start a new session — artifacts/ is untouched")

    @contextlib.contextmanager
    def _creation_lock(self) -> Iterator[None]:
        """Serialise the creation of one session by several processes (an flock that the
        kernel releases if its holder dies)."""
        fh = open(self.path / ".create.lock", "a+")
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise SessionBusy(self._explain(sqlite3.OperationalError("locked"))) from None
                    time.sleep(0.02)
            yield
        finally:
            fh.close()  # releases the lock

    def _connect(self) -> sqlite3.Connection:
        # Opening, switching to WAL and the first read can meet "database is locked" at once,
        # without SQLite's busy handler (another process creating or checkpointing the file):
        # retry with backoff up to the busy timeout.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        delay = 0.005
        while True:
            conn = None
            try:
                conn = sqlite3.connect(
                    self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                    isolation_level=None,
                )
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                conn.row_factory = sqlite3.Row
                return conn
            except sqlite3.DatabaseError as exc:
                if conn is not None:
                    conn.close()
                if _is_busy(exc) and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.25)
                    continue
                raise self._error(exc) from None

    def _connect_readonly(self) -> sqlite3.Connection:
        """``mode=ro`` sees other processes' writes; on read-only media (no ``-shm`` can be
        made) fall back to ``immutable=1``, which reads the file as it lies."""
        uri = "file:" + urllib.parse.quote(str(self.db_path.resolve()))
        last: sqlite3.Error | None = None
        for query in ("?mode=ro", "?immutable=1"):
            try:
                conn = sqlite3.connect(uri + query, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                       check_same_thread=False, isolation_level=None)
            except sqlite3.DatabaseError as exc:
                last = exc
                continue
            try:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as exc:
                conn.close()
                last = exc
                if "not a database" in str(exc) or "malformed" in str(exc):
                    break
                continue
            conn.row_factory = sqlite3.Row
            wal = self.db_path.with_name(self.db_path.name + "-wal")
            if query == "?immutable=1" and wal.exists() and wal.stat().st_size > 0:
                # immutable reads the main file only: say what it cannot see
                self.readonly_reason = (f"{self.readonly_reason or 'read-only'}; the last writes "
                                        f"({wal.stat().st_size // 1024} KiB in {wal.name}) are not shown")
            return conn
        assert last is not None
        raise self._error(last) from None

    def _error(self, exc: sqlite3.Error) -> SessionError:
        cls = SessionBusy if _is_busy(exc) else SessionError
        return cls(self._explain(exc))

    def _explain(self, exc: sqlite3.Error) -> str:
        msg = str(exc)
        if _is_busy(exc):
            return (f"session {self.name!r} is locked by another process for more than "
                    f"{BUSY_TIMEOUT_MS / 1000:g} s; try again, or open it read-only")
        if "not a database" in msg or "malformed" in msg or "disk image" in msg:
            return (f"session file {self.db_path} is corrupted ({msg}); move it aside and "
                    "start a new session — artifacts/ is untouched")
        if "disk is full" in msg or "database is full" in msg:
            return (f"No space left on device for session {self.name!r} ({self.db_path.parent}): "
                    "free disk space and retry; everything written before is kept")
        if "readonly" in msg or "unable to open" in msg:
            return f"cannot open session file {self.db_path}: {msg}"
        return f"session {self.name!r}: {msg}"

    def _version(self) -> int:
        try:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def _migrate(self) -> None:
        if self._version() == SCHEMA_VERSION:
            return  # nothing to do: opening takes no write lock (a busy store still opens)
        try:
            with self._write():
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise SessionError(
                        f"session {self.name!r} has schema version {version}, newer than this "
                        f"workbench ({SCHEMA_VERSION}); upgrade the workbench to open it"
                    )
                for v in range(version, SCHEMA_VERSION):
                    # statement by statement: executescript would commit our transaction
                    for stmt in filter(str.strip, MIGRATIONS[v].split(";")):
                        self._conn.execute(stmt)
                    self._conn.execute(f"PRAGMA user_version={v + 1}")
                if version == 0:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('created', ?)", (str(time.time()),))
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def _check_version(self) -> None:
        """Read-only opening: any schema up to ours reads (rows fill the missing columns
        with defaults); a newer one might mean something else by its columns."""
        version = self._version()
        if version > SCHEMA_VERSION:
            raise SessionError(
                f"session {self.name!r} has schema version {version}, newer than this "
                f"workbench ({SCHEMA_VERSION}); upgrade the workbench to open it")
        if version < 1:
            raise SessionError(f"session {self.name!r} has no schema (version 0): not a session")

    @property
    def schema_version(self) -> int:
        return self._read("PRAGMA user_version")[0][0]

    def _live(self) -> sqlite3.Connection:
        if self._closed:
            raise SessionError(f"session {self.name!r} is closed")
        return self._conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise SessionError(f"session {self.name!r} is open read-only")
        with self._lock:
            yield from self._write_locked()

    def _write_locked(self) -> Iterator[sqlite3.Connection]:
        self._live()
        try:
            self._begin()
            try:
                yield self._conn
            except BaseException:
                # SQLite may already have rolled back (disk full, I/O error): a second
                # ROLLBACK would raise and hide the real error
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self._conn.in_transaction:  # a failed COMMIT must not wedge the connection
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise self._error(exc) from None

    def _begin(self) -> None:
        """Take the write lock.  A patient store (a running job) retries a busy lock with
        backoff for as long as it takes: a job must never fail because another process
        held the store for a while; others give up after the busy timeout."""
        delay = 0.05
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not (self.patient and _is_busy(exc)):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._live().execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._error(exc) from None

    def close(self) -> None:
        """Close the connection; waits for a query in another thread to finish (closing
        under it crashes the interpreter), later calls raise SessionError."""
        self.release_ui_lock()
        with self._lock:
            self._closed = True
            with contextlib.suppress(Exception):
                self._conn.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the TUI's advisory lock -------------------------------------------------
    def acquire_ui_lock(self) -> bool:
        """Take the one-TUI-writes lock; False if another live process holds it, or the
        session is read-only (read-only media cannot hold the lock file)."""
        if self.readonly:
            return False
        try:
            fh = open(self.path / "tui.lock", "a+")
        except OSError:
            return False
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        self._lock_fh = fh
        return True

    def release_ui_lock(self) -> None:
        if self._lock_fh is not None:
            with contextlib.suppress(Exception):
                fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
                self._lock_fh.close()
            self._lock_fh = None

    # -- parameters --------------------------------------------------------------
    def set_params(self, analysis: str, params: dict[str, Any]) -> None:
        with self._write() as c:
            c.executemany(
                "INSERT OR REPLACE INTO params VALUES (?, ?, ?)",
                [(analysis, k, _dumps(v)) for k, v in params.items()],
            )

    def params(self, analysis: str) -> dict[str, Any]:
        rows = self._read("SELECT key, value FROM params WHERE analysis=?", (analysis,))
        return {r["key"]: json.loads(r["value"]) for r in rows}

    # -- jobs --------------------------------------------------------------------
    def create_job(self, analysis: str, steps: list[str], params: dict[str, Any],
                   resume_of: str | None = None, job_id: str | None = None,
                   workdir: str | None = None, source: str | None = None) -> str:
        """Record a queued job.  Its folder is ``workdir`` (relative to the session; a resumed
        job passes its predecessor's), by default ``artifacts/<analysis>/jobs/<id>``."""
        job_id = job_id or f"{self.name}-{time.strftime('%m%d-%H%M%S')}-{os.urandom(2).hex()}"
        if workdir is None and resume_of is not None:  # a resume continues in its job's folder
            workdir = str(self.job_dir(resume_of).relative_to(self.path))
        workdir = workdir or f"artifacts/{analysis}/jobs/{job_id}"
        with self._write() as c:
            c.execute(
                "INSERT INTO jobs (id, analysis, steps, params, state, created, host, resume_of,"
                " workdir, source) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, analysis, _dumps(steps), _dumps(params), time.time(), os.uname().nodename,
                 resume_of, workdir, source),
            )
        return job_id

    def job_dir(self, job: "Job | str") -> Path:
        """The folder a job works in (and its figures read).  Jobs recorded before per-job
        folders (schema < 3) shared ``artifacts/<analysis>/``."""
        if isinstance(job, str):
            job = self.job(job)
        folder = self.path / job.workdir if job.workdir else self.artifacts / job.analysis
        # a row names the folder: a hand-edited one ("/home", "../..") must not send a job's
        # writes and deletions outside this session (checked on the names, so that a user's
        # artifacts folder may still be a symlink to a bigger disk)
        if not Path(os.path.normpath(folder)).is_relative_to(os.path.normpath(self.path)):
            raise SessionError(f"job {safe_text(job.id)}: its folder {safe_text(str(folder))!r} is outside "
                               f"session {self.name!r}; refusing to use it")
        return folder

    def update_job(self, job_id: str, **fields: Any) -> None:
        allowed = {"state", "pid", "host", "device", "started", "ended", "heartbeat",
                   "current_step", "error", "result", "seen", "pid_start", "source"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"unknown job fields {sorted(bad)}")
        if "result" in fields and fields["result"] is not None:
            fields["result"] = _dumps(fields["result"])
        # an end state is final: a state written over one is dropped (finish_job ends jobs)
        ended = ",".join(f"'{st}'" for st in END_STATES)
        cols = ", ".join(f"{k}=CASE WHEN state IN ({ended}) THEN state ELSE ? END" if k == "state"
                         else f"{k}=?" for k in fields)
        with self._write() as c:
            c.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*fields.values(), job_id))

    def finish_job(self, job_id: str, state: str, *, error: str | None = None,
                   result: dict | None = None) -> bool:
        """End a job and record the matching event in one transaction.

        End states are final: a job already ended keeps its state, and this returns False.
        """
        assert state in END_STATES, state
        now = time.time()
        marks = ",".join("?" * len(ACTIVE_STATES))
        with self._write() as c:
            cur = c.execute(
                f"UPDATE jobs SET state=?, ended=?, error=?, result=? WHERE id=? AND state IN ({marks})",
                (state, now, error, _dumps(result) if result is not None else None, job_id,
                 *ACTIVE_STATES),
            )
            if cur.rowcount != 1:
                return False
            c.execute(
                "INSERT INTO events (job_id, ts, kind, payload) VALUES (?, ?, ?, ?)",
                (job_id, now, state, _dumps({"error": error} if error else {})),
            )
        return True

    def start_job(self, job_id: str, **fields: Any) -> bool:
        """Mark a queued job running (with its pid, host...); False if it has ended meanwhile
        (an end state is never undone)."""
        cols = ", ".join(f"{k}=?" for k in fields)
        with self._write() as c:
            cur = c.execute(
                f"UPDATE jobs SET state='running', {cols} WHERE id=? AND state IN ('queued', 'running')",
                (*fields.values(), job_id))
            return cur.rowcount == 1

    def job(self, job_id: str) -> Job:
        rows = self._read("SELECT * FROM jobs WHERE id=?", (job_id,))
        if not rows:
            raise SessionError(f"no job {job_id!r} in session {self.name!r}")
        return self._job(rows[0])

    def jobs(self, states: tuple[str, ...] | None = None) -> list[Job]:
        if states:
            marks = ",".join("?" * len(states))
            rows = self._read(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY created", states)
        else:
            rows = self._read("SELECT * FROM jobs ORDER BY created")
        return [self._job(r) for r in rows]

    @staticmethod
    def _job(r: sqlite3.Row) -> Job:
        # an older schema opened read-only lacks the newer columns: their defaults
        opt = {k: r[k] for k in ("resume_of", "seen", "workdir", "source", "pid_start") if k in r.keys()}
        return Job(
            id=r["id"], analysis=r["analysis"], steps=json.loads(r["steps"]),
            params=json.loads(r["params"]), state=r["state"], pid=r["pid"], host=_shown(r["host"]),
            device=_shown(r["device"]), created=r["created"], started=r["started"], ended=r["ended"],
            heartbeat=r["heartbeat"], current_step=_shown(r["current_step"]), error=_shown(r["error"]),
            result=json.loads(r["result"]) if r["result"] else None,
            resume_of=opt.get("resume_of"), seen=bool(opt.get("seen") or False),
            workdir=opt.get("workdir"), source=opt.get("source"), pid_start=opt.get("pid_start"),
        )

    def delete_job(self, job_id: str) -> None:
        job = self.job(job_id)
        if job.active:
            raise SessionError(f"job {job_id} is {job.state}; cancel it first")
        with self._write() as c:
            c.execute("DELETE FROM events WHERE job_id=?", (job_id,))
            c.execute("DELETE FROM jobs WHERE id=?", (job_id,))

    # -- events ------------------------------------------------------------------
    def add_event(self, job_id: str, kind: str, payload: dict[str, Any] | None = None) -> None:
        self.add_events(job_id, [(kind, payload or {})])

    def add_events(self, job_id: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        now = time.time()
        with self._write() as c:
            c.executemany(
                "INSERT INTO events (job_id, ts, kind, payload) VALUES (?, ?, ?, ?)",
                [(job_id, now, kind, _dumps(self._paths_in(p, _EVENT_PATH_KEYS.get(kind, ()))))
                 for kind, p in items],
            )

    def events(self, job_id: str | None = None, *, after: int = 0,
               kinds: tuple[str, ...] | None = None, limit: int | None = None) -> list[Event]:
        sql, args = "SELECT * FROM events WHERE id>?", [after]
        if job_id is not None:
            sql += " AND job_id=?"
            args.append(job_id)
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        sql += " ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [Event(r["id"], r["job_id"], r["ts"], r["kind"],
                      _shown_payload(self._paths_out(json.loads(r["payload"]), _EVENT_PATH_KEYS.get(r["kind"], ()))))
                for r in self._read(sql, tuple(args))]

    def last_event_id(self) -> int:
        return self._read("SELECT coalesce(max(id), 0) FROM events")[0][0]

    def versions(self) -> tuple[int, int]:
        """(max table id, max equations id): cheap change detection for pollers."""
        r = self._read("SELECT (SELECT coalesce(max(id), 0) FROM tables),"
                       " (SELECT coalesce(max(id), 0) FROM equations)")[0]
        return int(r[0]), int(r[1])

    def latest_progress(self, job_id: str) -> dict[str, Any] | None:
        rows = self._read(
            "SELECT payload FROM events WHERE job_id=? AND kind='progress' ORDER BY id DESC LIMIT 1",
            (job_id,),
        )
        return json.loads(rows[0]["payload"]) if rows else None

    # -- tables and equations ----------------------------------------------------
    def save_table(self, name: str, table: Any, job_id: str | None = None) -> None:
        data = table.to_json(orient="split", double_precision=15)
        with self._write() as c:
            c.execute("INSERT INTO tables (name, job_id, created, data) VALUES (?, ?, ?, ?)",
                      (name, job_id, time.time(), data))

    def tables(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every stored table (oldest first) as dicts with a pandas ``frame``."""
        import io

        import pandas as pd

        sql = "SELECT * FROM tables" + (" WHERE name=?" if name else "") + " ORDER BY id"
        out = []
        for r in self._read(sql, (name,) if name else ()):
            # no guessing: numeric row labels (unit ids) were read back as dates, 1.0 as 1
            frame = _shown_frame(pd.read_json(io.StringIO(r["data"]), orient="split", convert_axes=False, dtype=False))
            out.append({"id": r["id"], "name": _shown(r["name"]), "job_id": r["job_id"],
                        "created": r["created"], "frame": frame})
        return out

    def table_names(self) -> list[str]:
        return [r[0] for r in self._read("SELECT DISTINCT name FROM tables ORDER BY name")]

    def save_equations(self, name: str, payload: dict[str, Any], job_id: str | None = None) -> None:
        with self._write() as c:
            c.execute("INSERT INTO equations (name, job_id, created, data) VALUES (?, ?, ?, ?)",
                      (name, job_id, time.time(), _dumps(self._paths_in(payload, _path_keys(payload)))))

    def equations(self, name: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM equations" + (" WHERE name=?" if name else "") + " ORDER BY id"
        out = []
        for r in self._read(sql, (name,) if name else ()):
            data = json.loads(r["data"])
            out.append({"id": r["id"], "name": _shown(r["name"]), "job_id": r["job_id"], "created": r["created"],
                        "data": self._paths_out(data, _path_keys(data))})
        return out

    # -- paths to the session's own files -----------------------------------------
    # Stored relative to the session folder, so that a session moved or copied elsewhere
    # still finds its sweeps and artifacts; read back as paths under this folder.  An
    # absolute path (older sessions; a file outside the folder) is kept and read as is.
    def _paths_in(self, payload: Any, keys: Iterable[str]) -> Any:
        if not isinstance(payload, dict):
            return payload
        changed = {k: self._relative(payload[k]) for k in keys if isinstance(payload.get(k), str)}
        return {**payload, **changed} if changed else payload

    def _paths_out(self, payload: Any, keys: Iterable[str]) -> Any:
        if not isinstance(payload, dict):
            return payload
        for k in keys:
            v = payload.get(k)
            if isinstance(v, str) and v and not os.path.isabs(v):
                payload[k] = str(self.path / v)
        return payload

    def _relative(self, value: str) -> str:
        if not os.path.isabs(value):
            return value
        for folder, path in ((os.path.abspath(self.path), os.path.abspath(value)),
                             (os.path.realpath(self.path), os.path.realpath(value))):  # symlinked roots
            rel = os.path.relpath(path, folder)
            if rel != os.curdir and rel != os.pardir and not rel.startswith(os.pardir + os.sep):
                return rel
        return value

    # -- UI state ----------------------------------------------------------------
    def set_ui(self, **values: Any) -> None:
        with self._write() as c:
            c.executemany("INSERT OR REPLACE INTO ui_state VALUES (?, ?)",
                          [(k, _dumps(v)) for k, v in values.items()])

    def ui(self) -> dict[str, Any]:
        """The saved screen state; a row that is not JSON (hand-edited, another version) is left out."""
        out: dict[str, Any] = {}
        for r in self._read("SELECT * FROM ui_state"):
            try:
                out[r["key"]] = json.loads(r["value"])
            except (ValueError, TypeError):
                continue
        return out

    # -- artifacts ---------------------------------------------------------------
    def artifact_dir(self, analysis: str) -> Path:
        d = self.artifacts / analysis
        if not self.readonly:
            d.mkdir(parents=True, exist_ok=True)
        return d
