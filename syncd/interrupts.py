"""Running a command's async body so that Ctrl-C always stops it.

asyncio's own Ctrl-C is a bare cancel of the main task, and a cancel scope of
the body that is cancelling itself at that moment can take it for its own and
swallow it: the command then runs to its end. Here the signal is received on
the event loop and cancels the body through a scope of its own, and
:class:`KeyboardInterrupt` is raised once the body has unwound (clean-up in
``finally`` blocks and ``async with`` exits has run); the CLI turns it into
exit 130.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import anyio

__all__ = ["run_until_interrupted"]

T = TypeVar("T")


def run_until_interrupted(
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    signals: Sequence[signal.Signals] = (signal.SIGINT,),
) -> T:
    """``anyio.run(fn, *args)``; one of ``signals`` cancels it and raises KeyboardInterrupt."""
    return anyio.run(_until_interrupted, partial(fn, *args), tuple(signals))


async def _until_interrupted(
    body: Callable[[], Awaitable[T]], signals: tuple[signal.Signals, ...]
) -> T:
    interrupted = False
    results: list[T] = []
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            nonlocal interrupted
            with anyio.open_signal_receiver(*signals) as received:
                async for _ in received:
                    interrupted = True
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(watch)
        results.append(await body())
        tg.cancel_scope.cancel()
    if interrupted or not results:
        raise KeyboardInterrupt
    return results[0]
