"""Dedup keys: which rows are "the same record" across primary and secondary.

A table's key is either the record id (the default) or a list of fields (a
natural key, for applications that rewrite a record under a new id). The key
is rendered as a canonical string so it can be hashed stably across processes
(lane choice), compared, and written to files. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any


def canonical(value: Any) -> Any:
    """Turn a SurrealDB value into plain JSON-able data with a stable rendering.

    SDK types (``RecordID``, ``Datetime``, ``Decimal``, ...) render through
    ``str()``, which is what SurrealQL prints for them; mappings are sorted.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return str(value)


def record_key(table: str, record: Mapping[str, Any], fields: Sequence[str] | None) -> str | None:
    """The dedup key of ``record`` in ``table``, or ``None`` when it has no usable key.

    With ``fields`` (a natural key) the key is the table plus those fields'
    values; a record missing one of them has no key. Without, it is the
    record id rendered as ``table:id``.
    """
    if fields:
        if any(f not in record for f in fields):
            return None
        values = [canonical(record[f]) for f in fields]
        return table + "|" + json.dumps(values, separators=(",", ":"), sort_keys=True)
    rid = record.get("id")
    if rid is None:
        return None
    return str(rid) if ":" in str(rid) else f"{table}:{rid}"


def key_hash(key: str) -> str:
    """An opaque, stable name for a record key, for logs: 12 hex digits of its SHA-256.

    The same record gets the same hash in every log line and process, so its
    history can be followed (and matched against ``syncd dlq list --json``,
    whose ``key`` hashes the same way) without the key's values in the log.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def id_table(value: Any) -> str | None:
    """The table of a record id, syncd's (``.table``) or the SDK's (``.table_name``); else None."""
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return None
    name = getattr(value, "table", None)
    if not isinstance(name, str) or not hasattr(value, "id"):
        name = getattr(value, "table_name", None)
    return name if isinstance(name, str) else None


def table_of(record: Mapping[str, Any]) -> str | None:
    """The table named by the record's ``id``, if it is a record id."""
    return id_table(record.get("id"))


class KeyRule:
    """THE rule for "which key identifies this record", built once from the config.

    A table with natural-key fields (``tables: {t: {key: [a, b]}}``) is keyed
    by them when a record has every one of them; any other record is keyed by
    its record id. Capture, the executor, merged reads, verify and replay all
    ask this one object, so they can never disagree.
    """

    __slots__ = ("_fields",)

    def __init__(self, table_fields: Mapping[str, Sequence[str] | None] | None = None) -> None:
        """``table_fields`` maps a table to its natural-key fields (``None``/empty: the id)."""
        self._fields: dict[str, tuple[str, ...]] = {
            table: tuple(fields) for table, fields in (table_fields or {}).items() if fields
        }

    def fields(self, table: str) -> tuple[str, ...]:
        """The natural-key fields of ``table``; empty when it is keyed by record id."""
        return self._fields.get(table, ())

    def natural(self, table: str, record: Mapping[str, Any]) -> bool:
        """Whether ``record`` is matched by its table's natural key (it has every field)."""
        fields = self._fields.get(table)
        return bool(fields) and all(f in record for f in fields or ())

    def key(self, table: str, record: Mapping[str, Any]) -> str | None:
        """The dedup key of ``record`` in ``table``; ``None`` with neither key nor id."""
        if self.natural(table, record):
            return record_key(table, record, self._fields[table])
        return record_key(table, record, None)

    def row_key(self, row: Mapping[str, Any]) -> str | None:
        """The dedup key of a row read back from a database (its table from its id)."""
        table = table_of(row)
        if table is None:
            rid = row.get("id")
            return None if rid is None else str(rid)
        return self.key(table, row)
