"""The ``workbench`` command.

    workbench [--session NAME] [--data PATH]  open the TUI (default session: demo)
    workbench resume NAME                     the same, for a named session
    workbench run ANALYSIS [--step S] [--session NAME] [--set k=v ...] [--detach] [--headless] [--json]
    workbench seeds ANALYSIS --seeds 0,1,2 [--step S] [--set k=v ...] [--detach [--at-once N]] [--json]
    workbench sessions [show NAME]
    workbench jobs [--session NAME] [--resume JOB_ID] [--delete JOB_ID]
    workbench cancel JOB_ID
    workbench data gen retina PATH [--cells 9] [--frames 30000] [--seed 0] [--blocks 3] [--repeats 5]
    workbench data tree PATH
    workbench report [--session NAME] [-o PATH]
    workbench serve [--session NAME] [--port 8000]
    workbench parallel [set KEY VALUE | unset KEY] [--session NAME]

Errors a user can cause (bad names, bad files, bad values) print one line on
stderr and exit with status 2; they never print a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# what a user can fix (here: bad arguments; in the engine: bad parameters, data, sessions,
# training...) is a UserError: one line on stderr, exit status 2, never a traceback
from engine.errors import UserError
from workbench.format import fmt_duration

EXIT_USAGE = 2


def _root(args: argparse.Namespace) -> Path:
    from engine.session import default_root

    return Path(args.root).expanduser() if args.root else default_root()


def _root_reason(args: argparse.Namespace) -> str:
    from engine.session import root_and_reason

    return "--root" if args.root else root_and_reason()[1]


def _open_session(args: argparse.Namespace, name: str | None = None, create: bool = True):
    from engine.session import Session

    return Session.open(name or args.session, _root(args), create=create)


# -- run ------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from engine import analyses
    from engine.analyses.base import parse_sets
    from engine.jobs import runner

    spec = analyses.get(args.analysis)
    steps = _split_steps(args.step)
    if steps == []:  # --step "" or "," named nothing: never fall back to running every step
        raise UserError(f"--step needs a step name (steps of {spec.name}: "
                        f"{', '.join(st.name for st in spec.steps)})")
    for s in steps or []:
        spec.step(s)
    # typed and range-checked against the steps' declarations: one line naming the key,
    # before the session is touched or any step runs
    overrides = parse_sets(args.set or [], spec.params())
    if getattr(args, "seeds", None):
        return _run_seeds(args, steps, overrides)
    session = _open_session(args)
    runner.reconcile(session)
    job_id = runner.submit(session, args.analysis, steps, overrides, from_job=args.from_job)
    if args.detach:
        from engine.jobs.folders import inputs_line

        said = inputs_line(session.job_dir(job_id))  # where a --step job's inputs come from
        if said:
            print(said[1], file=sys.stderr)
        runner.launch(session, job_id)
        print(job_id)
        return 0

    printer = _ProgressPrinter(quiet=args.json)
    import signal
    import threading

    cancel = threading.Event()
    # Ctrl-C / SIGTERM: stop at the next safe point, checkpoint, record "cancelled"
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    # A dropped terminal/SSH connection: stop at a safe point (checkpoint, "cancelled",
    # resumable) rather than die mid-step.  Under nohup SIGHUP is ignored: keep it so.
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda *_: cancel.set())
    job = runner.run_job(session, job_id, echo=printer, cancel=cancel)
    printer.close()
    if args.json:
        out = {"job": job.id, "session": session.name, "state": job.state, **(job.result or {})}
        if job.error:
            out["error"] = job.error
        print(json.dumps(out, default=str))
    else:
        print(f"{job.id}: {job.state}" + (f" — {job.error}" if job.error else ""), file=sys.stderr)
    return 0 if job.state == "finished" else 1


def _run_seeds(args: argparse.Namespace, steps: list[str] | None, overrides: dict[str, Any]) -> int:
    """``run NAME --seeds 0,1,2`` is ``seeds NAME --seeds 0,1,2``: each seed its own job."""
    if args.from_job:
        raise UserError("--from does not go with --seeds: each seed takes its inputs from its own seed's job")
    return _seeds(args, steps, overrides)


def cmd_seeds(args: argparse.Namespace) -> int:
    """``seeds NAME --seeds 0,1,2``: the analysis once per seed, each seed its own job in the
    session; then mean ± std, min–max and n per figure, saved as "NAME over seeds"."""
    from engine import analyses
    from engine.analyses.base import parse_sets

    spec = analyses.get(args.analysis)
    steps = _split_steps(args.step)
    if steps == []:
        raise UserError(f"--step needs a step name (steps of {spec.name}: "
                        f"{', '.join(st.name for st in spec.steps)})")
    return _seeds(args, steps, parse_sets(args.set or [], spec.params()))


def _seeds(args: argparse.Namespace, steps: list[str] | None, overrides: dict[str, Any]) -> int:
    import signal
    import threading

    from engine import seed_sweep
    from engine.jobs import runner
    from engine.seeds import parse_seeds

    seeds = parse_seeds(args.seeds)
    session = _open_session(args)
    runner.reconcile(session)
    sweep = seed_sweep.create(session, args.analysis, seeds, overrides, steps,
                              at_once=getattr(args, "at_once", None) or 1)
    if getattr(args, "detach", False):  # a driver in its own process: a logout stops nothing
        seed_sweep.start_detached(session, sweep)
        print(f"{sweep.id}: {len(seeds)} seeds, {sweep.at_once} at a time; "
              f"'workbench jobs' lists them, the table is {sweep.table_name!r}", file=sys.stderr)
        print(sweep.id)
        return 0
    printer = _ProgressPrinter(quiet=args.json)
    cancel = threading.Event()  # Ctrl-C, SIGTERM: the running seed stops at a safe point
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())

    def told(i: int, seed: int, job_id: str, eta: float | None) -> None:
        left = f"  ETA {fmt_duration(eta)}" if eta is not None else ""
        printer._line(f"seed {i + 1}/{len(seeds)} (seed={seed}): job {job_id}{left}", final=True)

    result = seed_sweep.run_here(session, sweep, echo=printer, cancel=cancel, on_seed=told)
    printer.close()
    if args.json:
        print(json.dumps({
            "sweep": sweep.id, "session": session.name, "seeds": seeds,
            "jobs": {str(s): j for s, j in sweep.jobs.items()},
            "states": {str(s): st for s, st in result.states.items()},
            "errors": {str(s): e for s, e in result.errors.items()},
            "summary": {f.label: {"mean": _finite(f.mean), "std": _finite(f.std), "min": _finite(f.min),
                                  "max": _finite(f.max), "n": f.n, "nonfinite": f.nonfinite} for f in result.figures},
            "per_seed": {f.label: {str(s): _finite(v) for s, v in f.values.items()} for f in result.figures},
        }, default=str))
    else:
        _print_seed_summary(result)
    return 0 if result.finished == len(seeds) else 1


def _finite(v: float) -> float | None:
    """NaN/inf as null: strict JSON readers (jq, JSON.parse) refuse NaN."""
    import math

    return v if math.isfinite(v) else None


def _print_seed_summary(result) -> None:
    from engine.text import safe_line

    print(f"{result.finished}/{len(result.seeds)} seeds finished" +
          (f", {result.failed} failed" if result.failed else ""))
    for seed, error in result.errors.items():
        print(f"  seed {seed}: {safe_line(error)}")
    width = max([len(f.label) for f in result.figures] or [6])
    for f in result.figures:
        print(f"{safe_line(f.label):<{width}}  {f.text()}")


def _split_steps(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


class _ProgressPrinter:
    """One updating progress line on a terminal, plain lines otherwise; all on stderr."""

    def __init__(self, quiet: bool = False):
        self.tty = sys.stderr.isatty()
        self.quiet = quiet
        self.step = ""
        self._open_line = False
        self.gone = False

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "step":
            self.step = payload["step"]
            self._line(f"[{self.step}] started", final=True)
        elif kind == "progress":
            done, total = payload["done"], payload["total"]
            if not total and payload.get("message") == "starting":
                return  # a step's fresh start: its "[step] started" line says it
            pct = f"{100 * done / total:5.1f}%" if total else ""
            eta = payload.get("eta_s")
            eta_s = f" ETA {fmt_duration(eta)}" if eta is not None else ""
            msg = payload.get("message") or ""
            self._line(f"[{self.step}] {done}/{total} {pct}{eta_s} {msg}".rstrip(),
                       final=not self.tty)
        elif kind == "log":
            self._line(f"[{self.step}] {payload['message']}", final=True)
        elif kind == "metric" and not self.tty and not self.quiet:
            pass  # metrics go to the session; the progress message carries the headline

    def _line(self, text: str, final: bool) -> None:
        if self.gone:
            return
        from engine.text import safe_text

        text = safe_text(text)  # a step's messages may quote a file's names
        try:
            if self.tty:
                sys.stderr.write("\r\033[K" + text + ("\n" if final else ""))
                self._open_line = not final
            elif final or not self.quiet:
                sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except OSError:  # the terminal hung up (EIO/EPIPE): the job must not fail for it
            self.gone = True

    def close(self) -> None:
        if self._open_line and not self.gone:
            try:
                sys.stderr.write("\n")
            except OSError:
                self.gone = True


# -- sessions and jobs ----------------------------------------------------------
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


# -- data -----------------------------------------------------------------------
def cmd_data(args: argparse.Namespace) -> int:
    if args.data_cmd == "tree":
        from engine.data.h5tree import format_tree

        print(format_tree(args.path, follow_external=args.follow_external))
        return 0
    if args.data_cmd == "gen":
        if args.kind != "retina":
            raise UserError(f"unknown generator {args.kind!r} (known: retina)")
        _check_gen_target(args)
        from engine.data.retina_gen import generate_retina

        t0 = time.perf_counter()
        # three recording blocks unless the file is too short to cut (at least 10 frames a block)
        blocks = args.blocks if args.blocks is not None else max(1, min(3, args.frames // 10))
        generate_retina(args.path, cells=args.cells, frames=args.frames, seed=args.seed, blocks=blocks,
                        repeats=args.repeats)
        print(f"wrote {args.path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        return 0
    raise UserError("usage: workbench data {gen retina PATH | tree PATH}")


def _check_gen_target(args: argparse.Namespace) -> None:
    """Refuse, in one line, what would lose data or surprise: bad sizes, a folder as the
    target, an existing file without --force, a folder that does not exist."""
    for name in ("cells", "frames"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be ≥ 1, got {getattr(args, name)}")
    path = Path(args.path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name, e.g. {path / 'naturalscene.h5'}")
    if path.exists() and not args.force:
        raise UserError(f"{path} exists; add --force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"folder {parent} does not exist; create it first (mkdir -p {parent})")


# -- report and browser view -----------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from engine.session_report import write_report

    s = _open_session(args, create=False)
    try:
        rep = write_report(s, args.output)
    except OSError as exc:
        raise UserError(f"cannot write the report: {exc}") from None
    print(f"wrote {rep.path} ({rep.tables} tables, {rep.equation_sets} equation sets, "
          f"{len(rep.figures)} figures)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The TUI in a browser via textual-serve, bound to localhost only: reach it through
    an SSH tunnel (ssh -L PORT:localhost:PORT server), never an open port."""
    import shlex

    from engine.session import check_name

    try:
        import textual_serve.server  # noqa: F401  (workbench.serve may be imported already)

        from workbench.serve import GuardedServer, new_token
    except ImportError:
        raise UserError("the browser view needs textual-serve: python3 -m pip install textual-serve") from None
    check_name(args.session)
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be 1-65535, got {args.port}")
    cmd = [sys.executable, "-m", "workbench.cli", "--session", args.session]
    if args.root:
        cmd += ["--root", str(_root(args))]
    # a token as Jupyter does: whoever can reach the port without it is refused
    server = GuardedServer(shlex.join(cmd), port=args.port, token=new_token(), title=f"workbench {args.session}")
    print(f"serving on {server.url} (localhost only; the token is required); from your machine: "
          f"ssh -L {args.port}:localhost:{args.port} <this server>, then open that address",
          file=sys.stderr, flush=True)
    server.serve()
    return 0


