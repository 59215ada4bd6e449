"""Waiting for a condition in tests, instead of sleeping a fixed time."""

from __future__ import annotations

from collections.abc import Callable

import anyio


async def until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    """Return once ``condition()`` is true; fail after ``seconds``."""
    with anyio.fail_after(seconds):
        # Polled: the state belongs to code that signals nobody when it changes.
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.02)
