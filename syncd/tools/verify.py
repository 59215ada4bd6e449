"""``syncd verify``: compare the primary with the secondary, table by table, in pages.

For each table, two passes, each one page at a time (memory: two pages):

1. read the primary in id order (:func:`syncd.tools.records.read_page`) and look
   the page's records up on the secondary by dedup key: records missing or
   differing there are counted (and, with ``--repair``, handed to a callback);
2. read the secondary in id order and look its records up on the primary:
   the ones the primary no longer has are *extra (archived)*, since deletes
   are not propagated. They never make the replica inconsistent.

After every page the position is saved to ``<state_dir>/verify-progress.json``
(atomically), so an interrupted run resumes where it stopped; a finished run
removes the file. ``--sample N`` compares N random records per table each way
instead, and is neither resumable nor saved.

Before the records, the schema (:mod:`syncd.service.schemamirror`): the
definitions the secondary lacks or has differently (*drift*: inconsistent,
fixed by ``--repair``), those the primary removed and the secondary keeps
(*archived*, as records are), and those its server generation cannot hold
(*unsupported*, an MTREE index on 3.x). With ``schema: off``: not compared.

Records written while a verification runs may show as missing or differing
until the replica has caught up: verify a quiet replica, or verify again.
The comparison itself is :mod:`syncd.tools.compare` (pure).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from syncd.config import Config, is_identifier
from syncd.errors import ConfigError, ServerError
from syncd.files import write_atomically
from syncd.service.schemamirror import Query, compare
from syncd.surreal.codec import pack, unpack
from syncd.surreal.endpoints import CALL_TIMEOUT, Caller
from syncd.surreal.failures import is_undefined_table
from syncd.tools.compare import KeySpec, TableTally, compare_rows
from syncd.tools.records import count_records, last_id, list_tables, lookup, read_page, sample

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "PROGRESS_FILE",
    "NothingCompared",
    "SchemaDrift",
    "TableReport",
    "Verifier",
    "VerifyOptions",
    "VerifyReport",
    "apply_schema",
    "key_spec",
]

#: Name of the progress file in the state directory.
PROGRESS_FILE = "verify-progress.json"
#: Records per page (per round trip) when not told otherwise.
DEFAULT_PAGE_SIZE = 500

Repair = Callable[[str, list[dict[str, Any]]], None]
Progress = Callable[[str, str, int], None]  # table, pass ("primary"/"secondary"), rows so far

_INDEX_FIELDS = re.compile(r"\bFIELDS\s+(.+?)(?:\s+(?:UNIQUE|SEARCH|MTREE|HNSW|COMMENT)\b|$)")


def key_spec(config: Config, table: str) -> KeySpec:
    """How ``table``'s records are matched and compared under ``config``."""
    return KeySpec(
        table=table,
        fields=tuple(config.table_key(table) or ()),
        volatile=frozenset(config.table_volatile_fields(table)),
    )


@dataclass(frozen=True)
class VerifyOptions:
    """What to verify and how."""

    tables: list[str] | None = None  # None: config.tables, or every table of the primary
    page_size: int = DEFAULT_PAGE_SIZE
    sample: int | None = None  # compare this many random records per table instead
    max_pages: int | None = None  # stop after this many pages (resumable; for tests)
    restart: bool = False  # ignore a saved progress file