# -- parallel backend -------------------------------------------------------------
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


# -- TUI ------------------------------------------------------------------------
def cmd_tui(args: argparse.Namespace, name: str | None = None, resume: bool = False) -> int:
    """The TUI.  ``resume`` opens existing sessions only (a typo must not make an empty one);
    ``--session NEW`` creates one and says so."""
    from engine.session import check_name, list_sessions

    name = name or args.session
    check_name(name)
    root = _root(args)
    known = list_sessions(root)
    if resume and name not in known:
        raise UserError(f"no session {name!r} under {root} (sessions: {', '.join(known) or 'none'}); "
                        f"'workbench --session {name}' creates it")
    # textual-serve drives the app through pipes and names its driver; anything else needs a
    # terminal, or escape codes go to a file/pipe and the app never exits
    if not os.environ.get("TEXTUAL_DRIVER") and not (sys.stdout.isatty() and sys.stdin.isatty()):
        raise UserError("the workbench needs a terminal (stdin/stdout are not one); "
                        "for scripts use: workbench run / sessions / jobs / report")
    from workbench.app import WorkbenchApp

    data = [Path(d).expanduser() for d in getattr(args, "data", None) or []]
    for d in data:
        if not d.exists():
            raise UserError(f"--data {d}: no such file or folder")
    app = WorkbenchApp(session_name=name, root=root, data=[d.resolve() for d in data])
    created = name not in known
    if created:
        app.opening_note = f"new session {name!r} created in {root / name}"
    app.run()
    lines = [app.opening_note] if created else []
    if app.exit_message:
        lines.append(app.exit_message)
    for line in lines:
        print(line, file=sys.stderr)
    return app.return_code or 0


