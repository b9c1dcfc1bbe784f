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
import errno
import os
import sys

# what a user can fix (here: bad arguments; in the engine: bad parameters, data, sessions,
# training...) is a UserError: one line on stderr, exit status 2, never a traceback
from engine.errors import UserError

# the subcommands, by area (workbench.cli_commands); main() looks each one up here when it
# runs, so that replacing one on this module (tests do) takes effect
from workbench.cli_commands.data import cmd_data
from workbench.cli_commands.run import cmd_run, cmd_seeds
from workbench.cli_commands.sessions import _PARALLEL_KEYS, cmd_cancel, cmd_jobs, cmd_parallel, cmd_sessions
from workbench.cli_commands.views import cmd_report, cmd_serve, cmd_tui

EXIT_USAGE = 2


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
