"""The ``workbench`` command's subcommands, by area; :mod:`workbench.cli` parses the
arguments and dispatches to them.

``common`` (the sessions root, opening a session, asking y/N), ``progress`` (the progress
line on stderr), ``run`` (run and seeds), ``sessions`` (sessions, jobs, cancel, parallel),
``data`` (generate and inspect datasets), ``views`` (the TUI, the browser view, the report).
"""
