"""Both embedded SurrealDB engines, in-process, behind one small interface.

Generation 2 is surrealdb-core 2.3.10 inside the pinned ``surrealdb`` SDK
wheel; generation 3 is 3.2.4 from ``surrealdb-embedded``. Both take a CBOR
request frame and return the CBOR answer; both raise on some errors instead
of answering with an error frame. Frames are built and read with cbor2, so
nothing here goes through the SDK's lossy codec.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import cbor2

GENERATIONS = (2, 3)


def engine_class(generation: int) -> Any:
    """The ``AsyncEmbeddedDB`` class of a generation."""
    if generation == 2:
        from surrealdb._surrealdb_ext import AsyncEmbeddedDB as V2

        return V2
    if generation == 3:
        from surrealdb_embedded import AsyncEmbeddedDB as V3

        return V3
    raise ValueError(f"no embedded engine for generation {generation}")


class EngineRaised(Exception):
    """The engine raised instead of answering; ``kind`` is the exception's type name."""

    def __init__(self, kind: str, message: str) -> None:
        """Keep the original exception's type name and text."""
        super().__init__(message)
        self.kind = kind
        self.message = message


class Engine:
    """One open engine: ``rpc`` sends a frame and decodes the answer."""

    def __init__(self, db: Any, generation: int) -> None:
        """Wrap an open ``AsyncEmbeddedDB``."""
        self.db = db
        self.generation = generation
        self._ids = itertools.count(1)

    async def rpc(self, method: str, *params: Any, request_id: str | None = None) -> Any:
        """The decoded answer frame (``{"id", "result"}`` or ``{"id", "error"}``).

        Raises :class:`EngineRaised` when the engine raises.
        """
        frame: dict[str, Any] = {"id": request_id or f"t{next(self._ids)}", "method": method}
        if params:
            frame["params"] = list(params)
        try:
            answer = await self.db.execute(cbor2.dumps(frame))
        except (RuntimeError, ValueError) as exc:
            raise EngineRaised(type(exc).__name__, str(exc)) from None
        return cbor2.loads(answer)

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        """The statement results of ``sql``; raises on an error frame or exception."""
        answer = await self.rpc("query", sql, params or {})
        if "error" in answer:
            raise EngineRaised("error frame", str(answer["error"].get("message")))
        return list(answer["result"])

    async def one(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        """The value of the single statement ``sql``; raises if it failed."""
        (result,) = await self.query(sql, params)
        if result.get("status") != "OK":
            raise EngineRaised("ERR", str(result.get("result")))
        return result.get("result")


@asynccontextmanager
async def open_engine(
    generation: int, namespace: str = "syncd", database: str = "test"
) -> AsyncIterator[Engine]:
    """A fresh in-memory engine of ``generation``, using ``namespace``/``database``."""
    db = engine_class(generation)("mem://")
    await db.connect()
    try:
        engine = Engine(db, generation)
        await engine.rpc("use", namespace, database)
        yield engine
    finally:
        await db.close()
        # close() returns before the engine's runtime settles (see devserver).
        await asyncio.sleep(0.05)
