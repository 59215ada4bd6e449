"""Merged queries: a read-only query answered like one database holding the union.

Each SELECT is merged by its plan (:mod:`syncd.reads.plan`, pure): every
source is asked for its candidates in parallel (the secondaries within
``query_timeout``), keys are looked up where a row could beat a candidate,
bounded sources that came up short are asked again, and the original
statement runs over the winners in a scratch engine of the primary's
generation (:mod:`syncd.surreal.scratch`), so every function, group and
order is SurrealQL's own. A statement that cannot be merged raises
:class:`~syncd.errors.MergeUnsupported`, or gets the primary's answer where
every table it reads says ``unmergeable: primary`` (logged, counted in
``syncd_unmerged_reads_total``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import anyio
import structlog

from syncd.errors import MergeUnsupported
from syncd.keys import KeyRule
from syncd.metrics import Metrics
from syncd.reads.plan import Candidates, SelectPlan, choose, lookups, plan, short
from syncd.reads.statements import Statement
from syncd.reads.tokens import tokenize
from syncd.surreal.failures import is_undefined_table
from syncd.surreal.scratch import ScratchEngine, ScratchRefused, quoted

log = structlog.get_logger("syncd.reads")


class Reads(Protocol):
    """What merged queries use of :class:`~syncd.reads.merged.MergedReads`."""

    @property
    def sources(self) -> Sequence[Any]:
        """The secondaries (``name``, ``conn``), in priority order."""
        ...

    @property
    def keys(self) -> KeyRule:
        """The dedup key rule."""
        ...

    @property
    def newest(self) -> Mapping[str, str]:
        """The tables that prefer the newest row, and their version field."""
        ...

    @property
    def query_timeout(self) -> float:
        """The bound on every secondary's part of one merged read."""
        ...

    @property
    def metrics(self) -> Metrics:
        """Where merged reads are counted."""
        ...

    def row_key(self, row: Mapping[str, Any]) -> str | None:
        """The dedup key of a row."""
        ...

    def count(self, outcome: str, secondary: str | None = None) -> None:
        """Count a merged read by outcome."""
        ...

    async def ask(self, source: Any, call: Callable[[Any], Awaitable[Any]], seconds: float) -> Any:
        """One secondary's answer (``result``, ``outcome``) within ``seconds``; never raises."""
        ...


class UnionQueries:
    """Read-only queries of a :class:`~syncd.reads.merged.MergedReads`, merged like the union."""

    def __init__(self, reads: Reads, *, max_rows: int, primary_unmergeable: frozenset[str]) -> None:
        """``max_rows``: ``merge_max_rows``; ``primary_unmergeable``: the tables whose
        unmergeable statements take the primary's answer."""
        self._reads = reads
        self._max_rows = max_rows
        self._primary_unmergeable = primary_unmergeable
        self._scratch = ScratchEngine()
        self._primary_generation: int | None = None
        self._schema: dict[str, tuple[list[str], list[str], list[str]]] = {}

    async def aclose(self) -> None:
        """Close the scratch engines."""
        await self._scratch.close()

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
        if not any(source.conn.is_up for source in self._reads.sources):
            self._reads.count("primary_only_down")
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
            self._reads.metrics.unmerged_reads.labels(table, exc.clause).inc()
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
        deadline = time.monotonic() + self._reads.query_timeout
        n = 1 + len(self._reads.sources)
        first = plan.first_ask(self._max_rows)
        asked = [first] * n
        got: list[list[Mapping[str, Any]] | None] = [None] * n
        again = every = list(range(n))
        version = self._reads.newest.get(plan.table)
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
                asks = lookups(cands, self._reads.row_key, newest=version is not None)
                looked = await self._lookups(primary, plan, present, asks, deadline)
                if any(rows is None for rows in looked):
                    # A secondary that cannot say what it holds is left out.
                    for j, i in enumerate(present):
                        if looked[j] is None:
                            got[i] = None
                    again = []
                    continue
                found = [rows or [] for rows in looked]
            chosen = choose(
                cands, found, self._reads.row_key, (lambda _row: version) if version else None
            )
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
        out: list[list[Mapping[str, Any]] | None] = [None] * (1 + len(self._reads.sources))
        version = self._reads.newest.get(plan.table)
        keep = [*self._reads.keys.fields(plan.table), *([version] if version else [])]

        async def one(i: int) -> None:
            sql = ";\n".join([*prelude, plan.sql(asked[i], keep)])
            if i == 0:
                out[0] = await _primary_rows(primary, sql, vars)
                return

            async def call(conn: Any) -> Any:
                return await conn.query_raw(sql, vars, sdk_values=True)

            answer = await self._reads.ask(
                self._reads.sources[i - 1], call, deadline - time.monotonic()
            )
            if first_round:  # one merged read, counted once per secondary
                self._reads.count(answer.outcome, self._reads.sources[i - 1].name)
            if answer.result == []:  # 3.x: the table is not defined there yet
                out[i] = []
            elif answer.result is not None:
                out[i] = _last_rows(answer.result, primary=False)

        async with anyio.create_task_group() as tg:
            # The secondaries' requests go out first: an embedded primary may
            # answer on the event loop's own thread, holding it until it is done.
            for i in sorted(which, reverse=True):
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
        fields = self._reads.keys.fields(table)
        version = self._reads.newest.get(table)
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

            answer = await self._reads.ask(
                self._reads.sources[i - 1], call, deadline - time.monotonic()
            )
            if answer.result == []:
                out[j] = []
            else:
                out[j] = None if answer.result is None else _last_rows(answer.result, primary=False)

        async with anyio.create_task_group() as tg:
            for j in reversed(range(len(present))):  # the primary last, as above
                tg.start_soon(one, j)
        return out

    async def _generation(self, primary: Any) -> int:
        """The primary's engine generation (2 or 3), probed once: 3.x refuses ``type::thing``."""
        if self._primary_generation is None:
            try:
                answer = await primary.query_raw("RETURN type::thing('syncd', 1)", {})
            except Exception:  # an SDK that raises on an error answer: not 2.x
                answer = None
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
    try:
        answer = await primary.query_raw(f"INFO FOR TABLE {quoted(table)}; INFO FOR DB", {})
    except Exception:  # no schema to copy: the scratch table has no index
        answer = None
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
