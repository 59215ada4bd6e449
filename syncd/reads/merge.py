"""Merged reads: one answer from the primary's rows and the secondary's rows.

The rules of this file:

1. One row per dedup key. The key function decides which rows are "the same
   record" (record id, or a table's natural key; see ``syncd.keys``).
2. The primary wins, entirely: when both sides hold a key, the primary's row
   is the answer and no field of the secondary's row leaks into it. The
   primary is the source of truth; the secondaries only fill in what the
   primary no longer has, the first in priority order first. A table may
   prefer recency instead (``prefer: newest``): then the row whose version
   field is greatest wins, a higher-precedence row on a tie, and it takes
   the place of the row it beat.
3. Rows without a key (projections without ``id``, ``SELECT VALUE`` shapes,
   aggregates) cannot be matched, so they are all kept, primary's first.
   Duplicate keys *within* one side keep their first row.
4. Without an ordering the answer is the primary's rows in the primary's
   order, then the secondary-only rows in the secondary's order.
5. With an ordering the merged rows are sorted stably, term by term, with a
   total order over mixed values so that nothing can raise: a missing field
   (SurrealDB's NONE) < None (NULL) < booleans < numbers < strings <
   datetimes < anything else, the last compared by its canonical JSON
   rendering. START and LIMIT are applied after ordering, as in SurrealQL.

Pure: no I/O, no SDK calls. The rows are copied, never mutated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from syncd.keys import KeyRule, canonical

KeyFunc = Callable[[Mapping[str, Any]], str | None]
"""Maps a row to its dedup key, or ``None`` when the row has no usable key."""


@dataclass(frozen=True, slots=True)
class OrderTerm:
    """One ``ORDER BY`` term: a field (dotted path ``a.b`` allowed) and a direction."""

    field: str
    descending: bool = False


# A marker for "field absent", distinct from a present None: SurrealDB
# sorts NONE before NULL, and so do we.
_MISSING = object()

# Type ranks for the sort key. Within a rank values are directly comparable
# (the second element of the key always has one Python type per rank).
_RANK_NONE, _RANK_NULL, _RANK_BOOL, _RANK_NUMBER = 0, 1, 2, 3
_RANK_STRING, _RANK_DATETIME, _RANK_OTHER = 4, 5, 6


VersionFunc = Callable[[Mapping[str, Any]], str | None]
"""Maps a row to its table's version field when the table prefers the newest row, else None."""


def merge_rows(
    primary: Sequence[Mapping[str, Any]],
    secondary: Sequence[Mapping[str, Any]] = (),
    *,
    key: KeyFunc,
    order_by: Sequence[OrderTerm] = (),
    limit: int | None = None,
    start: int = 0,
    others: Sequence[Sequence[Mapping[str, Any]]] = (),
    newest: VersionFunc | None = None,
) -> list[dict[str, Any]]:
    """Merge result sets so that the primary wins every shared key.

    ``secondary`` and then ``others`` are further secondaries' rows, in
    priority order (the lowest priority number first). ``newest`` names the
    version field of rows whose table prefers recency (see rule 2).
    ``start`` and ``limit`` are applied after ordering, like SurrealQL's
    ``START`` and ``LIMIT``; to honour them each side must have been queried
    for ``start + limit`` rows from the beginning.
    """
    merged = _merge(([primary, secondary, *others]), key, newest)
    if order_by:
        merged = sort_rows(merged, order_by)
    first = max(start, 0)
    return merged[first:] if limit is None else merged[first : first + max(limit, 0)]


def _merge(
    sources: Sequence[Sequence[Mapping[str, Any]]], key: KeyFunc, newest: VersionFunc | None
) -> list[dict[str, Any]]:
    """One row per key across ``sources`` (in precedence order); keyless rows all kept."""
    merged: list[dict[str, Any]] = []
    chosen: dict[str, tuple[int, int]] = {}  # key -> (index in merged, rank of its source)
    for rank, rows in enumerate(sources):
        for row in rows:
            k = key(row)
            if k is None:
                merged.append(dict(row))
                continue
            if k not in chosen:
                chosen[k] = (len(merged), rank)
                merged.append(dict(row))
                continue
            index, held_rank = chosen[k]
            # Within one side the first row stays; across sides only a
            # strictly newer version displaces a higher-precedence row.
            field = newest(row) if newest is not None and rank != held_rank else None
            if field is not None and _newer(row, merged[index], field):
                merged[index] = dict(row)
                chosen[k] = (index, rank)
    return merged


def _newer(row: Mapping[str, Any], than: Mapping[str, Any], field: str) -> bool:
    return sort_key(field_value(row, field)) > sort_key(field_value(than, field))


def sort_rows(
    rows: Sequence[dict[str, Any]], order_by: Sequence[OrderTerm]
) -> list[dict[str, Any]]:
    """Stable sort of ``rows`` by ``order_by`` (first term most significant)."""
    ordered = list(rows)
    # Sorting by the least significant term first and relying on stability
    # gives the multi-term order; ``reverse=True`` keeps ties in input order.
    for term in reversed(order_by):
        ordered.sort(key=_term_key(term.field), reverse=term.descending)
    return ordered


def _term_key(path: str) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    """The sort key function for one ``ORDER BY`` field."""
    return lambda row: sort_key(field_value(row, path))


def field_value(row: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in ``row`` (``a.b`` walks into objects), or the missing marker.

    A key spelled literally with a dot (an alias like ```a.b```) is tried first.
    """
    if path in row:
        return row[path]
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def sort_key(value: Any) -> tuple[int, Any]:
    """A key that totally orders any SurrealDB value: (type rank, comparable value)."""
    if value is _MISSING:
        return (_RANK_NONE, 0)
    if value is None:
        return (_RANK_NULL, 0)
    # bool before int: bool is an int subclass but SurrealDB ranks it apart.
    if isinstance(value, bool):
        return (_RANK_BOOL, value)
    if isinstance(value, int | float | Decimal):
        # NaN compares false to everything (and Decimal NaN raises), so it
        # gets its own slot after every real number.
        return (_RANK_NUMBER, (1, 0) if _is_nan(value) else (0, value))
    if isinstance(value, str):
        return (_RANK_STRING, value)
    if isinstance(value, datetime):
        # timestamp() compares naive and aware values without raising.
        return (_RANK_DATETIME, value.timestamp())
    return (_RANK_OTHER, json.dumps(canonical(value), sort_keys=True, default=str))


def _is_nan(value: float | Decimal) -> bool:
    """Whether a number is NaN (Decimal's own test: comparing a signalling NaN raises)."""
    return value.is_nan() if isinstance(value, Decimal) else math.isnan(value)


def key_for_table(table_fields: Mapping[str, Sequence[str] | None]) -> KeyFunc:
    """A key function that dedups each row by its own table's rule.

    The table comes from the row's ``id`` (an SDK ``RecordID``). A table with
    natural-key fields in ``table_fields`` is keyed by them (a row lacking one
    of them has no key, so it is kept rather than wrongly merged); other
    tables by record id. An ``id`` that names no table keys by ``str(id)``.
    """

    return KeyRule(table_fields).row_key
