"""Steps a stop request can cut short: start-up and table adoption wait, SIGTERM must not."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from syncd.errors import SyncdError

__all__ = ["Stopped", "unless_stopped"]


class Stopped(Exception):
    """A stop was requested while a step waited (for the primary, for a backfill chunk)."""


async def unless_stopped(stop: anyio.Event, step: Callable[[], Awaitable[None]]) -> None:
    """Run ``step``; ``stop`` being set cancels it and raises :class:`Stopped`.

    A :class:`~syncd.errors.SyncdError` from ``step`` is re-raised bare, not
    wrapped in an ExceptionGroup, so the CLI can print it as one line.
    """
    finished = False
    failure: SyncdError | None = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await stop.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        try:
            await step()
            finished = True
        except Stopped:
            pass
        except SyncdError as exc:
            failure = exc
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if not finished:
        raise Stopped
