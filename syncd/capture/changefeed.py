"""Changefeed capture: SurrealDB's own change log, read with ``SHOW CHANGES``.

Facts measured on surrealdb-core 2.3.10 and 3.2.4 that this module is built on:

- ``SHOW CHANGES FOR DATABASE SINCE n LIMIT m`` returns the entries of every
  table with a ``CHANGEFEED``, in commit order; each entry is
  ``{versionstamp, changes: [{update: record} | {delete: {id}} | {define_table}]}``
  and a transaction is one entry with several changes;
- what ``SINCE`` takes differs by generation (a sequence number on 2.x, the
  raw versionstamp on 3.x; the wrong one silently reads nothing, or the whole
  feed): positions here are raw versionstamps, and the server's
  :class:`~syncd.surreal.dialect.Dialect` writes the ``SINCE`` literal;
- ``ALTER TABLE t CHANGEFEED 7d`` on an existing table is accepted but records
  nothing until the engine restarts; ``DEFINE TABLE OVERWRITE`` with the
  table's own definition plus a ``CHANGEFEED`` clause takes effect at once and
  keeps its fields, indexes and permissions — so that is how syncd enables it;
- updates of graph edges carry an internal ``__: true`` marker, removed here.

The parsing functions are pure; :class:`ChangefeedReader` does the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.durations import SURREAL_UNITS
from syncd.keys import KeyRule, table_of
from syncd.sink.operation import Operation
from syncd.surreal.connection import ManagedConnection
from syncd.surreal.dialect import Dialect, dialect_for

_RETENTION = re.compile(r"\bCHANGEFEED\s+((?:\d+(?:ms|y|w|d|h|m|s))+)", re.IGNORECASE)
_RETENTION_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_SECOND_NS = SURREAL_UNITS["s"]
_POSITION_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Change:
    """One record change read from the feed."""

    position: int  # the entry's raw versionstamp
    table: str
    kind: str  # "update" or "delete"
    record: dict[str, Any]
    committed_at: float | None = None  # unix time of the commit, when the stamp tells (3.x)


def parse_entries(
    entries: Sequence[Mapping[str, Any]],
    *,
    committed_at: Callable[[int], float | None] | None = None,
) -> list[Change]:
    """Flatten feed entries into record changes, in order; skips table definitions.

    ``committed_at`` maps a versionstamp to its commit time where the server
    generation encodes one (:meth:`Dialect.lag_seconds`).
    """
    changes: list[Change] = []
    for entry in entries:
        position = int(entry["versionstamp"])
        when = committed_at(position) if committed_at is not None else None
        for change in entry.get("changes") or ():
            for kind in ("update", "delete"):
                record = change.get(kind)
                if isinstance(record, Mapping):
                    table = table_of(record)
                    if table is not None:
                        changes.append(Change(position, table, kind, _clean(record), when))
    return changes


def _clean(record: Mapping[str, Any]) -> dict[str, Any]:
    # The feed marks graph edges with "__": true; it is not a field of the record.
    return {k: v for k, v in record.items() if k != "__"}


def to_operations(
    changes: Sequence[Change],
    *,
    replicates: Callable[[str], bool],
    keys: KeyRule,
) -> list[Operation]:
    """The UPSERT operations for ``changes``: updates of replicated tables only.

    Deletes are not propagated (the secondary is an archive).
    """
    ops: list[Operation] = []
    for change in changes:
        if change.kind != "update" or not replicates(change.table):
            continue
        op = Operation.from_row(
            change.record,
            keys,
            table=change.table,
            source="changefeed",
            position=change.position,
        )
        if op is not None:
            if change.committed_at is not None:
                # Lag counts from the commit, not from when the feed was read.
                op.enqueued_at = change.committed_at
            ops.append(op)
    return ops


def retention_of(definition: str) -> float | None:
    """The retention in seconds of a ``DEFINE TABLE`` statement's CHANGEFEED, if any."""
    match = _RETENTION.search(definition)
    if match is None:
        return None
    parts = _RETENTION_PART.findall(match.group(1))
    return sum(int(n) * SURREAL_UNITS[unit] for n, unit in parts) / _SECOND_NS


def surreal_duration(seconds: float) -> str:
    """A SurrealQL duration literal for ``seconds`` (whole seconds, at least 1s)."""
    whole = max(1, int(seconds))
    for unit in ("w", "d", "h", "m"):
        size = SURREAL_UNITS[unit] // _SECOND_NS
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def enable_statement(definition: str, retention: float) -> str:
    """Turn a table's ``DEFINE TABLE`` into one that enables its changefeed.

    Keeps everything else of the definition (type, schema mode, permissions).
    """
    match = re.match(
        r"\s*DEFINE\s+TABLE\s+(?:OVERWRITE\s+|IF\s+NOT\s+EXISTS\s+)?", definition, re.I
    )
    if match is None:
        raise ValueError("not a DEFINE TABLE statement")
    rest = _RETENTION.sub("", definition[match.end() :]).strip()
    clause = f"CHANGEFEED {surreal_duration(retention)}"
    perms = re.search(r"\s(PERMISSIONS|COMMENT)\b", rest)
    if perms is None:
        body = f"{rest} {clause}"
    else:
        body = f"{rest[: perms.start()]} {clause}{rest[perms.start() :]}"
    return f"DEFINE TABLE OVERWRITE {body}"


def fix_statement(table: str, retention: float) -> str:
    """What an operator would run to enable a table's changefeed by hand."""
    return f"DEFINE TABLE OVERWRITE {table} CHANGEFEED {surreal_duration(retention)}"


class ChangefeedReader:
    """Reads the primary's changefeed and table definitions through a managed connection."""

    def __init__(self, conn: ManagedConnection, *, timeout: float) -> None:
        """Nothing is read until the server's dialect is known (:attr:`dialect`)."""
        self._conn = conn
        self._timeout = timeout
        #: The primary's dialect, set once its version is known (start-up).
        self.dialect: Dialect = dialect_for("surrealdb-2.0.0")

    async def tables(self) -> dict[str, str]:
        """Every table of the primary database and its ``DEFINE TABLE`` statement."""
        info = await self._conn.call(lambda c: c.query("INFO FOR DB"), self._timeout)
        tables = info.get("tables", {}) if isinstance(info, Mapping) else {}
        return {str(k): str(v) for k, v in tables.items()}

    async def enable(self, definition: str, retention: float) -> None:
        """Enable a table's changefeed, keeping the rest of its definition."""
        statement = enable_statement(definition, retention)
        await self._conn.call(lambda c: c.query(statement), self._timeout)

    async def read(self, position: int, limit: int) -> list[Mapping[str, Any]]:
        """Feed entries at or after ``position`` (a raw versionstamp), oldest first."""
        sql = self.dialect.show_changes(position, limit)
        result = await self._conn.call(lambda c: c.query(sql), self._timeout)
        return [e for e in result or [] if isinstance(e, Mapping)]

    async def latest_position(self) -> int | None:
        """The versionstamp of the newest entry in the feed (``None`` when it is empty).

        There is no statement for it, so binary-search ``SINCE n LIMIT 1``:
        about 64 tiny queries, once per backfill or start.
        """
        first = await self.read(0, 1)
        if not first:
            return None
        low, high = self.dialect.entry_position(first[0]), _POSITION_MAX
        while low < high:
            middle = (low + high + 1) // 2
            if await self.read(middle, 1):
                low = middle
            else:
                high = middle - 1
        last = await self.read(low, 1)
        return self.dialect.entry_position(last[0]) if last else low