@dataclass
class TableReport:
    """The verification of one table."""

    name: str
    tally: TableTally
    primary_total: int | None = None  # sample mode: the table's size on each side
    secondary_total: int | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for ``--json``."""
        out = {"table": self.name, **self.tally.to_json(), "warnings": self.warnings}
        if self.primary_total is not None:
            out["primary_total"] = self.primary_total
            out["secondary_total"] = self.secondary_total
        return out


@dataclass(frozen=True)
class SchemaDrift:
    """One definition that differs between the primary and the secondary.

    ``action``: ``define`` (missing on the secondary), ``redefine`` (different
    there), ``remove`` (removed on the primary, ``mirror_removals`` on): all
    three drift, which ``--repair`` fixes with ``statement``; ``archived``
    (removed on the primary, kept) and ``unsupported`` (no form for the
    secondary's server generation) are reported only.
    """

    action: str
    kind: str
    name: str
    table: str
    statement: str | None = None

    @property
    def drifts(self) -> bool:
        """Whether this makes the replica's schema inconsistent."""
        return self.action in ("define", "redefine", "remove")

    def describe(self) -> str:
        """``INDEX hnsw ON vector_memories``."""
        on = f" ON {self.table}" if self.table and self.kind != "TABLE" else ""
        return f"{self.kind} {self.name}{on}"

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for ``--json`` (no statement: it may be long)."""
        return {"action": self.action, "kind": self.kind, "name": self.name, "table": self.table}


@dataclass
class VerifyReport:
    """The outcome of a verification run."""

    tables: list[TableReport] = field(default_factory=list)
    complete: bool = True  # False: stopped early, a later run resumes
    resumed: bool = False
    sample: int | None = None
    pages: int = 0  # pages read by this run
    schema: list[SchemaDrift] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        """No table has a record missing or differing on the secondary, nor a definition."""
        return all(t.tally.consistent for t in self.tables) and not self.schema_drift

    @property
    def schema_drift(self) -> list[SchemaDrift]:
        """The definitions missing or different on the secondary (``--repair`` fixes them)."""
        return [d for d in self.schema if d.drifts]

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for ``--json``."""
        return {
            "consistent": self.consistent,
            "complete": self.complete,
            "resumed": self.resumed,
            "sample": self.sample,
            "pages": self.pages,
            "tables": [t.to_json() for t in self.tables],
            "schema": [d.to_json() for d in self.schema],
            "missing": sum(t.tally.missing for t in self.tables),
            "differing": sum(t.tally.differing for t in self.tables),
            "extra": sum(t.tally.extra for t in self.tables),
        }


class NothingCompared(ConfigError):
    """The run compared no record: no table, or no record on the primary (a wrong
    ``primary_namespace``/``primary_database`` looks exactly like this)."""


class _Stop(Exception):
    """``max_pages`` reached: progress is saved, the run ends incomplete."""


class Verifier:
    """Runs one verification of the primary against the secondary."""

    def __init__(
        self,
        config: Config,
        primary: Caller,
        secondary: Caller,
        options: VerifyOptions,
        *,
        progress_path: Path | None = None,
        repair: Repair | None = None,
        on_progress: Progress | None = None,
    ) -> None:
        """Prepare; ``progress_path`` ``None`` means neither saved nor resumed."""
        self.config = config
        self.primary = primary
        self.secondary = secondary
        self.options = options
        self.progress_path = None if options.sample else progress_path
        self._repair = repair
        self._on_progress = on_progress
        self._report = VerifyReport(sample=options.sample)
        self._tables: list[str] = []
        self._done: dict[str, dict[str, Any]] = {}

    async def tables(self) -> list[str]:
        """The tables this run covers: as asked, as configured, or the primary's."""
        if self.options.tables:
            for name in self.options.tables:
                if not self.config.replicates(name):
                    raise ConfigError(f"table {name}: not replicated by this config (see tables:)")
            return list(dict.fromkeys(self.options.tables))
        if self.config.tables is not None:
            return list(self.config.tables)
        return await list_tables(self.primary)

    async def run(self) -> VerifyReport:
        """Verify every table; the report says whether the run completed.

        Raises:
            NothingCompared: the primary has no table, or a finished run found
                no record on it: "consistent" would say nothing.
        """
        self._tables = await self.tables()
        self._report.schema = await self.schema()
        if not self._tables:
            raise NothingCompared(
                f"verify: the primary database {self._place()} has no tables: nothing to "
                "compare (are primary_namespace and primary_database the application's?)"
            )
        saved = self._load_progress()
        current: dict[str, Any] | None = None
        if saved is not None:
            self._report.resumed = True
            self._done = dict(saved["done"])
            current = saved.get("current")
        try:
            for table in self._tables:
                report = TableReport(table, TableTally())
                self._report.tables.append(report)
                if table in self._done:
                    report.tally = TableTally.from_json(self._done[table]["tally"])
                    report.warnings = list(self._done[table].get("warnings", []))
                    continue
                resume = current if current and current.get("table") == table else None
                await self._verify_table(report, resume)
        except _Stop:
            self._report.complete = False
            return self._report
        if self.progress_path is not None:
            self.progress_path.unlink(missing_ok=True)
        self._refuse_an_empty_comparison()
        return self._report

    async def schema(self) -> list[SchemaDrift]:
        """The secondary's schema compared with the primary's, for this run's tables."""
        config = self.config
        if not config.schema_.mirrors and not any(
            t.schema_ == "mirror" for t in (config.tables or {}).values()
        ):
            return []
        version = await self.secondary.call(lambda c: c.version(), CALL_TIMEOUT)
        changes = await compare(config, _query(self.primary), _query(self.secondary), str(version))
        return [
            SchemaDrift(
                c.action,
                c.definition.kind,
                c.definition.name,
                c.definition.table,
                c.statement,
            )
            for c in changes
            if not c.definition.table or c.definition.table in self._tables
        ]

    def _place(self) -> str:
        config = self.config
        return f'(namespace "{config.primary_namespace}", database "{config.primary_database}")'

    def _refuse_an_empty_comparison(self) -> None:
        tables = self._report.tables
        on_primary = sum(_primary_size(t) for t in tables)
        if on_primary:
            return
        on_secondary = sum(_secondary_size(t) for t in tables)
        names = ", ".join(t.name for t in tables)
        raise NothingCompared(
            f"verify: no record on the primary {self._place()} in {names}, "
            f"{on_secondary} on the secondary: nothing compared (are primary_namespace and "
            "primary_database the application's?)"
        )

    # -- one table ---------------------------------------------------------

    async def _verify_table(self, report: TableReport, resume: dict[str, Any] | None) -> None:
        spec = key_spec(self.config, report.name)
        if resume is None:
            report.warnings = await self._index_warnings(spec)
        if self.options.sample:
            await self._sample_table(report, spec)
            return
        phase, after = "primary", None
        if resume is not None:
            report.tally = TableTally.from_json(resume["tally"])
            report.warnings = list(resume.get("warnings", []))
            phase, after = resume["phase"], _unpack(resume["after"])
        if phase == "primary":
            await self._primary_pass(report, spec, after)
            after = None
        await self._secondary_pass(report, spec, after)
        _warn_if_only_on_secondary(report)
        self._done[report.name] = {"tally": report.tally.to_json(), "warnings": report.warnings}
        self._save(None)

    async def _primary_pass(self, report: TableReport, spec: KeySpec, after: Any) -> None:
        size = self.options.page_size
        while rows := await read_page(self.primary, spec.table, after, size):
            matches = await lookup(self.secondary, spec, rows)
            diff = compare_rows(spec, rows, matches)
            report.tally.add_primary_page(len(rows), diff)
            self._repair_rows(spec, rows, diff.needs_repair())
            after = last_id(rows)
            self._page_done(report, "primary", after, report.tally.primary_records)

    async def _secondary_pass(self, report: TableReport, spec: KeySpec, after: Any) -> None:
        size = self.options.page_size
        while rows := await read_page(self.secondary, spec.table, after, size):
            found = await lookup(self.primary, spec, rows)
            report.tally.add_secondary_page(len(rows), compare_rows(spec, found, rows).extra)
            after = last_id(rows)
            self._page_done(report, "secondary", after, report.tally.secondary_records)

    async def _sample_table(self, report: TableReport, spec: KeySpec) -> None:
        size = self.options.sample or 0
        report.primary_total = await count_records(self.primary, spec.table)
        report.secondary_total = await count_records(self.secondary, spec.table)
        rows = await sample(self.primary, spec.table, size)
        diff = compare_rows(spec, rows, await lookup(self.secondary, spec, rows))
        report.tally.add_primary_page(len(rows), diff)
        self._repair_rows(spec, rows, diff.needs_repair())
        rows = await sample(self.secondary, spec.table, size)
        extra = compare_rows(spec, await lookup(self.primary, spec, rows), rows).extra
        report.tally.add_secondary_page(len(rows), extra)
        self._report.pages += 2
        _warn_if_only_on_secondary(report)

    def _repair_rows(self, spec: KeySpec, rows: list[dict[str, Any]], keys: set[str]) -> None:
        if self._repair is not None and keys:
            self._repair(spec.table, [row for row in rows if spec.key(row) in keys])

    def _page_done(self, report: TableReport, phase: str, after: Any, rows: int) -> None:
        self._report.pages += 1
        current = {
            "table": report.name,
            "phase": phase,
            "after": _pack(after),
            "tally": report.tally.to_json(),
            "warnings": report.warnings,
        }
        self._save(current)
        if self._on_progress is not None:
            self._on_progress(report.name, phase, rows)
        limit = self.options.max_pages
        if limit is not None and self._report.pages >= limit:
            raise _Stop

    async def _index_warnings(self, spec: KeySpec) -> list[str]:
        """Natural-key lookups scan the whole table per record without an index on the key."""
        if not spec.fields or not is_identifier(spec.table):
            return []
        warnings = []
        for role, caller in (("primary", self.primary), ("secondary", self.secondary)):
            try:
                info = await caller.call(
                    lambda c: c.query(f"INFO FOR TABLE {spec.table}"), CALL_TIMEOUT
                )
            except ServerError as exc:
                if not is_undefined_table(exc):
                    raise
                continue  # 3.x: a table never written to has no indexes to warn about
            indexes = info.get("indexes") if isinstance(info, Mapping) else None
            wanted = set(spec.fields)
            if not any(_index_fields(str(d)) == wanted for d in (indexes or {}).values()):
                fields = ", ".join(spec.fields)
                warnings.append(
                    f"no index on ({fields}) on the {role}: each lookup scans the table; "
                    f"DEFINE INDEX ... ON {spec.table} FIELDS {fields} makes verify fast"
                )
        return warnings

    # -- progress file -----------------------------------------------------

    def _load_progress(self) -> dict[str, Any] | None:
        path = self.progress_path
        if path is None or self.options.restart:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable progress only costs a fresh start
        if not isinstance(data, dict) or data.get("v") != 1 or data.get("tables") != self._tables:
            return None  # another selection of tables: start over
        return data

    def _save(self, current: dict[str, Any] | None) -> None:
        path = self.progress_path
        if path is None:
            return
        data = {
            "v": 1,
            "tables": self._tables,
            "done": self._done,
            "current": current,
            "saved_at": time.time(),
        }
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # as the daemon makes it
        # An interruption leaves the old file or the new; a power cut costs only progress.
        write_atomically(path, json.dumps(data, separators=(",", ":")).encode(), durable=False)


def _query(caller: Caller) -> Query:
    async def query(sql: str) -> Any:
        return await caller.call(lambda c: c.query(sql), CALL_TIMEOUT)

    return query


async def apply_schema(secondary: Caller, drift: list[SchemaDrift]) -> tuple[int, list[str]]:
    """Send each drifting definition's statement; how many applied, and which were refused."""
    applied, refused = 0, []
    for item in drift:
        if item.statement is None:
            continue
        try:
            await secondary.call(partial(_run_statement, item.statement), CALL_TIMEOUT)
        except ServerError:
            refused.append(item.describe())
            continue
        applied += 1
    return applied, refused


async def _run_statement(statement: str, conn: Any) -> Any:
    return await conn.query(statement)


def _primary_size(report: TableReport) -> int:
    if report.primary_total is not None:
        return report.primary_total
    return report.tally.primary_records


def _secondary_size(report: TableReport) -> int:
    if report.secondary_total is not None:
        return report.secondary_total
    return report.tally.secondary_records


def _warn_if_only_on_secondary(report: TableReport) -> None:
    """An empty table on the primary with records on the secondary is worth saying loudly."""
    here, there = _primary_size(report), _secondary_size(report)
    if here == 0 and there > 0:
        report.warnings.append(
            f"no record on the primary but {there} on the secondary: is this the primary "
            "database the application writes to?"
        )


def _index_fields(definition: str) -> set[str] | None:
    """The fields of a ``DEFINE INDEX`` statement (as ``INFO FOR TABLE`` prints it)."""
    match = _INDEX_FIELDS.search(definition)
    return None if match is None else {f.strip() for f in match.group(1).split(",")}


def _pack(value: Any) -> str | None:
    """A record id value as text that keeps its SurrealDB type (base64 CBOR)."""
    return None if value is None else pack(value)


def _unpack(text: str | None) -> Any:
    return None if text is None else unpack(text)
