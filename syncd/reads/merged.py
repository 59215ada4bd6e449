"""Merged reads: the primary (required) and the secondary (optional, bounded) in parallel.

``select`` and SELECT-only queries go to both at once; the secondary's part is
bounded by ``query_timeout`` and never marks it down (a slow read proves
little). Rows are merged one per dedup key, the primary's row winning
(:func:`syncd.reads.merge.merge_rows`). If the secondary is down, slow or
failing, the primary's answer comes back alone, with a warning and a metric.
The primary's own errors reach the caller as the SDK raised them.

The secondary's calls ask for ``sdk_values``: its rows are decoded as the
SDK decodes the primary's, so the application gets one set of Python types.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import anyio
import structlog

from syncd.config import is_identifier
from syncd.errors import DatabaseUnavailable
from syncd.keys import KeyRule, table_of
from syncd.metrics import Metrics
from syncd.reads.merge import merge_rows
from syncd.reads.statements import Statement
from syncd.surreal.failures import is_undefined_table

T = TypeVar("T")
log = structlog.get_logger("syncd.reads")

Call = Callable[[Any], Awaitable[Any]]


class Secondary(Protocol):
    """What merged reads need of the secondary's managed connection."""

    @property
    def is_up(self) -> bool:
        """Whether the secondary is reachable now."""
        ...

    async def call(
        self, fn: Callable[[Any], Awaitable[T]], seconds: float, *, timeout_marks_down: bool = True
    ) -> T:
        """Run ``fn(connection)`` within ``seconds``."""
        ...


def rows_of(result: Any) -> list[Mapping[str, Any]]:
    """The record-shaped rows in an SDK result (a dict, or a list of them)."""
    if isinstance(result, Mapping):
        return [result]
    if isinstance(result, list):
        return [row for row in result if isinstance(row, Mapping)]
    return []


