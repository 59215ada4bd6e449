"""A scratch engine: evaluates a statement over given rows, in this process.

Merged reads deduplicate the sources' rows, then let an engine of the
primary's generation answer the original statement over the winners, so the
answer is SurrealQL's own. Rules of this file:

- one engine per generation, opened on first use and kept for the process's
  life (opening costs milliseconds; a query costs far less);
- every evaluation is one frame, in a database of its own that the frame
  removes at its end; the engine answers one frame at a time, so two
  evaluations never see each other's rows;
- rows travel as the SDK's values (``sdk_values``), the values the primary's
  application connection and the secondaries' merged reads decode to.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio

from syncd.config import is_identifier
from syncd.surreal.rpc import RpcClient

__all__ = ["ROWS_VAR", "ScratchEngine", "ScratchRefused", "quoted"]

#: The variable holding the rows a frame inserts (unlikely to clash with an application's).
ROWS_VAR = "__syncd_rows"
_NAMESPACE = "syncd_scratch"


class ScratchRefused(Exception):
    """The scratch engine refused a whole frame (a parse error): the statement is at fault."""


def quoted(name: str) -> str:
    """A table name as SurrealQL writes it (backticks when it is not a plain identifier)."""
    return name if is_identifier(name) else "`" + name.replace("`", "\\`") + "`"


def _engine(generation: int) -> Callable[[str], Any] | None:
    if generation >= 3:
        from surrealdb_embedded import AsyncEmbeddedDB

        return AsyncEmbeddedDB
    return None  # the SDK's own 2.x engine, open_transport's default


class ScratchEngine:
    """In-memory engines (2.x and 3.x) answering statements over rows handed to them."""

    def __init__(self) -> None:
        """Nothing is opened until the first evaluation."""
        self._clients: dict[int, RpcClient] = {}
        self._opening = anyio.Lock()
        self._names = itertools.count(1)

    async def _client(self, generation: int) -> RpcClient:
        async with self._opening:
            client = self._clients.get(generation)
            if client is None or not client.is_open:
                client = await RpcClient.connect(
                    "mem://", role="scratch", sdk_values=True, engine=_engine(generation)
                )
                self._clients[generation] = client
            return client

    async def evaluate(
        self,
        generation: int,
        *,
        table: str,
        definitions: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        statements: Sequence[str],
        vars: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        """The result entries of ``statements`` run over a table ``table`` holding ``rows``.

        ``definitions`` (analyzers, indexes) are run on the empty table first.
        An engine error on one of ``statements`` comes back as its ``ERR`` entry.
        """
        client = await self._client(generation)
        database = f"q{next(self._names)}"
        head = [
            f"USE NS {_NAMESPACE} DB {database}",
            f"DEFINE TABLE {quoted(table)} SCHEMALESS",
            *definitions,
        ]
        if rows:
            head.append(f"INSERT INTO {quoted(table)} ${ROWS_VAR} RETURN NONE")
        sql = ";\n".join([*head, *statements, f"REMOVE DATABASE {database}"]) + ";"
        answer = await client.query_raw(sql, {**(vars or {}), ROWS_VAR: list(rows)})
        results = answer.get("result")
        if not isinstance(results, list) or len(results) != len(head) + len(statements) + 1:
            raise ScratchRefused(str(answer.get("error")))
        failed = [r for r in results[: len(head)] if r.get("status") != "OK"]
        if failed:
            raise RuntimeError(f"the scratch engine refused the rows: {failed[0].get('result')}")
        return list(results[len(head) : len(head) + len(statements)])

    async def close(self) -> None:
        """Close every engine opened."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
