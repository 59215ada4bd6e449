"""Comparing the primary's records with the secondary's: pure, no I/O.

Rules of this file:

- Two rows are "the same record" when they have the same dedup key: the
  table's natural key when it has one and the row carries every key field,
  else the record id (:func:`syncd.keys.record_key`, as the executor upserts).
- Content is compared in canonical form (SDK types rendered as SurrealQL
  prints them), without the table's volatile fields, and, for a row matched by
  natural key, without ``id``: the secondary keeps the id it first saw while
  the application may have rewritten the record under a new one.
- A key only the primary has is *missing*; a key both have with different
  content is *differing*; a key only the secondary has is *extra*. Extras are
  expected (deletes are not propagated: the secondary is an archive), so they
  never make a replica inconsistent.
- Counts are exact; examples are capped, so a tally stays small however large
  the table (it is saved in the verify progress file after every page).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from syncd.keys import KeyRule, canonical

__all__ = ["EXAMPLES", "KeySpec", "PageDiff", "TableTally", "compare_rows"]

#: Example keys kept per kind of difference and table.
EXAMPLES = 5


@dataclass(frozen=True)
class KeySpec:
    """How the records of one table are matched and compared."""

    table: str
    fields: tuple[str, ...] = ()  # natural key; empty: the record id
    volatile: frozenset[str] = frozenset()

    @cached_property
    def rule(self) -> KeyRule:
        """The key rule for this table (:class:`syncd.keys.KeyRule`)."""
        return KeyRule({self.table: self.fields})

    def uses_natural_key(self, row: Mapping[str, Any]) -> bool:
        """Whether ``row`` is matched by the natural key (it has every key field)."""
        return self.rule.natural(self.table, row)

    def key(self, row: Mapping[str, Any]) -> str | None:
        """The dedup key of ``row``; ``None`` for a row with neither key nor id."""
        return self.rule.key(self.table, row)

    def content(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of ``row`` that must match, in canonical form."""
        ignored = self.volatile | ({"id"} if self.uses_natural_key(row) else frozenset())
        return {str(k): canonical(v) for k, v in row.items() if str(k) not in ignored}


# A field present on one side only differs from any value, None included.
_ABSENT = object()


def differing_fields(
    spec: KeySpec, primary: Mapping[str, Any], secondary: Mapping[str, Any]
) -> list[str]:
    """Names of the compared fields whose values differ (present on one side only counts)."""
    a, b = spec.content(primary), spec.content(secondary)
    return sorted(
        name for name in a.keys() | b.keys() if a.get(name, _ABSENT) != b.get(name, _ABSENT)
    )


@dataclass
class PageDiff:
    """The outcome of comparing one page of rows."""

    matched: int = 0
    missing: list[str] = field(default_factory=list)
    differing: list[tuple[str, list[str]]] = field(default_factory=list)  # key, field names
    extra: list[str] = field(default_factory=list)
    missing_keys: set[str] = field(default_factory=set)  # for repair: which primary rows
    differing_keys: set[str] = field(default_factory=set)

    def needs_repair(self) -> set[str]:
        """Keys of the primary rows the secondary lacks or holds differently."""
        return self.missing_keys | self.differing_keys


def _by_key(spec: KeySpec, rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        key = spec.key(row)
        if key is not None:
            out.setdefault(key, row)  # a duplicated key: the first row speaks for it
    return out


def compare_rows(
    spec: KeySpec,
    primary_rows: Iterable[Mapping[str, Any]],
    secondary_rows: Iterable[Mapping[str, Any]],
) -> PageDiff:
    """Compare the rows of one page by dedup key (keys listed in the order the rows came)."""
    primary = _by_key(spec, primary_rows)
    secondary = _by_key(spec, secondary_rows)
    diff = PageDiff()
    for key, row in primary.items():
        other = secondary.get(key)
        if other is None:
            diff.missing.append(key)
            diff.missing_keys.add(key)
            continue
        diff.matched += 1
        fields = differing_fields(spec, row, other)
        if fields:
            diff.differing.append((key, fields))
            diff.differing_keys.add(key)
    diff.extra = [key for key in secondary if key not in primary]
    return diff


@dataclass
class TableTally:
    """Running totals of a table's verification (exact counts, capped examples)."""

    primary_records: int = 0  # primary rows compared
    secondary_records: int = 0  # secondary rows checked for extras
    missing: int = 0
    differing: int = 0
    extra: int = 0
    examples: dict[str, list[Any]] = field(
        default_factory=lambda: {"missing": [], "differing": [], "extra": []}
    )

    @property
    def consistent(self) -> bool:
        """No record missing or differing (extras are archived records, not errors)."""
        return self.missing == 0 and self.differing == 0

    def add_primary_page(self, rows: int, diff: PageDiff) -> None:
        """Count a page of primary rows and what their lookup on the secondary found."""
        self.primary_records += rows
        self.missing += len(diff.missing)
        self.differing += len(diff.differing)
        self._keep("missing", diff.missing)
        self._keep("differing", [{"key": k, "fields": f} for k, f in diff.differing])

    def add_secondary_page(self, rows: int, extra: Sequence[str]) -> None:
        """Count a page of secondary rows, ``extra`` of which the primary does not have."""
        self.secondary_records += rows
        self.extra += len(extra)
        self._keep("extra", extra)

    def _keep(self, kind: str, items: Sequence[Any]) -> None:
        room = EXAMPLES - len(self.examples[kind])
        if room > 0:
            self.examples[kind].extend(items[:room])

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (for the progress file and ``--json``)."""
        return {
            "primary_records": self.primary_records,
            "secondary_records": self.secondary_records,
            "missing": self.missing,
            "differing": self.differing,
            "extra": self.extra,
            "consistent": self.consistent,
            "examples": {k: list(v) for k, v in self.examples.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableTally:
        """Read back :meth:`to_json`; ``KeyError``, ``TypeError`` or ``ValueError`` if malformed."""
        examples = data.get("examples") or {}
        return cls(
            primary_records=int(data["primary_records"]),
            secondary_records=int(data["secondary_records"]),
            missing=int(data["missing"]),
            differing=int(data["differing"]),
            extra=int(data["extra"]),
            examples={k: list(examples.get(k, [])) for k in ("missing", "differing", "extra")},
        )
