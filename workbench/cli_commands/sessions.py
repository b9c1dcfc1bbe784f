"""``workbench sessions``, ``jobs``, ``cancel`` and ``parallel``: what a session holds and how it runs."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from engine.errors import UserError
from workbench.cli_commands.common import _confirm, _open_session, _root, _root_reason
from workbench.format import fmt_duration


def cmd_sessions(args: argparse.Namespace) -> int:
    from engine.session import list_sessions
    from engine.text import safe_line

    root = _root(args)
    if args.action == "show":
        if not args.name:
            raise UserError("usage: workbench sessions show NAME")
        from engine.session import Session  # read-only: showing never migrates or writes

        s = Session.open(args.name, root, create=False, readonly=True)
        jobs = s.jobs()
        print(f"session {s.name}  ({s.path})  schema v{s.schema_version}")
        print(f"jobs: {len(jobs)}  tables: {safe_line(', '.join(s.table_names())) or '-'}  "
              f"equations: {len(s.equations())}")
        _print_jobs(jobs)
        return 0
    names = list_sessions(root)
    # where they are and why, on stderr (stdout stays one name a line for scripts)
    print(f"sessions in {root} ({_root_reason(args)})", file=sys.stderr)
    if not names:
        print(f"no sessions under {root}")
    for name in names:
        print(safe_line(name))
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from engine.jobs import runner

    if not (args.resume or args.delete):  # listing reads: never migrate, never fail on a full disk
        from engine.session import Session, SessionError

        s = Session.open(args.session, _root(args), create=False, migrate=False)
        with contextlib.suppress(SessionError):
            runner.reconcile(s)
        _print_jobs(s.jobs(), s)
        return 0
    s = _open_session(args, create=False)
    runner.reconcile(s)
    if args.resume:
        print(runner.resume(s, args.resume))
        return 0
    if args.delete:
        s.job(args.delete)  # an unknown id is one line, before any question
        if not args.yes and not _confirm(f"delete job {args.delete} and its events (its artifacts stay on disk)?"):
            print("nothing deleted", file=sys.stderr)
            return 1
        s.delete_job(args.delete)
        print(f"deleted {args.delete}")
        return 0
    _print_jobs(s.jobs(), s)
    return 0


def _print_jobs(jobs: list, session: Any = None) -> None:
    if not jobs:
        print("no jobs")
        return
    print(f"{'JOB':<32} {'ANALYSIS':<10} {'STATE':<11} {'STEP':<10} {'PROGRESS':<14} {'DEVICE':<8} ERROR")
    for j in jobs:
        prog = ""
        if session is not None and j.active:
            p = session.latest_progress(j.id)
            if p and p.get("total"):
                prog = f"{p['done']}/{p['total']}"
                if p.get("eta_s") is not None:
                    prog += f" {fmt_duration(p['eta_s'])}"
        print(f"{j.id:<32} {j.analysis:<10} {j.state:<11} {(j.current_step or '-'):<10} "
              f"{prog:<14} {(j.device or '-'):<8} {j.error or ''}")


def cmd_cancel(args: argparse.Namespace) -> int:
    from engine.jobs import runner
    from engine.session import Session

    root = _root(args)
    name, job = runner.find_job(root, args.job_id)
    # that session only, never migrated (an older schema or read-only media still cancels)
    s = Session(root / name, create=False, migrate=False)
    if runner.cancel(s, job.id):
        print(f"cancel sent to {job.id}; it stops at its next safe point")
        return 0
    print(f"{job.id} is {s.job(job.id).state}; nothing to cancel")
    return 0


_PARALLEL_KEYS = ("backend", "address", "n_workers")


def cmd_parallel(args: argparse.Namespace) -> int:
    """Show or change where a session's parallel loops run (loky, dask, ray)."""
    from engine import parallel

    session = _open_session(args)
    why = parallel.notice(session)  # a setting made elsewhere: reset to loky, said once
    if why:
        print(why, file=sys.stderr)
    if args.action in ("set", "unset"):
        if args.key not in _PARALLEL_KEYS:
            raise UserError(f"unknown setting {args.key!r} (known: {', '.join(_PARALLEL_KEYS)})")
        if args.action == "set" and args.value is None:
            raise UserError(f"usage: workbench parallel set {args.key} VALUE")
        default = getattr(parallel.ParallelConfig(), args.key)
        parallel.save_config(session, **{args.key: args.value if args.action == "set" else default})
    cfg = parallel.load_config(session)
    _, source = parallel.user_address(cfg.backend)
    print(f"backend = {cfg.backend}")
    # the address is the user's own setting (never the session's): say where it is kept
    print(f"address = {cfg.address or 'local'}" + (f"  (from {source})" if cfg.address else ""))
    print(f"n_workers = {cfg.n_workers or 'auto'}")
    return 0
