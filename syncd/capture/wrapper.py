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

Read path — ``select`` and read-only ``query``/``query_raw`` (SELECTs, with
LETs) go to the primary (required) and the secondaries (optional, bounded by
``query_timeout``) in parallel, and answer like one database holding the
union, one row per dedup key, the primary's row winning
(:mod:`syncd.reads.merged`); a statement that cannot be answered so raises
``MergeUnsupported``. If a secondary is down, slow or failing, it is left
out, with a warning and a metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from syncd.capture.races import RaceGuard
from syncd.pipeline.intake import Intake
from syncd.reads.merged import MergedReads, rows_of
from syncd.reads.statements import Statement, parse, result_index
from syncd.surreal.codec import CodecError, decode
from syncd.surreal.dialect import dialect_for
from syncd.surreal.results import first_result
from syncd.surreal.sdkvalues import to_sdk
from syncd.surreal.tap import take, tap

log = structlog.get_logger("syncd.capture.wrapper")

# The application's server generation is not asked; an answer that does not
# fit 2.x's shape is read with 3.x's rules (4.x: the same).
_V3 = dialect_for("surrealdb-3.0.0")

# Read-backs of one racing record per write; a writer that keeps racing is
# read back by whichever write finishes last, so a bound loses nothing.
_MAX_READ_BACKS = 5
# Statements that change definitions (the schema mirror then reads the primary's).
_SCHEMA_KINDS = frozenset({"DEFINE", "ALTER", "REMOVE"})