class MergedReads:
    """Reads from the primary merged with the secondary's, primary wins."""

    def __init__(
        self,
        secondary: Secondary,
        keys: KeyRule,
        *,
        query_timeout: float,
        metrics: Metrics,
        active: Callable[[], bool],
        newest: Mapping[str, str] | None = None,
    ) -> None:
        """``active()`` says whether to consult the secondary at all (sync on and started).

        ``newest`` maps the tables that prefer the newest row to their version field.
        """
        self._secondary = secondary
        self._keys = keys
        self._newest = dict(newest or {})
        self._timeout = query_timeout
        self._metrics = metrics
        self._active = active

    @property
    def active(self) -> bool:
        """Whether reads consult the secondary now."""
        return self._active()

    def row_key(self, row: Mapping[str, Any]) -> str | None:
        """The dedup key of a row read back from either database."""
        return self._keys.row_key(row)

    def version_field(self, row: Mapping[str, Any]) -> str | None:
        """The version field of ``row``'s table when it prefers the newest row."""
        if not self._newest:
            return None
        table = table_of(row)
        return None if table is None else self._newest.get(table)

    def _merge(self, primary: Any, secondary: Any, **order: Any) -> list[dict[str, Any]]:
        return merge_rows(primary, secondary, key=self.row_key, newest=self.version_field, **order)

    def count(self, outcome: str) -> None:
        """Count a merged read by outcome; warn when the secondary was left out."""
        self._metrics.merged_reads.labels(outcome).inc()
        if outcome not in ("merged", "primary_only_unsupported"):
            log.warning("merged_read_primary_only", reason=outcome)

    # -- the reads -----------------------------------------------------------

    async def select(self, primary_call: Awaitable[Any], args: tuple[Any, ...]) -> Any:
        """``select(*args)`` on the primary merged with the secondary's."""
        table = whole_table(args)
        if table is not None and not self._keys.fields(table) and table not in self._newest:
            return await self._select_table(primary_call, table)

        async def secondary(conn: Any) -> Any:
            return await conn.select(*args, sdk_values=True)

        primary, extra = await self._both(primary_call, secondary)
        if extra is None or not isinstance(primary, list) or not isinstance(extra, list):
            return primary
        return self._merge(primary, rows_of(extra))

    async def _select_table(self, primary_call: Awaitable[Any], table: str) -> Any:
        """A whole id-keyed table, merged; the secondary sends full rows only where needed.

        Decoding rows is most of a merged read's cost, and in the steady state
        the secondary holds the same records as the primary, which win anyway.
        So the secondary first sends only its record ids, alongside the
        primary's read; then, only if it holds records the primary lacks, those
        records, in one more round trip. The answer is the one merging full
        rows gives. The secondary's two calls share one ``query_timeout``.
        """
        spent = [0.0]

        async def ids(conn: Any) -> Any:
            started = time.monotonic()
            try:
                sql = "SELECT id FROM type::table($t)"
                return await conn.query(sql, {"t": table}, sdk_values=True)
            finally:
                spent[0] = time.monotonic() - started

        primary, heads, outcome = await self._parallel(primary_call, ids)
        if heads is None or not isinstance(primary, list) or not isinstance(heads, list):
            self.count(outcome)
            return primary
        seen = {self.row_key(row) for row in primary}
        wanted: list[Any] = []
        for row in rows_of(heads):
            key = self.row_key(row)
            if key not in seen or key is None:
                seen.add(key)
                wanted.append(row.get("id"))
        if not wanted:
            self.count(outcome)
            return self._merge(primary, [])

        async def fetch(conn: Any) -> Any:
            return await conn.query("SELECT * FROM $ids", {"ids": wanted}, sdk_values=True)

        extra, outcome = await self._ask_secondary(fetch, self._timeout - spent[0])
        self.count(outcome)
        if not isinstance(extra, list):
            return primary
        by_id = {str(row.get("id")): row for row in rows_of(extra)}
        ordered = [by_id[str(rid)] for rid in wanted if str(rid) in by_id]
        return self._merge(primary, ordered)

    async def query_raw(
        self,
        primary_call: Awaitable[Any],
        query: str,
        vars: dict[str, Any] | None,
        statements: list[Statement],
    ) -> Any:
        """A SELECT-only ``query_raw`` on both, merged statement by statement."""

        async def secondary(conn: Any) -> Any:
            return await conn.query_raw(query, vars, sdk_values=True)

        primary, extra = await self._both(primary_call, secondary)
        if extra is None or not isinstance(primary, Mapping) or "error" in primary:
            return primary
        p_results, s_results = primary.get("result"), extra.get("result")
        if not isinstance(p_results, list) or not isinstance(s_results, list):
            return primary
        if len(p_results) != len(statements) or len(s_results) != len(p_results):
            return primary
        merged = [
            self._merge_statement(statement, p, s)
            for statement, p, s in zip(statements, p_results, s_results, strict=True)
        ]
        return {**primary, "result": merged}

    def _merge_statement(self, statement: Statement, p: Any, s: Any) -> Any:
        if not (isinstance(p, Mapping) and isinstance(s, Mapping)):
            return p
        if p.get("status") != "OK":
            return p
        if s.get("status") != "OK":
            if not is_undefined_table(s):
                return p
            s = {**s, "status": "OK", "result": []}  # 3.x: not replicated to yet
        p_rows, s_rows = p.get("result"), s.get("result")
        if not (isinstance(p_rows, list) and isinstance(s_rows, list)):
            return p
        if not all(isinstance(r, Mapping) for r in [*p_rows, *s_rows]):
            return p
        rows = self._merge(p_rows, s_rows, order_by=statement.order_by, limit=statement.limit)
        return {**p, "result": rows}

    # -- running both sides --------------------------------------------------

    async def _both(self, primary_call: Awaitable[Any], secondary: Call) -> tuple[Any, Any]:
        """The primary's result and the secondary's (or ``None``), counted by outcome."""
        result, extra, outcome = await self._parallel(primary_call, secondary)
        self.count(outcome)
        return result, extra

    async def _ask_secondary(self, secondary: Call, seconds: float) -> tuple[Any, str]:
        """Run a read on the secondary within ``seconds``: ``(result or None, outcome)``."""
        if not self._secondary.is_up:
            return None, "primary_only_down"
        try:
            call = self._secondary.call(secondary, max(0.0, seconds), timeout_marks_down=False)
            return await call, "merged"
        except DatabaseUnavailable:
            return None, "primary_only_down"
        except Exception as exc:  # a query error on the secondary: degrade
            if is_undefined_table(exc):
                # 3.x: a table nothing was replicated to yet is an error, not
                # empty; it holds nothing the primary lacks.
                return [], "merged"
            log.warning("merged_read_secondary_error", error=type(exc).__name__)
            return None, "primary_only_error"

    async def _parallel(
        self, primary_call: Awaitable[Any], secondary: Call
    ) -> tuple[Any, Any, str]:
        """``(primary_result, secondary_result_or_None, outcome)``, both run at once."""
        box: list[Any] = []
        outcome = ["primary_only_timeout"]

        async def run_secondary() -> None:
            extra, outcome[0] = await self._ask_secondary(secondary, self._timeout)
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


def whole_table(args: tuple[Any, ...]) -> str | None:
    """The table name when ``select(*args)`` reads a whole table, else ``None``."""
    if len(args) != 1:
        return None
    target = args[0]
    name = getattr(target, "table_name", None)  # the SDK's Table
    if isinstance(name, str) and not hasattr(target, "id"):
        target = name
    return target if isinstance(target, str) and is_identifier(target) else None
