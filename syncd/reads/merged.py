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
from syncd.errors import DatabaseUnavailable, MergeUnsupported
from syncd.keys import KeyRule, table_of
from syncd.metrics import Metrics
from syncd.reads.merge import merge_rows
from syncd.reads.plan import Candidates, SelectPlan, choose, lookups, plan, short
from syncd.reads.statements import Statement
from syncd.reads.tokens import tokenize
from syncd.surreal.failures import is_undefined_table
from syncd.surreal.scratch import ScratchEngine, ScratchRefused, quoted

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
        self._max_rows = max_rows
        self._primary_unmergeable = primary_unmergeable
        self._scratch = ScratchEngine()
        self._primary_generation: int | None = None
        self._schema: dict[str, tuple[list[str], list[str], list[str]]] = {}

    async def aclose(self) -> None:
        """Close the scratch engines (they abort the process if left open at exit)."""
        await self._scratch.close()

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

            found = await self._ask(source, rows, self._timeout - head.spent)
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
        """A read-only query (SELECTs, and LETs before them) answered like the union.

        ``primary`` is the application's SDK connection. Each SELECT is merged
        by its plan (:mod:`syncd.reads.plan`): candidates from every source,
        deduplicated, then the statement evaluated over the winners by a
        scratch engine of the primary's generation. A statement that cannot be
        merged raises :class:`MergeUnsupported`, or, when each table it reads
        says ``unmergeable: primary``, gets the primary's answer (logged and
        counted). With no secondary up, the primary's answer comes back alone.
        """
        try:
            plans = [plan(s, vars) for s in statements]
        except MergeUnsupported as exc:
            return await self._unmerged(primary, query, vars, statements, exc)
        if not any(source.conn.is_up for source in self._sources):
            self.count("primary_only_down")
            return await primary.query_raw(query, vars)
        entries: list[Any] = []
        prelude: list[str] = []
        try:
            for statement, select in zip(statements, plans, strict=True):
                if select is None:
                    prelude.append(statement.text)
                    entries.append({"result": None, "status": "OK", "time": "0ns"})
                    continue
                entries.append(await self._merged_select(primary, select, prelude, vars))
        except MergeUnsupported as exc:
            return await self._unmerged(primary, query, vars, statements, exc)
        except (_PrimaryRefused, ScratchRefused):
            # The primary's own error (a bad WHERE, a bad parameter): the
            # application gets the answer the primary gives its statement.
            return await primary.query_raw(query, vars)
        return {"result": entries}

    async def _unmerged(
        self,
        primary: Any,
        query: str,
        vars: dict[str, Any] | None,
        statements: list[Statement],
        exc: MergeUnsupported,
    ) -> Any:
        """The primary's answer where every table read accepts it; else raise ``exc``."""
        tables = self._tables_read(statements)
        if not tables or not tables <= self._primary_unmergeable:
            raise exc
        for table in sorted(tables):
            self._metrics.unmerged_reads.labels(table, exc.clause).inc()
        log.warning("merged_read_unmergeable", tables=sorted(tables), clause=exc.clause)
        return await primary.query_raw(query, vars)

    def _tables_read(self, statements: list[Statement]) -> set[str]:
        found: set[str] = set()
        for s in statements:
            found.update(s.from_tables)
            words = {t.text for t in tokenize(s.text) if t.kind in ("word", "ident")}
            found.update(t for t in self._primary_unmergeable if t in words)
        return found

    async def _merged_select(
        self, primary: Any, plan: SelectPlan, prelude: list[str], vars: dict[str, Any] | None
    ) -> Any:
        """One SELECT's result entry, computed over the deduplicated union."""
        generation = await self._generation(primary)
        candidates = plan.candidates
        statements = [*prelude, plan.text]
        if candidates is None:
            entries = await self._scratch.evaluate(
                generation,
                table="syncd_none",
                definitions=(),
                rows=(),
                statements=statements,
                vars=vars,
            )
            return entries[-1]
        definitions: list[str] = []
        if plan.vector_index or plan.fulltext_index:
            definitions = await self._definitions(primary, candidates.table, plan)
        distance = _exact_distance(definitions) if generation == 2 else None
        if distance is not None and not plan.fulltext_index:
            # Building a 2.x HNSW graph costs ~10 ms even for 20 rows; over F64
            # vectors a brute-force search finds the same distances, exactly.
            statements[-1] = plan.brute_force(distance)
            definitions = []
        rows = await self._winners(primary, candidates, prelude, vars)
        link = plan.follows_link(rows)
        if link is not None:
            raise MergeUnsupported("record link", f"{link} links to a record of another table")
        entries = await self._scratch.evaluate(
            generation,
            table=candidates.table,
            definitions=definitions,
            rows=rows,
            statements=statements,
            vars=vars,
        )
        return entries[-1]

    async def _winners(
        self,
        primary: Any,
        plan: Candidates,
        prelude: list[str],
        vars: dict[str, Any] | None,
    ) -> list[Mapping[str, Any]]:
        """The union's rows that may reach the answer: candidates, deduplicated (see plan.py)."""
        deadline = time.monotonic() + self._timeout
        n = 1 + len(self._sources)
        first = plan.first_ask(self._max_rows)
        asked = [first] * n
        got: list[list[Mapping[str, Any]] | None] = [None] * n
        again = every = list(range(n))
        version = self._newest.get(plan.table)
        while True:
            fetched = await self._candidates(
                primary, plan, prelude, vars, again, asked, deadline, first_round=again is every
            )
            for i in again:
                got[i] = fetched[i]
            for rows in got:
                if rows is not None and len(rows) > self._max_rows:
                    raise MergeUnsupported(
                        "merge_max_rows", f"more than {self._max_rows} rows from one database"
                    )
            present = [i for i, rows in enumerate(got) if rows is not None]
            cands = [got[i] or [] for i in present]
            found: list[list[Mapping[str, Any]]] = [[] for _ in present]
            if not plan.complete:
                asks = lookups(cands, self.row_key, newest=version is not None)
                looked = await self._lookups(primary, plan, present, asks, deadline)
                if any(rows is None for rows in looked):
                    # A secondary that cannot say what it holds is left out.
                    for j, i in enumerate(present):
                        if looked[j] is None:
                            got[i] = None
                    again = []
                    continue
                found = [rows or [] for rows in looked]
            chosen = choose(cands, found, self.row_key, (lambda _row: version) if version else None)
            retry = short(
                plan,
                [asked[i] for i in present],
                [len(got[i] or []) for i in present],
                chosen,
            )
            if not retry:
                return chosen.rows
            again = [present[j] for j in retry]
            for i in again:
                if asked[i] > self._max_rows:
                    raise MergeUnsupported(
                        "merge_max_rows", f"more than {self._max_rows} rows from one database"
                    )
                asked[i] = min(asked[i] * 4, self._max_rows + 1)

    async def _candidates(
        self,
        primary: Any,
        plan: Candidates,
        prelude: list[str],
        vars: dict[str, Any] | None,
        which: list[int],
        asked: list[int],
        deadline: float,
        *,
        first_round: bool,
    ) -> list[list[Mapping[str, Any]] | None]:
        """Source i's candidates for each i in ``which`` (0: the primary); None: left out."""
        out: list[list[Mapping[str, Any]] | None] = [None] * (1 + len(self._sources))
        version = self._newest.get(plan.table)
        keep = [*self._keys.fields(plan.table), *([version] if version else [])]

        async def one(i: int) -> None:
            sql = ";\n".join([*prelude, plan.sql(asked[i], keep)])
            if i == 0:
                out[0] = await _primary_rows(primary, sql, vars)
                return

            async def call(conn: Any) -> Any:
                return await conn.query_raw(sql, vars, sdk_values=True)

            answer = await self._ask(self._sources[i - 1], call, deadline - time.monotonic())
            if first_round:  # one merged read, counted once per secondary
                self.count(answer.outcome, self._sources[i - 1].name)
            if answer.result == []:  # 3.x: the table is not defined there yet
                out[i] = []
            elif answer.result is not None:
                out[i] = _last_rows(answer.result, primary=False)

        async with anyio.create_task_group() as tg:
            for i in which:
                tg.start_soon(one, i)
        return out

    async def _lookups(
        self,
        primary: Any,
        plan: Candidates,
        present: list[int],
        asks: list[list[Mapping[str, Any]]],
        deadline: float,
    ) -> list[list[Mapping[str, Any]] | None]:
        """Each present source's rows for the keys it is asked about (None: it did not answer)."""
        out: list[list[Mapping[str, Any]] | None] = [[] for _ in present]
        table = plan.table
        fields = self._keys.fields(table)
        version = self._newest.get(table)
        projection = plan.projection([*fields, *([version] if version else [])])

        def query(rows: list[Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
            if not fields:
                ids = [r.get("id") for r in rows]
                return f"SELECT {projection} FROM $__syncd_ids", {"__syncd_ids": ids}
            names = ", ".join(fields)
            keys = [[r.get(f) for f in fields] for r in rows]
            sql = (
                f"SELECT {projection} FROM type::table($__syncd_t) "
                f"WHERE [{names}] INSIDE $__syncd_keys"
            )
            return sql, {"__syncd_t": table, "__syncd_keys": keys}

        async def one(j: int) -> None:
            if not asks[j]:
                return
            sql, params = query(asks[j])
            i = present[j]
            if i == 0:
                out[j] = await _primary_rows(primary, sql, params)
                return

            async def call(conn: Any) -> Any:
                return await conn.query_raw(sql, params, sdk_values=True)

            answer = await self._ask(self._sources[i - 1], call, deadline - time.monotonic())
            if answer.result == []:
                out[j] = []
            else:
                out[j] = None if answer.result is None else _last_rows(answer.result, primary=False)

        async with anyio.create_task_group() as tg:
            for j in range(len(present)):
                tg.start_soon(one, j)
        return out

    async def _generation(self, primary: Any) -> int:
        """The primary's engine generation (2 or 3), probed once: 3.x refuses ``type::thing``."""
        if self._primary_generation is None:
            answer = await primary.query_raw("RETURN type::thing('syncd', 1)", {})
            results = answer.get("result") if isinstance(answer, Mapping) else None
            ok = isinstance(results, list) and results and results[0].get("status") == "OK"
            self._primary_generation = 2 if ok else 3
        return self._primary_generation

    async def _definitions(self, primary: Any, table: str, plan: SelectPlan) -> list[str]:
        """The primary's vector and full-text index definitions the plan needs (cached)."""
        cached = self._schema.get(table)
        if cached is None:
            cached = await _schema(primary, table)
            self._schema[table] = cached
        vector, analyzers, fulltext = cached
        return [
            *(vector if plan.vector_index else []),
            *(analyzers + fulltext if plan.fulltext_index else []),
        ]

    # -- running every side -------------------------------------------------

    async def _all(self, primary_call: Awaitable[Any], secondary: Call) -> tuple[Any, list[Answer]]:
        """The primary's result and every secondary's answer, counted by outcome."""
        result, answers = await self._parallel(primary_call, secondary)
        self._count_all(answers)
        return result, answers

    async def _ask(self, source: Source, call: Call, seconds: float) -> Answer:
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
            answers[i] = await self._ask(self._sources[i], secondary, self._timeout)

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


class _PrimaryRefused(Exception):
    """The primary refused a merge's own query; its answer to the original is the answer."""


async def _primary_rows(primary: Any, sql: str, vars: Any) -> list[Mapping[str, Any]]:
    """The primary's rows for a merge's own query; raises :class:`_PrimaryRefused`."""
    try:
        answer = await primary.query_raw(sql, vars)
    except Exception as exc:
        raise _PrimaryRefused from exc
    return _last_rows(answer, primary=True) or []


def _last_rows(answer: Any, *, primary: bool) -> list[Mapping[str, Any]] | None:
    """The rows of a ``query_raw`` answer's last statement (None: a secondary's error)."""
    results = answer.get("result") if isinstance(answer, Mapping) else None
    last = results[-1] if isinstance(results, list) and results else None
    if not isinstance(last, Mapping) or last.get("status") != "OK":
        if primary:
            raise _PrimaryRefused
        return [] if is_undefined_table(last) else None
    rows = last.get("result")
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        if primary:
            raise _PrimaryRefused
        return None
    return rows


def _exact_distance(definitions: Sequence[str]) -> str | None:
    """The distance of the vector indexes when every one is an HNSW over F64 vectors."""
    distances: set[str] = set()
    for definition in definitions:
        words = definition.upper().split()
        if "HNSW" not in words or "DIST" not in words or "F64" not in words:
            return None
        distances.add(words[words.index("DIST") + 1])
    return distances.pop() if len(distances) == 1 else None


async def _schema(primary: Any, table: str) -> tuple[list[str], list[str], list[str]]:
    """The primary's (vector indexes, analyzers, full-text indexes) of ``table``."""
    answer = await primary.query_raw(f"INFO FOR TABLE {quoted(table)}; INFO FOR DB", {})
    results = answer.get("result") if isinstance(answer, Mapping) else None
    if not isinstance(results, list) or len(results) != 2:
        return [], [], []
    table_info, db_info = (r.get("result") if isinstance(r, Mapping) else None for r in results)
    indexes = table_info.get("indexes", {}) if isinstance(table_info, Mapping) else {}
    analyzers = db_info.get("analyzers", {}) if isinstance(db_info, Mapping) else {}
    vector: list[str] = []
    fulltext: list[str] = []
    for definition in indexes.values():
        words = set(str(definition).upper().split())
        text = " ".join(w for w in str(definition).split() if w.upper() != "CONCURRENTLY")
        if words & {"HNSW", "MTREE"}:
            vector.append(text)
        elif words & {"SEARCH", "FULLTEXT"}:
            fulltext.append(text)
    return vector, [str(a) for a in analyzers.values()], fulltext


def whole_table(args: tuple[Any, ...]) -> str | None:
    """The table name when ``select(*args)`` reads a whole table, else ``None``."""
    if len(args) != 1:
        return None
    target = args[0]
    name = getattr(target, "table_name", None)  # the SDK's Table
    if isinstance(name, str) and not hasattr(target, "id"):
        target = name
    return target if isinstance(target, str) and is_identifier(target) else None
