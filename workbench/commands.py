"""Command-palette entries: every analysis, every step, and pane switches."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


def _parallel_commands(app) -> list[tuple[str, object, str]]:
    """Pick where the session's parallel loops run (SINDy ensembles, scoring, MEIs)."""
    from engine import parallel

    try:
        current = parallel.load_config(app.session)
    except Exception:  # an unreadable setting must not break the palette
        current = parallel.ParallelConfig()
    where = {"loky": "processes on this machine", "dask": "dask.distributed: a scheduler or a local cluster",
             "ray": "ray's joblib backend"}
    return [(f"Parallel backend: {name}", partial(_set_parallel_backend, app, name),
             where[name] + ("  (current)" if name == current.backend else ""))
            for name in parallel.BACKENDS]


def _set_parallel_backend(app, name: str) -> None:
    from engine import parallel

    if getattr(app, "readonly", False):
        app.notify("read-only: change the backend in the workbench that owns this session", severity="warning")
        return
    try:
        cfg = parallel.save_config(app.session, backend=name)
    except parallel.ParallelError as exc:
        app.notify(str(exc), severity="error")
        return
    where = cfg.address or (f"{cfg.n_workers} local workers" if cfg.n_workers else "all local cores")
    app.notify(f"parallel backend: {cfg.backend} on {where}; jobs started from now on use it")


def ask_seeds(app) -> None:
    """The "Run over seeds…" form for the current analysis (the newest job's); on enter, the
    sweep starts in the background and the Results pane shows it as seeds end."""
    from engine import analyses
    from workbench.screens.seeds import SeedsScreen

    if getattr(app, "readonly", False):
        app.notify("read-only: start jobs from the workbench that owns this session", severity="warning")
        return
    def has_seed(name: str) -> bool:
        try:
            return "seed" in analyses.get(name).defaults()
        except Exception:  # a broken plug-in must not break the form
            return False

    recent = [j.analysis for j in reversed(getattr(app, "last_jobs", []))] + analyses.names()
    current = next((n for n in recent if has_seed(n)), "")
    app.push_screen(SeedsScreen(current), partial(_start_seeds, app))


def _start_seeds(app, request) -> None:
    from engine import seed_sweep
    from engine.errors import UserError
    from workbench.panes.seeds_view import PREFIX, seeds_text

    if request is None:
        return
    try:
        sweep = seed_sweep.create(app.session, request.analysis, request.seeds, at_once=request.at_once)
        seed_sweep.start_detached(app.session, sweep)
    except (UserError, OSError) as exc:
        app.notify(str(exc), severity="error")
        return
    app.notify(f"{sweep.analysis} over seeds {seeds_text(sweep.seeds)}: {sweep.at_once} at a time; "
               "Results shows mean ± spread as they finish", title=sweep.id)
    app.save_ui(**{"results.table": PREFIX + sweep.id})  # shown there, now and when reopened
    for pane in app.screen_stack[0].query("#results-pane"):
        pane.name_shown = PREFIX + sweep.id
        pane.load_tables()
    app.action_show_pane("results")
    app.request_poll()


class AnalysisCommands(Provider):
    RUN_ONLY = False  # RunCommands: only the run entries (keys r and s)

    def _commands(self) -> list[tuple[str, object, str]]:
        from engine import analyses

        app = self.app
        out = []
        for name in analyses.names():
            try:
                spec = analyses.get(name)
            except Exception:  # a broken plug-in must not break the palette
                continue
            # each run entry opens the parameter form first (values, types, ranges, help)
            out.append((f"Run {name}: all steps", partial(app.ask_run, name, None), spec.title))
            for step in spec.steps:
                out.append((f"Run {name}: {step.name}", partial(app.ask_run, name, [step.name]),
                            step.help))
        out.append(("Run over seeds…", partial(ask_seeds, app),
                    "one analysis once per seed, each seed its own job; mean ± spread per figure"))
        if self.RUN_ONLY:
            return out
        for i, pane in enumerate(("datasets", "training", "equations", "results"), 1):
            out.append((f"Show {pane} pane", partial(app.action_show_pane, pane), f"key {i}"))
        out.extend(_parallel_commands(app))
        # every job action of the jobs screen, by job id (newest first)
        for job in reversed(getattr(app, "last_jobs", [])):
            if job.active:
                out.append((f"Cancel job {job.id}", partial(app.cancel_job, job.id),
                            f"{job.analysis}, {job.state}"))
            else:
                if job.state != "finished":
                    out.append((f"Resume job {job.id}", partial(app.resume_job, job.id),
                                f"{job.analysis}, {job.state}"))
                out.append((f"Delete job {job.id}", partial(app.ask_delete_job, job.id),
                            f"{job.analysis}, {job.state}; artifacts stay on disk"))
        return out

    async def discover(self) -> Hits:
        for title, cb, help_text in self._commands():
            yield DiscoveryHit(title, cb, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, cb, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), cb, help=help_text)


class RunCommands(AnalysisCommands):
    """The run palette (keys r, s): each analysis and step, each opening its parameter form."""

    RUN_ONLY = True
