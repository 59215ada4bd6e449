"""Merged reads over in-process engines: a primary, secondaries and an oracle holding the union.

Every database is a real embedded engine (2.3.10 or 3.2.4) reached through
syncd's own RPC client with the SDK's values, as merged reads see a
secondary; the primary is one too (it answers ``query_raw`` in the SDK's
shape). The oracle is filled with the secondaries' rows (lowest priority
first), then the primary's upserted over them: the database the merged
answer must equal.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from prometheus_client import CollectorRegistry

from syncd.keys import KeyRule
from syncd.metrics import Metrics
from syncd.reads.merged import MergedReads, Source
from syncd.reads.statements import parse
from syncd.surreal.rpc import RpcClient

T = TypeVar("T")


class EngineSecondary:
    """A secondary as merged reads need it (``is_up``, ``call``), on a real engine."""

    def __init__(self, client: RpcClient) -> None:
        self.client = client
        self.up = True

    @property
    def is_up(self) -> bool:
        return self.up

    async def call(
        self, fn: Callable[[Any], Awaitable[T]], seconds: float, *, timeout_marks_down: bool = True
    ) -> T:
        with anyio.fail_after(seconds):
            return await fn(self.client)


async def open_engine(generation: int) -> RpcClient:
    """A fresh in-memory engine of ``generation``, namespace/database ``t``/``t``."""
    engine: Any = None
    if generation == 3:
        from surrealdb_embedded import AsyncEmbeddedDB

        engine = AsyncEmbeddedDB
    client = await RpcClient.connect("mem://", sdk_values=True, engine=engine)
    await client.use("t", "t")
    return client


@dataclass
class Union:
    """The databases of one differential case."""

    primary: RpcClient
    secondaries: list[RpcClient]
    oracle: RpcClient
    reads: MergedReads
    metrics: Metrics

    async def run_all(self, sql: str) -> None:
        """Run ``sql`` (a schema) on every database."""
        for db in [self.primary, *self.secondaries, self.oracle]:
            await db.query(sql)

    async def fill(
        self,
        table: str,
        primary: Sequence[Mapping[str, Any]],
        secondaries: Sequence[Sequence[Mapping[str, Any]]],
    ) -> None:
        """Rows into each database, and the oracle: secondaries (last first), then primary."""
        sql = f"INSERT INTO {table} $rows RETURN NONE"
        upsert = "FOR $r IN $rows { UPSERT $r.id CONTENT $r RETURN NONE }"
        if primary:
            await self.primary.query(sql, {"rows": list(primary)})
        for db, rows in zip(self.secondaries, secondaries, strict=True):
            if rows:
                await db.query(sql, {"rows": list(rows)})
        for rows in [*reversed(secondaries), primary]:
            if rows:
                await self.oracle.query(upsert, {"rows": list(rows)})

    async def merged(self, sql: str, vars: Mapping[str, Any] | None = None) -> Any:
        """The merged answer of ``sql``'s last statement."""
        answer = await self.reads.query_raw(self.primary, sql, dict(vars or {}), parse(sql))
        last = answer["result"][-1]
        assert last["status"] == "OK", last
        return last["result"]

    async def oracle_answer(self, sql: str, vars: Mapping[str, Any] | None = None) -> Any:
        """The oracle's answer of ``sql``'s last statement."""
        answer = await self.oracle.query_raw(sql, dict(vars or {}))
        last = answer["result"][-1]
        assert last["status"] == "OK", last
        return last["result"]


@asynccontextmanager
async def union(
    generation: int,
    secondaries: int = 1,
    *,
    tables: Mapping[str, Mapping[str, Any]] | None = None,
    max_rows: int = 100000,
    secondary_generation: int | None = None,
) -> AsyncIterator[Union]:
    """A primary, ``secondaries`` secondaries and an oracle, all in-process."""
    async with AsyncExitStack() as stack:
        opened: list[RpcClient] = []

        async def make(gen: int) -> RpcClient:
            client = await open_engine(gen)
            opened.append(client)
            return client

        primary = await make(generation)
        seconds = [await make(secondary_generation or generation) for _ in range(secondaries)]
        oracle = await make(generation)
        metrics = Metrics(CollectorRegistry())
        options = dict(tables or {})
        reads = MergedReads(
            [Source(f"s{i}", EngineSecondary(c)) for i, c in enumerate(seconds)],
            KeyRule({t: o.get("key") for t, o in options.items()}),
            query_timeout=30.0,
            metrics=metrics,
            active=lambda: True,
            newest={t: o["version"] for t, o in options.items() if o.get("prefer") == "newest"},
            max_rows=max_rows,
            primary_unmergeable=frozenset(
                t for t, o in options.items() if o.get("unmergeable") == "primary"
            ),
        )

        async def close() -> None:
            await reads.aclose()
            for client in opened:
                await client.close()

        stack.push_async_callback(close)
        yield Union(primary, seconds, oracle, reads, metrics)
