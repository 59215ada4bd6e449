"""The library's face: an SDK connection wrapped so writes replicate and reads merge.

``rep.wrap(primary)`` returns a :class:`ReplicatedConnection` with the same
async methods as the SDK connection; the application keeps using it as before.

Write path — the primary answers first, and the application's call returns as
soon as it has: the records the primary returned are copied and put on the
queue (O(1), never waits for the secondary). Records written by a ``query``
statement that returns them (CREATE / UPSERT / UPDATE / INSERT / RELATE with no
RETURN clause or RETURN AFTER) are captured too. A write whose records do not
come back (``RETURN NONE``, ``RETURN DIFF``, a projection, a write inside a
``FOR`` block) cannot be seen here: it is counted in
``syncd_uncaptured_writes_total`` and logged; the daemon's changefeed capture
(``syncd run``) sees every write. Deletes are never propagated.

Read path — ``select`` and SELECT-only ``query`` go to the primary (required)
and the secondary (optional, bounded by ``query_timeout``) in parallel; rows
are merged one per dedup key, the primary's row winning. If the secondary is
down, slow or failing, the primary's rows come back alone, with a warning and
a metric.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from surrealdb.connections.utils_mixin import UtilsMixin
from surrealdb.data.types.table import Table

from syncd.config import is_identifier
from syncd.errors import SyncdError
from syncd.merger import merge_rows
from syncd.statements import Statement, is_read_only, parse, result_index

if TYPE_CHECKING:
    from syncd.replicator import Replicator

log = structlog.get_logger("syncd.wrapper")


def _copy(value: Any) -> Any:
    """Copy the containers of a record, so the application mutating what it got
    back cannot change what will be replicated. Scalars and SDK values are
    immutable in practice and shared."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def rows_of(result: Any) -> list[Mapping[str, Any]]:
    """The record-shaped rows in an SDK result (a dict, or a list of them)."""
    if isinstance(result, Mapping):
        return [result]
    if isinstance(result, list):
        return [row for row in result if isinstance(row, Mapping)]
    return []