class ReplicatedConnection:
    """An SDK connection whose writes replicate and whose reads merge.

    Methods syncd does not touch are delegated to the wrapped connection.
    """

    def __init__(
        self,
        primary: Any,
        intake: Intake,
        reads: MergedReads | None = None,
        *,
        tap_target: Any = None,
    ) -> None:
        """Wrap ``primary``: writes go to ``intake``, reads merge through ``reads``.

        ``tap_target``: the SDK connection whose answers' bytes are kept, when
        ``primary`` only calls it (a blocking connection, capture/blocking.py).
        """
        self._primary = primary
        self._intake = intake
        self._reads = reads
        self._races = RaceGuard()
        # The answers' own bytes, decoded exactly: the SDK's values lose a
        # datetime's nanoseconds and NULL versus NONE (surreal/tap.py).
        self._tapped = tap(primary if tap_target is None else tap_target)

    @property
    def primary(self) -> Any:
        """The wrapped SDK connection."""
        return self._primary

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not defined here: use, signin, info, live, ...
        return getattr(self._primary, name)

    # -- writes ------------------------------------------------------------

    async def _write(self, method: str, *args: Any, **kwargs: Any) -> Any:
        ticket = self._races.begin()
        try:
            result = await getattr(self._primary, method)(*args, **kwargs)
        finally:
            self._races.end(ticket)
        await self._capture(self._rows(result), ticket)
        return result

    def _rows(self, result: Any) -> list[Mapping[str, Any]]:
        """The records of the answer just received, exactly when its bytes were kept."""
        answer = self._exact()
        if answer is None or "result" not in answer:
            return rows_of(result)
        found = answer["result"]
        if isinstance(found, list) and found and all(_is_statement(r) for r in found):
            # The SDK runs some methods as a query: one result per statement.
            return [row for r in found if r.get("status") == "OK" for row in rows_of(r["result"])]
        return rows_of(found)

    def _exact(self) -> dict[str, Any] | None:
        """The last answer of the primary in this task, decoded by syncd's exact codec."""
        data = take() if self._tapped else None
        if data is None:
            return None
        try:
            answer = decode(data)
        except CodecError as exc:
            # A value syncd cannot hold exactly: capture what the SDK decoded.
            log.warning("capture_inexact", error=type(exc).__name__)
            return None
        return answer if isinstance(answer, dict) else None

    async def _capture(self, rows: list[Mapping[str, Any]], ticket: int) -> None:
        """Capture ``rows``; read back from the primary any whose write raced another."""
        raced = [row["id"] for row in rows if self._ambiguous(row, ticket)]
        self._intake.capture(rows)
        for _ in range(_MAX_READ_BACKS):
            if not raced:
                return
            # Both racing writes have committed by now: the primary's current
            # state is at least as new as either, and it is captured last.
            ticket = self._races.begin()
            try:
                rows = []
                for rid in raced:
                    rows += self._rows(await self._primary.select(to_sdk(rid)))
            finally:
                self._races.end(ticket)
            raced = [row["id"] for row in rows if self._ambiguous(row, ticket)]
            self._intake.capture(rows, source="readback")
        if raced:
            # Still racing after several read-backs: the writer that raced
            # last reads back on its own, so the newest state still arrives.
            log.debug("readback_still_racing", records=len(raced))

    def _ambiguous(self, row: Mapping[str, Any], ticket: int) -> bool:
        rid = row.get("id")
        return rid is not None and self._races.captured(str(rid), ticket)

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
        """``query_raw``: read-only queries merged, others on the primary with their
        returned records captured."""
        statements = parse_safely(query)
        if self._reads is not None and self._reads.active and not kw and _merged_read(statements):
            return await self._reads.query_raw(self._primary, query, params, statements or [])
        ticket = self._races.begin()
        try:
            response = await self._primary.query_raw(query, params, **kw)
        finally:
            self._races.end(ticket)
        exact = self._exact()
        await self._capture_statements(statements, exact or response, ticket)
        self._notice_schema(statements)
        return response

    async def query(self, query: str, vars: dict[str, Any] | None = None, **kw: Any) -> Any:
        """``query`` with SDK semantics (first statement's result).

        Read-only queries are merged with the secondaries; others run on the
        primary and the records their write statements return are captured.
        """
        statements = parse_safely(query)
        reads_only = _merged_read(statements)
        merging = self._reads is not None and self._reads.active
        if reads_only and merging and not kw:
            assert self._reads is not None  # for mypy: merging says so
            response = await self._reads.query_raw(self._primary, query, vars, statements or [])
        elif reads_only:
            response = await self._primary.query_raw(query, vars, **kw)
        else:
            ticket = self._races.begin()
            try:
                response = await self._primary.query_raw(query, vars, **kw)
            finally:
                self._races.end(ticket)
            exact = self._exact()
            await self._capture_statements(statements, exact or response, ticket)
            self._notice_schema(statements)
        # The SDK's own checks, so errors are exactly the ones it raises.
        return first_result(response)

    def _notice_schema(self, statements: list[Statement] | None) -> None:
        """A definition sent through here reaches the secondaries (the schema mirror
        reads the primary's definitions, so what exactly changed need not be parsed)."""
        if statements is None:
            return  # text the splitter cannot read: the daemon's poll or a reconnect catches it
        if any(s.kind in _SCHEMA_KINDS for s in statements):
            self._intake.schema_changed()

    async def _capture_statements(
        self, statements: list[Statement] | None, response: Any, ticket: int
    ) -> None:
        if not isinstance(response, Mapping) or not isinstance(response.get("result"), list):
            return
        results: list[Any] = response["result"]
        index = result_index(statements) if statements is not None else None
        if statements is not None and index is not None:
            expected = sum(i is not None for i in index)
            if len(results) != expected:
                # 3.x answers one result per statement, BEGIN/COMMIT/CANCEL
                # included, where 2.x folds a transaction's into its body's:
                # the dialect shapes such an answer as 2.x shapes it.
                kinds = [s.kind for s in statements]
                results = _V3.statement_results(kinds, results) or results
        if index is None or sum(i is not None for i in index) != len(results):
            # Cannot tell which result belongs to which statement: capture
            # nothing rather than replicate the rows of a SELECT or a DELETE.
            if statements is None or any(s.is_write for s in statements):
                self._intake.count_uncaptured("unaligned_query")
            return
        for statement, position in zip(statements or [], index, strict=True):
            if position is None or not statement.is_write:
                continue
            result = results[position]
            if not isinstance(result, Mapping) or result.get("status") != "OK":
                continue
            if statement.captures_records:
                await self._capture(rows_of(result.get("result")), ticket)
            elif statement.kind != "DELETE":
                self._intake.count_uncaptured(
                    f"return_{(statement.returns or statement.kind).lower()}"
                )

    # -- reads -------------------------------------------------------------

    async def select(self, *args: Any, **kwargs: Any) -> Any:
        """``select`` from the primary merged with the secondary; primary wins."""
        primary_call = self._primary.select(*args, **kwargs)
        if self._reads is None or not self._reads.active or kwargs:
            return await primary_call
        return await self._reads.select(primary_call, args)


def _is_statement(item: Any) -> bool:
    """Whether ``item`` is a statement's result (``{status, result, time}``), not a record."""
    return isinstance(item, Mapping) and "status" in item and "result" in item and "id" not in item


def parse_safely(query: str) -> list[Statement] | None:
    """Parse ``query``; ``None`` when it cannot be understood."""
    try:
        return parse(query)
    except Exception:
        return None


def _merged_read(statements: list[Statement] | None) -> bool:
    """Whether a query only reads: SELECTs, with ``LET``s before or between them."""
    if not statements or not any(s.kind == "SELECT" for s in statements):
        return False
    return all(s.kind in ("SELECT", "LET") and not s.is_write for s in statements)
