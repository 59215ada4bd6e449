"""Both SurrealDB engine generations in-process, spoken to with raw RPC frames.

2.3.10 ships inside the ``surrealdb`` SDK; 3.2.4 is the ``surrealdb-embedded``
package. Frames are encoded with the SDK's codec here (tests of statements,
not of the codec).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from surrealdb.data.cbor import decode, encode

GENERATIONS = (2, 3)
_ids = itertools.count(1)


class Engine:
    """One in-memory engine with ``use``d namespace and database."""

    def __init__(self, db: Any, generation: int) -> None:
        self._db = db
        self.generation = generation

    async def rpc(self, method: str, params: list[Any]) -> Any:
        """The decoded answer's ``result``; an engine error raises RuntimeError."""
        frame = bytes(encode({"id": str(next(_ids)), "method": method, "params": params}))
        answer = decode(await self._db.execute(frame))
        if "error" in answer:
            raise RuntimeError(str(answer["error"]))
        return answer["result"]

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        """One ``{status, result}`` per statement (3.x: BEGIN/COMMIT included)."""
        return list(await self.rpc("query", [sql, params or {}]))

    async def values(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The last statement's result; raises if any statement failed."""
        results = await self.query(sql, params)
        failed = [r["result"] for r in results if r.get("status") != "OK"]
        if failed:
            raise RuntimeError(str(failed[0]))
        return results[-1]["result"]


@asynccontextmanager
async def engine(generation: int) -> AsyncIterator[Engine]:
    """An in-memory engine of ``generation`` (2 or 3), namespace ``t``, database ``t``."""
    if generation == 2:
        from surrealdb._surrealdb_ext import AsyncEmbeddedDB
    else:
        from surrealdb_embedded import AsyncEmbeddedDB
    db = AsyncEmbeddedDB("mem://")
    await db.connect()
    try:
        eng = Engine(db, generation)
        await eng.rpc("use", ["t", "t"])
        yield eng
    finally:
        await db.close()
        await anyio.sleep(0.05)  # the engine's threads wind down before the next one starts
