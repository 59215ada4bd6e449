"""Waiting for a condition in tests, instead of sleeping a fixed time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


async def until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    """Return once ``condition()`` is true; fail after ``seconds``."""
    with anyio.fail_after(seconds):
        # Polled: the state belongs to code that signals nobody when it changes.
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.02)


async def polled(
    read: Callable[[], Awaitable[T]],
    done: Callable[[T], object],
    seconds: float = 30.0,
    every: float = 0.2,
) -> T:
    """Await ``read()`` until ``done`` of its value is true; return that value.

    For state that takes a round trip to look at (a secondary's rows): fails
    after ``seconds``, showing the last value read.
    """
    deadline = anyio.current_time() + seconds
    while True:
        value = await read()
        if done(value):
            return value
        if anyio.current_time() > deadline:
            raise AssertionError(f"not done after {seconds}s; last read: {value!r:.500}")
        await anyio.sleep(every)
