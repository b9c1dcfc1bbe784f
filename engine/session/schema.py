"""The session database's schema: its version, the migrations that reach it, and the
states a job row may be in."""

from __future__ import annotations

SCHEMA_VERSION = 4

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
    # 3 -> 4: a metric table carries its metadata (engine.session.table_meta) as JSON;
    # NULL for the tables stored before, which the Results pane reads by their names
    """
    ALTER TABLE tables ADD COLUMN meta TEXT;
    """,
]
assert len(MIGRATIONS) == SCHEMA_VERSION

ACTIVE_STATES = ("queued", "running")
END_STATES = ("finished", "failed", "cancelled", "interrupted")