def _confirm(question: str, flag: str = "--yes") -> bool:
    """Ask y/N on the terminal; without one, refuse and name the flag that skips the question."""
    if not sys.stdin.isatty():
        raise UserError(f"{question.rstrip('? ')}: no terminal to ask on; add {flag} to go ahead")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


# -- parser ---------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description="Terminal workbench for neural-dynamics research.")
    p.add_argument("--session", default=os.environ.get("WORKBENCH_SESSION", "demo"),
                   help="session name (default: demo)")
    p.add_argument("--root", help="folder holding sessions (default: $WORKBENCH_SESSIONS, else sessions/ in "
                   "the workbench's own checkout, else the user data folder; `workbench sessions` says which)")
    p.add_argument("--data", action="append", metavar="PATH",
                   help="an HDF5/NWB file or a folder of them to browse (repeatable; nothing is copied)")
    sub = p.add_subparsers(dest="cmd")

    r = sub.add_parser("resume", help="open the TUI on a saved session")
    r.add_argument("name")
    r.add_argument("--data", action="append", metavar="PATH", default=argparse.SUPPRESS,
                   help="an HDF5/NWB file or a folder of them to browse (repeatable)")

    run = sub.add_parser("run", help="run an analysis (all steps, or --step)")
    run.add_argument("analysis")
    run.add_argument("--step", action="append", help="step(s) to run; repeat or comma-separate")
    run.add_argument("--session", dest="session", default=argparse.SUPPRESS)
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter")
    where = run.add_mutually_exclusive_group()  # a job runs here or in the background, not both
    where.add_argument("--detach", action="store_true", help="start as a background job, print its id")
    where.add_argument("--headless", action="store_true",
                       help="run here in the foreground with a progress line (the default; not with --detach)")
    run.add_argument("--json", action="store_true", help="print one JSON object of results at the end")
    run.add_argument("--seeds", metavar="LIST", help="run once per seed (0,1,2 or 0-4), as `workbench seeds`")
    run.add_argument("--from", dest="from_job", metavar="JOB_ID",
                     help="take the inputs of --step from this earlier job (default: the newest that made them)")

    sd = sub.add_parser("seeds", help="run an analysis once per seed, each seed its own job: mean ± spread per figure")
    sd.add_argument("analysis")
    sd.add_argument("--seeds", required=True, metavar="LIST", help="the seeds: 0,1,2 or 0-4")
    sd.add_argument("--step", action="append", help="step(s) to run; each seed takes its own earlier job's inputs")
    sd.add_argument("--session", dest="session", default=argparse.SUPPRESS)
    sd.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter (not seed)")
    sd.add_argument("--detach", action="store_true", help="run in the background (a logout stops nothing), print the sweep id")
    sd.add_argument("--at-once", type=int, default=1, metavar="N", help="with --detach: seeds running at the same time")
    sd.add_argument("--json", action="store_true", help="print one JSON object (summary and per-seed values) at the end")

    ss = sub.add_parser("sessions", help="list sessions, or show one")
    ss.add_argument("action", nargs="?", choices=["show"])
    ss.add_argument("name", nargs="?")

    j = sub.add_parser("jobs", help="list the jobs of a session")
    j.add_argument("--session", dest="session", default=argparse.SUPPRESS)
    j.add_argument("--resume", metavar="JOB_ID", help="resume an interrupted/cancelled/failed job")
    j.add_argument("--delete", metavar="JOB_ID", help="delete a finished job and its events (asks first)")
    j.add_argument("--yes", "-y", action="store_true", help="do not ask before deleting")

    c = sub.add_parser("cancel", help="cancel a running job")
    c.add_argument("job_id")

    d = sub.add_parser("data", help="generate or inspect datasets")
    dsub = d.add_subparsers(dest="data_cmd")
    g = dsub.add_parser("gen", help="write a synthetic dataset")
    g.add_argument("kind", help="retina")
    g.add_argument("path")
    g.add_argument("--cells", type=int, default=9)
    g.add_argument("--frames", type=int, default=30000)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--blocks", type=int, default=None,
                   help="recording blocks of the train split, time jumps between them (default 3)")
    g.add_argument("--repeats", type=int, default=5, help="noisy repeats of the test stimulus (test/repeats)")
    g.add_argument("--force", action="store_true", help="overwrite an existing file")
    t = dsub.add_parser("tree", help="print an HDF5 file's tree")
    t.add_argument("path")
    t.add_argument("--follow-external", action="store_true",
                   help="list what external links point to (other files); by default they are shown, not opened")

    pl = sub.add_parser("parallel", help="show or set where a session's parallel loops run (loky, dask, ray)")
    pl.add_argument("action", nargs="?", choices=["show", "set", "unset"], default="show")
    pl.add_argument("key", nargs="?", help=", ".join(_PARALLEL_KEYS))
    pl.add_argument("value", nargs="?")
    pl.add_argument("--session", dest="session", default=argparse.SUPPRESS)

    rp = sub.add_parser("report", help="write a Markdown report of a session (tables, equations, figures)")
    rp.add_argument("--session", dest="session", default=argparse.SUPPRESS)
    rp.add_argument("-o", "--output", metavar="PATH",
                    help="report file (.md) or folder (default: the session's artifacts/exports/)")

    sv = sub.add_parser("serve", help="the TUI in a browser on localhost (use an SSH tunnel)")
    sv.add_argument("--session", dest="session", default=argparse.SUPPRESS)
    sv.add_argument("--port", type=int, default=8000)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "run":
            return cmd_run(args)
        if args.cmd == "seeds":
            return cmd_seeds(args)
        if args.cmd == "sessions":
            return cmd_sessions(args)
        if args.cmd == "jobs":
            return cmd_jobs(args)
        if args.cmd == "cancel":
            return cmd_cancel(args)
        if args.cmd == "data":
            return cmd_data(args)
        if args.cmd == "parallel":
            return cmd_parallel(args)
        if args.cmd == "report":
            return cmd_report(args)
        if args.cmd == "serve":
            return cmd_serve(args)
        if args.cmd == "resume":
            return cmd_tui(args, args.name, resume=True)
        return cmd_tui(args)
    except UserError as exc:  # engine.errors: every error a user can cause and fix
        from engine.text import safe_text  # the message may quote a file's or a session's text

        print(f"workbench: {safe_text(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, as cat does; stdout is pointed at
        # /dev/null so that the interpreter's final flush cannot raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # a full disk is the user's to fix: one line, no traceback
        if exc.errno != errno.ENOSPC:
            raise
        print(f"workbench: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
