"""What shows a session: the TUI (``workbench``, ``resume``), the browser view (``serve``)
and the Markdown report (``report``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.errors import UserError
from workbench.cli_commands.common import _open_session, _root


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
