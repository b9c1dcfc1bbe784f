"""One session's SQLite connection: opening, creating, migrating, and every read and
write through it.  :class:`engine.session.store.Session` adds what is stored on top.

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
import os
import sqlite3
import threading
import time
import urllib.parse
from pathlib import Path
from typing import IO, Any, Iterator, TypeVar

from engine.errors import SessionBusy, SessionError
from engine.session.roots import check_name
from engine.session.schema import MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT_MS = 10_000
_C = TypeVar("_C", bound="Connection")


def _is_busy(exc: BaseException) -> bool:
    msg = str(exc)
    return "locked" in msg or "busy" in msg


def _writable(folder: Path, db: Path) -> bool:
    """False on read-only media (EROFS holds even for root) or a folder we may not write."""
    return os.access(folder, os.W_OK) and os.access(db, os.W_OK)


class Connection:
    """One session folder's database connection, one per instance and thread.

    Parameters
    ----------
    path : folder of the session (``root/name``).
    create : create it if missing (else a missing session is an error).
    readonly : never write (a second TUI, or a viewer of a finished session).
    migrate : False opens an older (or newer) schema read-only instead of migrating it.
    """

    def __init__(self, path: Path | str, *, create: bool = True, readonly: bool = False,
                 migrate: bool = True):
        self.path = Path(path)
        self.name = self.path.name
        self.db_path = self.path / "session.sqlite"
        self.artifacts = self.path / "artifacts"
        self._lock_fh: IO[str] | None = None
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

    def __enter__(self: _C) -> _C:
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
