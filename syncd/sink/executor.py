"""The executor: apply a batch of operations to the secondary as idempotent UPSERTs.

One round trip per batch: one ``FOR $r IN $rows { UPSERT ... }`` statement per
table (measured here: about 25x the throughput of one UPSERT per round trip).
A ``FOR`` statement is all-or-nothing, so when one record in it is refused
the executor sends that table's records again as one statement each, in one
more round trip, and learns exactly which records the secondary rejects: the
others are applied, and each rejected one goes back to the worker as a
:class:`Rejection` carrying the :class:`~syncd.surreal.failures.ErrorKind` its
error was given where it entered, for the worker to retry or dead-letter. A
batch never fails as a whole because of one record.

A table with a natural key (``tables: {kv_memories: {key: [user_id, key]}}``)
is upserted by that key: an application that rewrites a record under a new id
(DELETE + CREATE) updates the secondary's one record instead of colliding with
its UNIQUE index. A record new to the secondary keeps the primary's id.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.config import is_identifier
from syncd.keys import KeyRule, id_table
from syncd.metrics import Metrics
from syncd.sink.operation import Operation, group_by_table
from syncd.sink.upserts import build_statement
from syncd.surreal.connection import Client, ManagedConnection
from syncd.surreal.failures import ErrorKind, Failure, failure_of
from syncd.surreal.frames import EncodedArray

__all__ = ["Executor", "Rejection", "is_edge"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """One operation the secondary refused: what kind of refusal, and its whole text.

    The text quotes the refused values: it goes to the dead-letter file only,
    logs name the ``kind``.
    """

    op: Operation
    kind: ErrorKind
    text: str

    @classmethod
    def of(cls, op: Operation, failure: Failure) -> Rejection:
        """``op`` refused with ``failure``."""
        return cls(op, failure.kind, failure.message)


def is_edge(record: Mapping[str, Any]) -> bool:
    """Whether ``record`` is a graph edge (``in`` and ``out`` are record ids)."""
    return id_table(record.get("in")) is not None and id_table(record.get("out")) is not None


def _param(op: Operation, fields: Sequence[str] | None) -> dict[str, Any]:
    if not fields:
        return op.record
    content = {k: v for k, v in op.record.items() if k != "id"}
    return {"id": op.record.get("id"), "content": content}


class _Group:
    """Operations of one table sent with one statement form."""

    __slots__ = ("edge", "fields", "ops", "table", "version")

    def __init__(
        self,
        table: str,
        fields: Sequence[str] | None,
        ops: list[Operation],
        edge: bool,
        version: str | None = None,
    ) -> None:
        self.table, self.fields, self.ops, self.edge = table, fields, ops, edge
        self.version = version

    def statement(self, var: str, table_var: str, *, many: bool) -> str:
        return build_statement(
            var, table_var, self.fields, many=many, edge=self.edge, version=self.version
        )


def _query_raw(sql: str, params: dict[str, Any]) -> Callable[[Client], Awaitable[dict[str, Any]]]:
    # The client encodes the frame with syncd's fast codec: the SDK's
    # pure-Python encoder was most of a batch's cost on the event loop.
    async def run(client: Client) -> dict[str, Any]:
        return await client.query_raw(sql, params)

    return run


def _batch(
    sql: str, params: dict[str, Any], plain: Callable[[], dict[str, Any]]
) -> Callable[[Client], Awaitable[dict[str, Any]]]:
    # ``params`` holds each id-keyed group's records as the CBOR each operation
    # kept from capture (spliced into the frame, not encoded again); a client
    # without ``query_encoded`` (a test's fake session) gets ``plain()``.
    async def run(client: Client) -> dict[str, Any]:
        query_encoded = getattr(client, "query_encoded", None)
        if query_encoded is None:
            return await client.query_raw(sql, plain())
        answer: dict[str, Any] = await query_encoded(sql, params)
        return answer

    return run


def _statement_failure(result: Any) -> Failure | None:
    if isinstance(result, Mapping) and result.get("status") == "ERR":
        return failure_of(result)
    return None


def _rpc_failure(response: Mapping[str, Any]) -> Failure | None:
    error = response.get("error")
    if error is None:
        return None
    # An error object without a message is still an error, of no known kind.
    return failure_of(response) or Failure(ErrorKind.OTHER, str(error))


_UNEXPECTED = Failure(ErrorKind.RESPONSE, "unexpected response to a per-record upsert")


class Executor:
    """Applies batches through a :class:`ManagedConnection` to the secondary."""

    def __init__(
        self,
        conn: ManagedConnection,
        *,
        keys: KeyRule,
        write_timeout: float,
        metrics: Metrics | None = None,
        versions: Mapping[str, str] | None = None,
    ) -> None:
        """``versions`` maps a table to its version field: its upserts are conditional."""
        self._conn = conn
        self._keys = keys
        self._versions = dict(versions or {})
        self._timeout = write_timeout
        self._metrics = metrics

    async def apply(self, ops: Sequence[Operation]) -> list[Rejection]:
        """Upsert ``ops``; return the ones the secondary refused, each with its failure.

        Raises ``SecondaryUnavailable`` when the secondary cannot be reached or
        does not answer in time; then nothing is known to be applied, and the
        whole batch may be sent again (UPSERTs are idempotent).
        """
        if not ops:
            return []
        groups = self._groups(ops)
        statements: list[str] = []
        params: dict[str, Any] = {}
        for index, group in enumerate(groups):
            if group.fields:  # natural key: {"id", "content"} wrappers, encoded now
                params[f"b{index}"] = [_param(op, group.fields) for op in group.ops]
            else:  # the records as they are: their CBOR, made once at capture
                params[f"b{index}"] = EncodedArray(tuple(op.record_bytes() for op in group.ops))
            params[f"t{index}"] = group.table
            statements.append(group.statement(f"b{index}", f"$t{index}", many=True))

        def plain() -> dict[str, Any]:
            out = dict(params)
            for index, group in enumerate(groups):
                out[f"b{index}"] = [_param(op, group.fields) for op in group.ops]
            return out

        started = time.perf_counter()
        batch = _batch(";\n".join(statements), params, plain)
        response = await self._conn.call(batch, self._timeout)
        if self._metrics is not None:
            self._metrics.apply_seconds.observe(time.perf_counter() - started)
            self._metrics.batch_size.observe(len(ops))
        rejected: list[Rejection] = []
        for group, failure in self._failed_groups(response, groups):
            if failure is not None and failure.kind is ErrorKind.UNDEFINED_TABLE:
                await self._define_table(group.table)
            rejected.extend(await self._apply_one_by_one(group))
        return rejected

    async def _define_table(self, table: str) -> None:
        """Define ``table`` on the secondary, as writing to it would on 2.x.

        3.x refuses to look a key up in a table it does not have (NotFound),
        where 2.x reads it as empty; the natural-key and versioned forms look
        up first. Only a plain identifier is spliced into the statement.
        """
        if not is_identifier(table):
            return
        await self._conn.call(_query_raw(f"DEFINE TABLE IF NOT EXISTS {table}", {}), self._timeout)

    def _groups(self, ops: Sequence[Operation]) -> list[_Group]:
        groups: list[_Group] = []
        for table, members in group_by_table(ops).items():
            fields = self._keys.fields(table) or None
            version = self._versions.get(table)
            edges: list[Operation] = []
            natural: list[Operation] = []
            by_id: list[Operation] = []
            for op in members:  # one look at each record (this ran per operation, twice)
                record = op.record
                if "in" in record and "out" in record and is_edge(record):
                    edges.append(op)
                elif self._keys.natural(table, record):
                    natural.append(op)
                else:
                    by_id.append(op)
            for group in (
                _Group(table, fields, natural, False, version),
                _Group(table, None, by_id, False, version),
                _Group(table, None, edges, True, version),
            ):
                if group.ops:
                    groups.append(group)
        return groups

    @staticmethod
    def _failed_groups(
        response: Mapping[str, Any], groups: list[_Group]
    ) -> list[tuple[_Group, Failure | None]]:
        """The groups whose statement failed, with the failure (``None``: unknown)."""
        if _rpc_failure(response) is not None:
            return [(g, None) for g in groups]
        results = response.get("result")
        if not isinstance(results, list) or len(results) != len(groups):
            return [(g, None) for g in groups]
        failed = ((g, _statement_failure(r)) for g, r in zip(groups, results, strict=True))
        return [(g, failure) for g, failure in failed if failure is not None]

    async def _apply_one_by_one(self, group: _Group) -> list[Rejection]:
        statements: list[str] = []
        params: dict[str, Any] = {"t": group.table}
        for index, op in enumerate(group.ops):
            params[f"p{index}"] = _param(op, group.fields)
            statements.append(group.statement(f"p{index}", "$t", many=False))
        response = await self._conn.call(_query_raw(";\n".join(statements), params), self._timeout)
        whole = _rpc_failure(response)
        results = response.get("result")
        if whole is not None or not isinstance(results, list) or len(results) != len(group.ops):
            return [Rejection.of(op, whole or _UNEXPECTED) for op in group.ops]
        rejected: list[Rejection] = []
        for op, result in zip(group.ops, results, strict=True):
            failure = _statement_failure(result)
            if failure is not None:
                rejected.append(Rejection.of(op, failure))
        return rejected
