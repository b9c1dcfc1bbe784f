"""The session store: ``sessions/<name>/session.sqlite`` (WAL) plus ``artifacts/``.

A session is the unit of resumption.  It holds parameters, job records, the
events jobs write (progress, metrics, logs, artifacts, end states), metric
tables with their metadata, equations and the TUI's state, so that reopening it
redraws the same screen.  Large arrays and checkpoints live in ``artifacts/``,
written through :mod:`engine.atomic` (temp file + rename).

Split by concern: ``schema`` (version, migrations, job states), ``records`` (the
rows handed out), ``roots`` (where sessions live), ``connection`` (opening,
locking, migrating, reads and writes), ``store`` (what is stored),
``table_meta`` (what a metric table says about its scores), ``shown``
(escaping what is read back).  Everything is importable from here.
"""

from engine.errors import SessionBusy, SessionError
from engine.session.connection import BUSY_TIMEOUT_MS
from engine.session.records import Event, Job
from engine.session.roots import ROOT_RULE, check_name, default_root, list_sessions, root_and_reason
from engine.session.schema import ACTIVE_STATES, END_STATES, MIGRATIONS, SCHEMA_VERSION
from engine.session.store import Session
from engine.session.table_meta import Score, TableMeta

__all__ = [
    "ACTIVE_STATES", "BUSY_TIMEOUT_MS", "END_STATES", "MIGRATIONS", "ROOT_RULE", "SCHEMA_VERSION",
    "Event", "Job", "Score", "Session", "SessionBusy", "SessionError", "TableMeta",
    "check_name", "default_root", "list_sessions", "root_and_reason",
]
