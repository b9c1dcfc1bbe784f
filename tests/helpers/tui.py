"""Waiting for a running app: its workers done, what they posted back handled, redraws made."""

from __future__ import annotations

import asyncio


async def workers_done(app, timeout: float = 60.0) -> None:
    """Wait until the app's workers have finished and the messages they posted back have been
    handled (a handler may start more workers: those are waited for too).  One replaced by a
    newer one of its exclusive group (the same figure asked for twice) ends cancelled, which
    is normal; a worker that raised fails the wait."""
    from textual.worker import WorkerCancelled

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        results = await asyncio.gather(*[w.wait() for w in list(app.workers)], return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, WorkerCancelled):
                raise r
        await _messages_handled(app, deadline)
        if all(w.is_finished for w in list(app.workers)):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"workers still running after {timeout} s: {list(app.workers)}")


async def _messages_handled(app, deadline: float) -> None:
    """Until every widget's queue has stayed empty for two looks in a row."""
    quiet = 0
    while quiet < 2 and asyncio.get_running_loop().time() < deadline:
        nodes = [app, *(n for screen in app.screen_stack for n in screen.walk_children(with_self=True))]
        quiet = quiet + 1 if all(n._message_queue.empty() for n in nodes) else 0
        await asyncio.sleep(0.01)


async def settle(pilot, seconds: float = 0.6) -> None:
    """Let polls and redraws happen, wait for the workers, then one more refresh."""
    await pilot.pause(seconds)
    await workers_done(pilot.app)
    await pilot.pause()


async def quiet(pilot, rounds: int = 100) -> None:
    """Pause, wait for workers, pause again, until no worker is running (a worker's result
    may start the next one: opening a file, then its preview)."""
    for _ in range(rounds):
        await pilot.pause()
        await workers_done(pilot.app)
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return


def static_text(widget, width: int = 120) -> str:
    """Plain text of whatever a Static shows (str, Text or a rich Table)."""
    import io

    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def datasets_app(paths):
    """An app holding only the Datasets pane, on ``paths``."""
    from textual.app import App, ComposeResult

    from workbench.panes.datasets import DatasetsPane

    class PaneApp(App):
        def compose(self) -> ComposeResult:
            yield DatasetsPane(paths, id="datasets")

    return PaneApp()
