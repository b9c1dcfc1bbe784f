"""What a session stores: parameters, job records, the events jobs write, metric tables
(with their metadata), equation sets, the TUI's state, and the artifacts folder."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from engine.errors import SessionError
from engine.session.connection import Connection
from engine.session.records import Event, Job
from engine.session.roots import check_name, default_root
from engine.session.schema import ACTIVE_STATES, END_STATES
from engine.session.shown import dumps, shown, shown_frame, shown_payload
from engine.session.table_meta import TableMeta
from engine.text import safe_line, safe_text

# payload keys that name a file: artifact events' ``path``; an equation set's ``*_path``
_EVENT_PATH_KEYS = {"artifact": ("path",)}


def _path_keys(payload: Any) -> list[str]:
    return [k for k in payload if isinstance(k, str) and k.endswith("_path")] if isinstance(payload, dict) else []


def _table_meta(row: sqlite3.Row) -> TableMeta | None:
    """A table's stored metadata, its column names escaped as the frame's are; None for a
    table from before schema 4 (opened read-only, the row has no such column) or without."""
    if "meta" not in row.keys() or not row["meta"]:
        return None
    try:
        payload = json.loads(row["meta"])
    except ValueError:
        return None
    if isinstance(payload, dict) and isinstance(payload.get("scores"), dict):
        payload["scores"] = {safe_line(k): v for k, v in payload["scores"].items()}
    if isinstance(payload, dict) and isinstance(payload.get("rank_by"), str):
        payload["rank_by"] = safe_line(payload["rank_by"])
    return TableMeta.from_payload(payload)


class Session(Connection):
    """One session folder.  Cheap to open; one SQLite connection per instance and thread
    (see :class:`engine.session.connection.Connection` for the parameters)."""

    @classmethod
    def open(cls, name: str, root: Path | None = None, **kw: Any) -> "Session":
        root = root or default_root()
        return cls(root / check_name(name), **kw)

    # -- parameters --------------------------------------------------------------
    def set_params(self, analysis: str, params: dict[str, Any]) -> None:
        with self._write() as c:
            c.executemany(
                "INSERT OR REPLACE INTO params VALUES (?, ?, ?)",
                [(analysis, k, dumps(v)) for k, v in params.items()],
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
                (job_id, analysis, dumps(steps), dumps(params), time.time(), os.uname().nodename,
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
            fields["result"] = dumps(fields["result"])
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
                (state, now, error, dumps(result) if result is not None else None, job_id,
                 *ACTIVE_STATES),
            )
            if cur.rowcount != 1:
                return False
            c.execute(
                "INSERT INTO events (job_id, ts, kind, payload) VALUES (?, ?, ?, ?)",
                (job_id, now, state, dumps({"error": error} if error else {})),
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
            params=json.loads(r["params"]), state=r["state"], pid=r["pid"], host=shown(r["host"]),
            device=shown(r["device"]), created=r["created"], started=r["started"], ended=r["ended"],
            heartbeat=r["heartbeat"], current_step=shown(r["current_step"]), error=shown(r["error"]),
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
                [(job_id, now, kind, dumps(self._paths_in(p, _EVENT_PATH_KEYS.get(kind, ()))))
                 for kind, p in items],
            )

    def events(self, job_id: str | None = None, *, after: int = 0,
               kinds: tuple[str, ...] | None = None, limit: int | None = None) -> list[Event]:
        sql = "SELECT * FROM events WHERE id>?"
        args: list[Any] = [after]
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
                      shown_payload(self._paths_out(json.loads(r["payload"]), _EVENT_PATH_KEYS.get(r["kind"], ()))))
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
    def save_table(self, name: str, table: Any, job_id: str | None = None, *,
                   meta: TableMeta | None = None) -> None:
        """Store a metric table (a DataFrame) with what it says about its scores (``meta``:
        which way is better, what NaN means); without it readers go by the column names."""
        data = table.to_json(orient="split", double_precision=15)
        stored = dumps(meta.to_payload()) if meta is not None else None
        with self._write() as c:
            c.execute("INSERT INTO tables (name, job_id, created, data, meta) VALUES (?, ?, ?, ?, ?)",
                      (name, job_id, time.time(), data, stored))

    def tables(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every stored table (oldest first) as dicts with a pandas ``frame`` and its ``meta``
        (a :class:`TableMeta`, or None for a table stored without one)."""
        import io

        import pandas as pd

        sql = "SELECT * FROM tables" + (" WHERE name=?" if name else "") + " ORDER BY id"
        out = []
        for r in self._read(sql, (name,) if name else ()):
            # no guessing: numeric row labels (unit ids) were read back as dates, 1.0 as 1
            frame = shown_frame(pd.read_json(io.StringIO(r["data"]), orient="split", convert_axes=False, dtype=False))
            out.append({"id": r["id"], "name": shown(r["name"]), "job_id": r["job_id"],
                        "created": r["created"], "frame": frame, "meta": _table_meta(r)})
        return out

    def table_names(self) -> list[str]:
        return [r[0] for r in self._read("SELECT DISTINCT name FROM tables ORDER BY name")]

    def save_equations(self, name: str, payload: dict[str, Any], job_id: str | None = None) -> None:
        with self._write() as c:
            c.execute("INSERT INTO equations (name, job_id, created, data) VALUES (?, ?, ?, ?)",
                      (name, job_id, time.time(), dumps(self._paths_in(payload, _path_keys(payload)))))

    def equations(self, name: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM equations" + (" WHERE name=?" if name else "") + " ORDER BY id"
        out = []
        for r in self._read(sql, (name,) if name else ()):
            data = json.loads(r["data"])
            out.append({"id": r["id"], "name": shown(r["name"]), "job_id": r["job_id"], "created": r["created"],
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
                          [(k, dumps(v)) for k, v in values.items()])

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
