"""Merged reads: the primary (required) and every secondary (optional, bounded) in parallel.

``select`` of a table or records goes to all of them at once and the rows
are merged one per dedup key: the primary's row, else the row of the
secondary with the lowest priority number, or the newest version for tables
that prefer it (:func:`syncd.reads.merge.merge_rows`).

A read-only query (SELECTs, with LETs) answers like one database holding the
union (:mod:`syncd.reads.plan` says what each source is asked and which rows
win): candidates from every source, deduplicated, then the statement run
over the winners by a scratch engine of the primary's generation
(:mod:`syncd.surreal.scratch`). What cannot be answered so raises
:class:`~syncd.errors.MergeUnsupported`, or takes the primary's answer for
tables configured ``unmergeable: primary`` (``syncd_unmerged_reads_total``).

Each secondary's part is bounded by ``query_timeout`` and never marks it down
(a slow read proves little). A secondary that is down, slow or failing is
left out, with a warning and a metric (``syncd_merged_reads_total{secondary,
outcome}``); with all left out the primary's answer comes back alone. The
primary's own errors reach the caller as the SDK raised them.

The secondary's calls ask for ``sdk_values``: its rows are decoded as the
SDK decodes the primary's, so the application gets one set of Python types.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio
import structlog

from syncd.config import is_identifier
from syncd.errors import DatabaseUnavailable
from syncd.keys import KeyRule, table_of
from syncd.metrics import Metrics
from syncd.reads.merge import merge_rows
from syncd.reads.statements import Statement
from syncd.reads.union import UnionQueries
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


@dataclass(frozen=True)
class Source:
    """A secondary that merged reads ask: its name (for metrics and logs) and connection."""

    name: str
    conn: Secondary


@dataclass
class Answer:
    """One secondary's part of a merged read: its result (None: left out) and the outcome."""

    result: Any
    outcome: str
    spent: float = 0.0


def rows_of(result: Any) -> list[Mapping[str, Any]]:
    """The record-shaped rows in an SDK result (a dict, or a list of them)."""
    if isinstance(result, Mapping):
        return [result]
    if isinstance(result, list):
        return [row for row in result if isinstance(row, Mapping)]
    return []


