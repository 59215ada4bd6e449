"""Looking at a secondary's schema from a test: INFO FOR TABLE, waited on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from tests.support.replica import connect_secondary


async def secondary_info(url: str, table: str) -> dict[str, Any]:
    """``INFO FOR TABLE`` on the secondary (its indexes, fields, events)."""
    db = await connect_secondary(url)
    try:
        with anyio.fail_after(10):
            info: dict[str, Any] = await db.query(f"INFO FOR TABLE {table}")
            return info
    finally:
        with anyio.move_on_after(5):
            await db.close()


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    """Until ``check()`` is true (it reads a database: async); fail after ``seconds``."""
    with anyio.fail_after(seconds):
        while not await check():  # noqa: ASYNC110 (a database to poll, nobody to signal)
            await anyio.sleep(0.1)


async def has_indexes(url: str, *names: str, table: str = "vector_memories") -> bool:
    """Whether the secondary's ``table`` has every index named."""
    info = await secondary_info(url, table)
    return set(names) <= set(info.get("indexes", {}))