class ReplicatedConnection:
    """An SDK connection whose writes replicate and whose reads merge.

    Methods syncd does not touch are delegated to the wrapped connection.
    """

    def __init__(self, primary: Any, replicator: Replicator) -> None:
        self._primary = primary
        self._rep = replicator

    @property
    def primary(self) -> Any:
        """The wrapped SDK connection."""
        return self._primary

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not defined here: use, signin, info, live, ...
        return getattr(self._primary, name)

    # -- writes ------------------------------------------------------------

    async def _write(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = await getattr(self._primary, method)(*args, **kwargs)
        self._rep.capture(rows_of(result), copy=_copy)
        return result

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        """``create`` on the primary; the created record is replicated."""
        return await self._write("create", *args, **kwargs)

    async def upsert(self, *args: Any, **kwargs: Any) -> Any:
        """``upsert`` on the primary; the resulting records are replicated."""
        return await self._write("upsert", *args, **kwargs)

    async def update(self, *args: Any, **kwargs: Any) -> Any:
        """``update`` on the primary; the resulting records are replicated."""
        return await self._write("update", *args, **kwargs)

    async def merge(self, *args: Any, **kwargs: Any) -> Any:
        """``merge`` on the primary; the resulting records are replicated."""
        return await self._write("merge", *args, **kwargs)

    async def patch(self, *args: Any, **kwargs: Any) -> Any:
        """``patch`` on the primary; the resulting records are replicated."""
        return await self._write("patch", *args, **kwargs)

    async def insert(self, *args: Any, **kwargs: Any) -> Any:
        """``insert`` on the primary; the inserted records are replicated."""
        return await self._write("insert", *args, **kwargs)

    async def insert_relation(self, *args: Any, **kwargs: Any) -> Any:
        """``insert_relation`` on the primary; the relation records are replicated."""
        return await self._write("insert_relation", *args, **kwargs)

    async def delete(self, *args: Any, **kwargs: Any) -> Any:
        """``delete`` on the primary only: deletes are never propagated."""
        return await self._primary.delete(*args, **kwargs)

    async def query_raw(self, query: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        """``query_raw`` on the primary; records its write statements return are captured."""
        response = await self._primary.query_raw(query, params, **kw)
        self._capture_statements(parse_safely(query), response)
        return response

    async def query(self, query: str, vars: dict[str, Any] | None = None, **kw: Any) -> Any:
        """``query`` with SDK semantics (first statement's result).

        SELECT-only queries are merged with the secondary; others run on the
        primary and the records their write statements return are captured.
        """
        statements = parse_safely(query)
        reads_only = bool(statements) and is_read_only(statements or [])
        if reads_only and self._rep.merges_reads and not kw and _mergeable(statements or []):
            response = await self._merged_raw(query, vars, statements or [])
        elif reads_only:
            if self._rep.merges_reads:
                self._rep.count_read("primary_only_unsupported")
            response = await self._primary.query_raw(query, vars, **kw)
        else:
            response = await self._primary.query_raw(query, vars, **kw)
            self._capture_statements(statements, response)
        # The SDK's own checks, so errors are exactly the ones it raises.
        UtilsMixin.check_response_for_error(response, "query")
        UtilsMixin.check_response_for_result(response, "query")
        UtilsMixin._check_query_result(response["result"][0])
        return response["result"][0]["result"]

    def _capture_statements(self, statements: list[Statement] | None, response: Any) -> None:
        if not isinstance(response, Mapping) or not isinstance(response.get("result"), list):
            return
        results: list[Any] = response["result"]
        index = result_index(statements) if statements is not None else None
        if index is None or sum(i is not None for i in index) != len(results):
            # Cannot tell which result belongs to which statement: capture
            # nothing rather than replicate the rows of a SELECT or a DELETE.
            if statements is None or any(s.is_write for s in statements):
                self._rep.count_uncaptured("unaligned_query")
            return
        for statement, position in zip(statements or [], index, strict=True):
            if position is None or not statement.is_write:
                continue
            result = results[position]
            if not isinstance(result, Mapping) or result.get("status") != "OK":
                continue
            if statement.captures_records:
                self._rep.capture(rows_of(result.get("result")), copy=_copy)
            elif statement.kind != "DELETE":
                self._rep.count_uncaptured(
                    f"return_{(statement.returns or statement.kind).lower()}"
                )

    # -- reads -------------------------------------------------------------

    async def select(self, *args: Any, **kwargs: Any) -> Any:
        """``select`` from the primary merged with the secondary; primary wins."""
        primary_call = self._primary.select(*args, **kwargs)
        if not self._rep.merges_reads or kwargs:
            return await primary_call
        table = _whole_table(args)
        if table is not None and self._rep.config.table_key(table) is None:
            return await self._select_table(primary_call, table)

        async def secondary(conn: Any) -> Any:
            return await conn.select(*args)

        primary, extra = await self._both(primary_call, secondary)
        if extra is None or not isinstance(primary, list) or not isinstance(extra, list):
            return primary
        return merge_rows(primary, rows_of(extra), key=self._rep.row_key)

    async def _select_table(self, primary_call: Awaitable[Any], table: str) -> Any:
        """A whole id-keyed table, merged; the secondary sends full rows only where needed.

        Decoding rows is most of a merged read's cost (the SDK's CBOR decoder
        is pure Python), and in the steady state the secondary holds the same
        records as the primary, which win anyway. So the secondary first sends
        only its record ids, alongside the primary's read; then, only if it
        holds records the primary lacks, those records, in one more round
        trip. The answer is the one merging full rows gives: the primary's
        rows, then the secondary's others in the secondary's order. The
        secondary's two calls share one ``query_timeout``; time spent waiting
        for the primary is not counted against it.
        """
        rep = self._rep
        spent = [0.0]

        async def ids(conn: Any) -> Any:
            started = time.monotonic()
            try:
                return await conn.query("SELECT id FROM type::table($t)", {"t": table})
            finally:
                spent[0] = time.monotonic() - started

        primary, heads, outcome = await self._parallel(primary_call, ids)
        if heads is None or not isinstance(primary, list) or not isinstance(heads, list):
            rep.count_read(outcome)
            return primary
        seen = {rep.row_key(row) for row in primary}
        wanted: list[Any] = []
        for row in rows_of(heads):
            key = rep.row_key(row)
            if key not in seen or key is None:
                seen.add(key)
                wanted.append(row.get("id"))
        if not wanted:
            rep.count_read(outcome)
            return merge_rows(primary, [], key=rep.row_key)

        async def fetch(conn: Any) -> Any:
            return await conn.query("SELECT * FROM $ids", {"ids": wanted})

        budget = rep.config.query_timeout - spent[0]
        extra, outcome = await self._secondary(fetch, budget)
        rep.count_read(outcome)
        if not isinstance(extra, list):
            return primary
        by_id = {str(row.get("id")): row for row in rows_of(extra)}
        ordered = [by_id[str(rid)] for rid in wanted if str(rid) in by_id]
        return merge_rows(primary, ordered, key=rep.row_key)

    async def _merged_raw(
        self, query: str, vars: dict[str, Any] | None, statements: list[Statement]
    ) -> Any:
        async def secondary(conn: Any) -> Any:
            return await conn.query_raw(query, vars)

        primary, extra = await self._both(self._primary.query_raw(query, vars), secondary)
        if extra is None or not isinstance(primary, Mapping) or "error" in primary:
            return primary
        p_results, s_results = primary.get("result"), extra.get("result")
        if not isinstance(p_results, list) or not isinstance(s_results, list):
            return primary
        if len(p_results) != len(statements) or len(s_results) != len(p_results):
            return primary
        merged = []
        for statement, p, s in zip(statements, p_results, s_results, strict=True):
            merged.append(self._merge_statement(statement, p, s))
        return {**primary, "result": merged}

    def _merge_statement(self, statement: Statement, p: Any, s: Any) -> Any:
        if not (isinstance(p, Mapping) and isinstance(s, Mapping)):
            return p
        if p.get("status") != "OK" or s.get("status") != "OK":
            return p
        p_rows, s_rows = p.get("result"), s.get("result")
        if not (isinstance(p_rows, list) and isinstance(s_rows, list)):
            return p
        if not all(isinstance(r, Mapping) for r in [*p_rows, *s_rows]):
            return p
        rows = merge_rows(
            p_rows,
            s_rows,
            key=self._rep.row_key,
            order_by=statement.order_by,
            limit=statement.limit,
        )
        return {**p, "result": rows}

    async def _both(
        self, primary_call: Awaitable[Any], secondary: Callable[[Any], Awaitable[Any]]
    ) -> tuple[Any, Any]:
        """Run the primary call and the secondary's under the query timeout, in parallel.

        Returns ``(primary_result, secondary_result_or_None)``.
        """
        result, extra, outcome = await self._parallel(primary_call, secondary)
        self._rep.count_read(outcome)
        return result, extra

    async def _secondary(
        self, secondary: Callable[[Any], Awaitable[Any]], seconds: float
    ) -> tuple[Any, str]:
        """Run a read on the secondary within ``seconds``: ``(result or None, outcome)``."""
        rep = self._rep
        if not rep.secondary_up:
            return None, "primary_only_down"
        try:
            call = rep.secondary.call(secondary, max(0.0, seconds), timeout_marks_down=False)
            return await call, "merged"
        except SyncdError:
            return None, "primary_only_down"
        except Exception as exc:  # a query error on the secondary: degrade
            log.warning("merged_read_secondary_error", error=type(exc).__name__)
            return None, "primary_only_error"

    async def _parallel(
        self, primary_call: Awaitable[Any], secondary: Callable[[Any], Awaitable[Any]]
    ) -> tuple[Any, Any, str]:
        """:meth:`_both` without counting: ``(primary_result, secondary_or_None, outcome)``."""
        rep = self._rep
        box: list[Any] = []
        outcome = ["primary_only_timeout"]

        async def run_secondary() -> None:
            extra, outcome[0] = await self._secondary(secondary, rep.config.query_timeout)
            if outcome[0] == "merged":
                box.append(extra)

        failure: Exception | None = None
        result: Any = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_secondary)
            try:
                result = await primary_call
            except Exception as exc:
                # Raised after the group closes, so the application sees the
                # SDK's own exception, not an ExceptionGroup.
                failure = exc
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return result, (box[0] if box else None), outcome[0]


def _whole_table(args: tuple[Any, ...]) -> str | None:
    """The table name when ``select(*args)`` reads a whole table, else ``None``."""
    if len(args) != 1:
        return None
    target = args[0]
    if isinstance(target, Table):
        target = target.table_name
    return target if isinstance(target, str) and is_identifier(target) else None


def parse_safely(query: str) -> list[Statement] | None:
    """Parse ``query``; ``None`` when it cannot be understood."""
    try:
        return parse(query)
    except Exception:
        return None


def _mergeable(statements: list[Statement]) -> bool:
    # Only plain SELECTs whose rows can be deduplicated and re-sorted here:
    # GROUP BY, SPLIT, aggregates, START, parameterised LIMITs, expression
    # orders, SELECT VALUE and subqueries that write read the primary only.
    return all(
        s.kind == "SELECT"
        and not s.is_write
        and not s.group_or_split
        and s.start is None
        and s.start_param is None
        and s.limit_param is None
        and s.order_exact
        and not (s.value or s.only or s.fetch or s.explain)
        for s in statements
    )
