"""Reading records for the operator tools: pages by id, samples, lookups by dedup key.

Measured on the embedded engine (surrealdb 2.0.0 / core 2.3, 50,000 records):

- ``WHERE id > $last ORDER BY id LIMIT n`` sorts the whole table for every
  page (0.55 s a page wherever it starts): O(n²) for a scan, like ``START``.
  A record range, ``type::thing($t, $last>..) LIMIT n``, reads the key range
  only: 2 ms a page anywhere in the table, in id order across id types.
- ``type::thing`` refuses a UUID bound ("not a valid id"); the literal range
  ``table:u'<uuid>'>..`` works, so a UUID cursor is spliced into the text
  (it is a ``uuid.UUID``, so it can only render as hex and dashes).
- ``SELECT * FROM $ids`` fetches a list of record ids directly.
- A natural key is looked up with one ``WHERE f = $k.f AND ...`` statement per
  record, all in one round trip: 0.2 ms a record with an index on the key
  fields. ``WHERE [f, g] INSIDE $keys`` scans the table once per key
  (11 s for 500 keys in 20,000 records), so it is not used.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from syncd.config import is_identifier
from syncd.errors import ServerError, SyncdError
from syncd.surreal.codec import RecordID
from syncd.surreal.dialect import dialect_for
from syncd.surreal.endpoints import CALL_TIMEOUT, Caller, server_version
from syncd.surreal.failures import is_undefined_table
from syncd.tools.compare import KeySpec

__all__ = [
    "QueryFailed",
    "count_records",
    "last_id",
    "list_tables",
    "lookup",
    "read_page",
    "sample",
]


class QueryFailed(SyncdError):
    """A database answered a tool's query with an error."""


def _rows(result: Any) -> list[dict[str, Any]]:
    if result is None:
        return []
    if isinstance(result, Mapping):
        return [dict(result)]
    return [dict(row) for row in result if isinstance(row, Mapping)]


async def _query(caller: Caller, sql: str, params: dict[str, Any], what: str) -> Any:
    try:
        return await caller.call(lambda c: c.query(sql, params), CALL_TIMEOUT)
    except ServerError as exc:  # the database's refusal
        if is_undefined_table(exc):
            return []  # 3.x: a table never written to is an error where 2.x reads it as empty
        raise QueryFailed(f"{what}: {' '.join(str(exc).split())[:300]}") from exc
    except SyncdError:
        raise
    except Exception as exc:  # through a bare SDK connection: its own exception
        raise QueryFailed(f"{what}: {' '.join(str(exc).split())[:300]}") from exc


async def list_tables(caller: Caller) -> list[str]:
    """The tables of the connected database, sorted (from ``INFO FOR DB``)."""
    info = await _query(caller, "INFO FOR DB", {}, "INFO FOR DB")
    tables = info.get("tables") if isinstance(info, Mapping) else None
    return sorted(str(name) for name in tables) if isinstance(tables, Mapping) else []


async def read_page(caller: Caller, table: str, after: Any, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` records of ``table`` in id order, after the id value ``after``.

    ``after`` is the id part of the last record read (``RecordID.id``), or
    ``None`` for the first page. The range is spelled for the server's
    generation (``type::thing`` on 2.x, ``type::record`` on 3.x).
    """
    dialect = dialect_for(await server_version(caller))
    params: dict[str, Any] = {"t": table, "n": limit, "after": after}
    if after is None:
        sql = f"SELECT * FROM {dialect.record_range('$t')} LIMIT $n"
    elif isinstance(after, uuid.UUID) and dialect.uuid_bound_needs_literal:
        if is_identifier(table):
            sql = f"SELECT * FROM {table}:u'{after}'>.. LIMIT $n"
        else:  # no safe literal for this name: the slow but correct form
            params["after"] = _record_id(table, after)
            sql = "SELECT * FROM type::table($t) WHERE id > $after ORDER BY id LIMIT $n"
    else:
        sql = f"SELECT * FROM {dialect.record_range('$t', '$after')} LIMIT $n"
    return _rows(await _query(caller, sql, params, f"reading {table}"))


def _record_id(table: str, value: Any) -> Any:
    return RecordID(table, value)


def last_id(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The id value of the last row of a page (the next page's ``after``)."""
    rid = rows[-1].get("id")
    return getattr(rid, "id", rid)


async def sample(caller: Caller, table: str, size: int) -> list[dict[str, Any]]:
    """``size`` records of ``table`` chosen at random (one scan of the table)."""
    sql = "SELECT * FROM type::table($t) ORDER BY rand() LIMIT $n"
    return _rows(await _query(caller, sql, {"t": table, "n": size}, f"sampling {table}"))


async def count_records(caller: Caller, table: str) -> int:
    """How many records ``table`` holds."""
    sql = "SELECT count() FROM type::table($t) GROUP ALL"
    rows = _rows(await _query(caller, sql, {"t": table}, f"counting {table}"))
    return int(rows[0].get("count", 0)) if rows else 0


async def lookup(
    caller: Caller, spec: KeySpec, rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The records of the other database with the same dedup keys as ``rows``.

    Rows with the natural key are looked up by it, the others by record id.
    """
    by_id = [row["id"] for row in rows if not spec.uses_natural_key(row) and "id" in row]
    natural = [row for row in rows if spec.uses_natural_key(row)]
    found: list[dict[str, Any]] = []
    if by_id:
        what = f"looking up {spec.table} by id"
        found += _rows(await _query(caller, "SELECT * FROM $ids", {"ids": by_id}, what))
    if natural:
        found += await _lookup_natural(caller, spec, natural)
    return found


async def _lookup_natural(
    caller: Caller, spec: KeySpec, rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    # Key fields are validated identifiers (config), so they can be spliced.
    statements = []
    params: dict[str, Any] = {"t": spec.table}
    for index, row in enumerate(rows):
        where = " AND ".join(f"{f} = $k{index}.{f}" for f in spec.fields)
        statements.append(f"SELECT * FROM type::table($t) WHERE {where} LIMIT 1")
        params[f"k{index}"] = {f: row[f] for f in spec.fields}
    sql = ";\n".join(statements)
    what = f"looking up {spec.table} by {', '.join(spec.fields)}"
    try:
        response = await caller.call(lambda c: c.query_raw(sql, params), CALL_TIMEOUT)
    except ServerError as exc:
        raise QueryFailed(f"{what}: {' '.join(str(exc).split())[:300]}") from exc
    except SyncdError:
        raise
    except Exception as exc:
        raise QueryFailed(f"{what}: {' '.join(str(exc).split())[:300]}") from exc
    if response.get("error") is not None:
        raise QueryFailed(f"{what}: {response['error']}")
    found: list[dict[str, Any]] = []
    for result in response.get("result") or []:
        if isinstance(result, Mapping) and result.get("status") == "ERR":
            if is_undefined_table(result):
                continue  # 3.x: nothing was ever written to this table
            raise QueryFailed(f"{what}: {result.get('result')}")
        found += _rows(result.get("result") if isinstance(result, Mapping) else None)
    return found
