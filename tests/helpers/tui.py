"""Waiting for a running app: its workers done, its redraws made."""

from __future__ import annotations


async def workers_done(app) -> None:
    """Wait for the app's workers.  One replaced by a newer one of its exclusive group (the
    same figure asked for twice) ends cancelled, which is normal; a worker that raised fails."""
    import asyncio

    from textual.worker import WorkerCancelled

    results = await asyncio.gather(*[w.wait() for w in list(app.workers)], return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, WorkerCancelled):
            raise r


async def settle(pilot, seconds: float = 0.6) -> None:
    """Let polls and redraws happen, wait for the workers, then one more refresh."""
    await pilot.pause(seconds)
    await workers_done(pilot.app)
    await pilot.pause()