class MergedReads:
    """Reads from the primary merged with the secondaries', primary wins."""

    def __init__(
        self,
        secondaries: Sequence[Source],
        keys: KeyRule,
        *,
        query_timeout: float,
        metrics: Metrics,
        active: Callable[[], bool],
        newest: Mapping[str, str] | None = None,
        max_rows: int = 100000,
        primary_unmergeable: frozenset[str] = frozenset(),
    ) -> None:
        """``active()`` says whether to consult the secondaries at all (sync on and started).

        ``secondaries`` are in priority order (lowest number first); ``newest``
        maps the tables that prefer the newest row to their version field;
        ``max_rows`` bounds the rows one database sends for one merge
        (``merge_max_rows``); ``primary_unmergeable`` names the tables whose
        unmergeable statements take the primary's answer.
        """
        self._sources = list(secondaries)
        self._keys = keys
        self._newest = dict(newest or {})
        self._timeout = query_timeout
        self._metrics = metrics
        self._active = active
        self._queries = UnionQueries(
            self, max_rows=max_rows, primary_unmergeable=primary_unmergeable
        )

    @property
    def sources(self) -> list[Source]:
        """The secondaries, in priority order."""
        return self._sources

    @property
    def keys(self) -> KeyRule:
        """The dedup key rule."""
        return self._keys

    @property
    def newest(self) -> dict[str, str]:
        """The tables that prefer the newest row, and their version field."""
        return self._newest

    @property
    def query_timeout(self) -> float:
        """The bound on every secondary's part of one merged read."""
        return self._timeout

    @property
    def metrics(self) -> Metrics:
        """Where merged reads are counted."""
        return self._metrics

    async def aclose(self) -> None:
        """Close the scratch engines (they abort the process if left open at exit)."""
        await self._queries.aclose()

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

    def _merge(self, primary: Any, others: Sequence[Any], **order: Any) -> list[dict[str, Any]]:
        return merge_rows(
            primary, others=others, key=self.row_key, newest=self.version_field, **order
        )

    def count(self, outcome: str, secondary: str | None = None) -> None:
        """Count a merged read by outcome (for every secondary when ``secondary`` is None);
        warn when a secondary was left out."""
        names = [s.name for s in self._sources] if secondary is None else [secondary]
        for name in names:
            self._metrics.merged_reads.labels(name, outcome).inc()
            if outcome != "merged":
                log.warning("merged_read_primary_only", reason=outcome, secondary=name)

    def _count_all(self, answers: Sequence[Answer]) -> None:
        for source, answer in zip(self._sources, answers, strict=True):
            self.count(answer.outcome, source.name)

    # -- the reads -----------------------------------------------------------

    async def select(self, primary_call: Awaitable[Any], args: tuple[Any, ...]) -> Any:
        """``select(*args)`` on the primary merged with the secondary's."""
        table = whole_table(args)
        if table is not None and not self._keys.fields(table) and table not in self._newest:
            return await self._select_table(primary_call, table)

        async def secondary(conn: Any) -> Any:
            return await conn.select(*args, sdk_values=True)

        primary, answers = await self._all(primary_call, secondary)
        extras = [rows_of(a.result) for a in answers if isinstance(a.result, list)]
        if not extras or not isinstance(primary, list):
            return primary
        return self._merge(primary, extras)

    async def _select_table(self, primary_call: Awaitable[Any], table: str) -> Any:
        """A whole id-keyed table, merged; the secondary sends full rows only where needed.

        Decoding rows is most of a merged read's cost, and in the steady state
        the secondary holds the same records as the primary, which win anyway.
        So the secondary first sends only its record ids, alongside the
        primary's read; then, only if it holds records the primary lacks, those
        records, in one more round trip. The answer is the one merging full
        rows gives. The secondary's two calls share one ``query_timeout``.
        """

        async def ids(conn: Any) -> Any:
            sql = "SELECT id FROM type::table($t)"
            return await conn.query(sql, {"t": table}, sdk_values=True)

        primary, heads = await self._parallel(primary_call, ids)
        if not isinstance(primary, list):
            self._count_all(heads)
            return primary
        seen = {self.row_key(row) for row in primary}

        async def fetch(source: Source, head: Answer) -> Answer:
            wanted: list[Any] = []
            keys = set(seen)
            for row in rows_of(head.result):
                key = self.row_key(row)
                if key not in keys or key is None:
                    keys.add(key)
                    wanted.append(row.get("id"))
            if not wanted or not isinstance(head.result, list):
                return Answer([] if isinstance(head.result, list) else None, head.outcome)

            async def rows(conn: Any) -> Any:
                return await conn.query("SELECT * FROM $ids", {"ids": wanted}, sdk_values=True)

            found = await self.ask(source, rows, self._timeout - head.spent)
            if not isinstance(found.result, list):
                return found
            by_id = {str(row.get("id")): row for row in rows_of(found.result)}
            ordered = [by_id[str(rid)] for rid in wanted if str(rid) in by_id]
            return Answer(ordered, found.outcome)

        answers = await self._each(fetch, heads)
        self._count_all(answers)
        extras = [a.result for a in answers if isinstance(a.result, list)]
        return self._merge(primary, extras)

    async def query_raw(
        self,
        primary: Any,
        query: str,
        vars: dict[str, Any] | None,
        statements: list[Statement],
    ) -> Any:
        """A read-only query answered like the union (see :class:`UnionQueries`)."""
        return await self._queries.query_raw(primary, query, vars, statements)

    # -- running every side -------------------------------------------------

    async def _all(self, primary_call: Awaitable[Any], secondary: Call) -> tuple[Any, list[Answer]]:
        """The primary's result and every secondary's answer, counted by outcome."""
        result, answers = await self._parallel(primary_call, secondary)
        self._count_all(answers)
        return result, answers

    async def ask(self, source: Source, call: Call, seconds: float) -> Answer:
        """Run a read on one secondary within ``seconds``; never raises."""
        if not source.conn.is_up:
            return Answer(None, "primary_only_down")
        started = time.monotonic()
        try:
            result = await source.conn.call(call, max(0.0, seconds), timeout_marks_down=False)
            return Answer(result, "merged", time.monotonic() - started)
        except DatabaseUnavailable:
            return Answer(None, "primary_only_down")
        except Exception as exc:  # a query error on the secondary: leave it out
            if is_undefined_table(exc):
                # 3.x: a table nothing was replicated to yet is an error, not
                # empty; it holds nothing the primary lacks.
                return Answer([], "merged", time.monotonic() - started)
            log.warning(
                "merged_read_secondary_error", error=type(exc).__name__, secondary=source.name
            )
            return Answer(None, "primary_only_error")

    async def _each(
        self, fn: Callable[[Source, Answer], Awaitable[Answer]], answers: Sequence[Answer]
    ) -> list[Answer]:
        """``fn(source, answer)`` for every secondary at once, in priority order."""
        out = list(answers)

        async def one(i: int) -> None:
            out[i] = await fn(self._sources[i], answers[i])

        async with anyio.create_task_group() as tg:
            for i in range(len(self._sources)):
                tg.start_soon(one, i)
        return out

    async def _parallel(
        self, primary_call: Awaitable[Any], secondary: Call
    ) -> tuple[Any, list[Answer]]:
        """``(primary_result, answers)``: the primary and every secondary at once.

        A secondary that has not answered within ``query_timeout`` is left out
        (``primary_only_timeout``).
        """
        answers = [Answer(None, "primary_only_timeout") for _ in self._sources]

        async def run_secondary(i: int) -> None:
            answers[i] = await self.ask(self._sources[i], secondary, self._timeout)

        failure: Exception | None = None
        result: Any = None
        async with anyio.create_task_group() as tg:
            for i in range(len(self._sources)):
                tg.start_soon(run_secondary, i)
            try:
                result = await primary_call
            except Exception as exc:
                # Raised after the group closes, so the application sees the
                # SDK's own exception, not an ExceptionGroup.
                failure = exc
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return result, answers


def whole_table(args: tuple[Any, ...]) -> str | None:
    """The table name when ``select(*args)`` reads a whole table, else ``None``."""
    if len(args) != 1:
        return None
    target = args[0]
    name = getattr(target, "table_name", None)  # the SDK's Table
    if isinstance(name, str) and not hasattr(target, "id"):
        target = name
    return target if isinstance(target, str) and is_identifier(target) else None
