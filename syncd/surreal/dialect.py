"""What differs between SurrealDB server generations, chosen by the server's version string.

Pure logic: no I/O, no SDK, no event loop. Ask the server ``version`` (RPC)
once per connection, then ``dialect_for(answer)``; the answer reads
``surrealdb-2.3.10`` from ``surreal start`` 2.3.10, ``surrealdb-2.0.0`` from the
2.x embedded engine (it reports the SDK wheel's version, not surrealdb-core's)
and ``surrealdb-3.2.4`` from 3.2.4. Generations 2 and 3 are tested; 4 and later
get the 3.x rules and ``tested`` False, so callers can warn.

Measured on the embedded engines, 2.3.10 and 3.2.4 (``tests/surreal/frames``):

Feed positions. syncd keeps *raw versionstamps* (the ``versionstamp`` of a
``SHOW CHANGES`` entry), saved with :attr:`Dialect.rules`:

- 2.x: ``versionstamp = sequence << 16`` (low 16 bits 0 on mem and surrealkv);
  ``SINCE`` takes the sequence and is inclusive; a raw stamp after ``SINCE``
  silently returns ``[]``. So ``+ 1`` is *not* the next position: use
  :meth:`Dialect.next_position`.
- 3.x: ``versionstamp = (unix_ms << 16) | counter``; ``SINCE`` takes the raw
  stamp, inclusive; a sequence number after ``SINCE`` reads from the start.
- Both: ``SINCE`` must be a literal (a ``$param`` is a parse error), at most
  ``2**64 - 1``; ``LIMIT`` is capped at 1000 and defaults to 100;
  ``SHOW CHANGES FOR DATABASE`` and ``FOR TABLE`` both exist; an unknown table
  gives ``[]``. A ``define_table`` change is ``{name}`` on 2.x and the whole
  definition on 3.x. ``ALTER TABLE t CHANGEFEED`` records nothing until a
  restart on 2.x and takes effect at once on 3.x; ``DEFINE TABLE OVERWRITE``
  with the table's own definition works at once on both.

SurrealQL. ``type::thing`` is a parse error on 3.x; 2.x refuses
``type::record`` with a range, and ``type::thing`` with a UUID bound. Reading
an undefined table (``SELECT``, ``UPDATE``, ``DELETE``, ``count()``, a record
range) is an error on 3.x and ``[]`` on 2.x. 3.x uses an index only when the
compared value is a plain ``$param`` or literal, not ``$r.content.f`` (a table
scan per row: 15 ms a row at 2,000 rows). ``INFO FOR DB``/``INFO FOR TABLE``
print definitions the same way (3.x has more keys). ``record::exists``,
``array::len``, ``IF ... ELSE``, ``FOR``, blocks and ``INSERT RELATION`` answer
alike. 3.x refuses a field a SCHEMAFULL table does not define; 2.x drops it.

Results. 3.x answers one result per statement *including* ``BEGIN`` and
``COMMIT``/``CANCEL``, and adds a ``type`` key; 2.x leaves those out, and
collapses a transaction that ``RETURN``s into that one value. See
:meth:`Dialect.statement_results`. Errors: :mod:`syncd.surreal.failures`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.surreal.failures import ErrorKind, Failure, classify, failure_of, is_undefined_table

__all__ = [
    "FEED_LIMIT_MAX",
    "TESTED_GENERATIONS",
    "Dialect",
    "ErrorKind",
    "Failure",
    "ServerVersion",
    "classify",
    "dialect_for",
    "failure_of",
    "is_undefined_table",
    "key_lookup",
    "key_params",
    "parse_version",
    "quote_ident",
    "tested",
]

TESTED_GENERATIONS = frozenset({2, 3})
"""Major versions whose rules were measured on a real engine."""
FEED_LIMIT_MAX = 1000
"""The most entries one ``SHOW CHANGES`` returns, whatever its LIMIT (both generations)."""

_VERSION = re.compile(r"^(?:surrealdb-)?v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_]*$")
_U64_MAX = 2**64 - 1
_STAMP_MAX_V2 = 2**80 - 1  # 10-byte stamps; only ``stamp >> 16`` reaches SINCE
_SEQUENCE_STEP = 1 << 16
# A 3.x stamp carries unix milliseconds; none predates 2020 (3.0 shipped in
# 2026), and none is more than a day ahead of our clock.
_EARLIEST_MS = 1_577_836_800_000
_SKEW_MS = 86_400_000
_CONTROL_CLOSE = frozenset({"COMMIT", "CANCEL"})


@dataclass(frozen=True, order=True)
class ServerVersion:
    """A server's version, ordered by (major, minor, patch); ``raw`` is the text it came from."""

    major: int
    minor: int
    patch: int
    raw: str = field(default="", compare=False)

    def __str__(self) -> str:
        """``major.minor.patch``."""
        return f"{self.major}.{self.minor}.{self.patch}"


def parse_version(text: str) -> ServerVersion:
    """Parse ``surrealdb-3.2.4``, ``3.2.4``, ``v2.3.10``, ``surrealdb-3.0.0-beta.2``...

    Raises ``ValueError`` for anything else: guessing a generation would pick
    the wrong feed positions silently.
    """
    match = _VERSION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a SurrealDB version: {text!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return ServerVersion(major, minor, patch, text.strip())


def quote_ident(name: str) -> str:
    """``name`` as a SurrealQL identifier: bare when plain, else in backticks (both generations)."""
    if _IDENT.match(name):
        return name
    escaped = name.replace("\\", "\\\\").replace("`", "\\`")
    return f"`{escaped}`"


def _param(name: str) -> str:
    if not _PARAM.match(name):
        raise ValueError(f"{name!r} is not a $parameter")
    return name


def _fields(fields: Sequence[str]) -> list[str]:
    # Key fields are spliced into the text, so only plain identifiers pass.
    if not fields or not all(isinstance(f, str) and _IDENT.match(f) for f in fields):
        raise ValueError(f"key fields must be plain identifiers: {list(fields)!r}")
    return list(fields)


def key_lookup(table_var: str, fields: Sequence[str], prefix: str) -> str:
    """``SELECT * FROM type::table($t) WHERE f = $<prefix>_0 AND ... LIMIT 1``.

    Pair it with :func:`key_params`. One flat ``$param`` per field, because
    3.x does not use an index for ``f = $k.f`` (both generations accept this).
    """
    where = " AND ".join(f"{f} = ${prefix}_{i}" for i, f in enumerate(_fields(fields)))
    return f"SELECT * FROM type::table({_param(table_var)}) WHERE {where} LIMIT 1"


def key_params(prefix: str, fields: Sequence[str], row: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters :func:`key_lookup` reads for ``row``."""
    return {f"{prefix}_{i}": row[f] for i, f in enumerate(_fields(fields))}


@dataclass(frozen=True)
class Dialect:
    """The rules for one server: feed positions, SurrealQL, result alignment."""

    version: ServerVersion
    rules: int
    """2 or 3: the generation whose rules apply. Save it with feed positions:
    a position saved under other rules cannot be resumed (backfill instead)."""

    @property
    def tested(self) -> bool:
        """False for generations never measured (4+): warn, then use the 3.x rules."""
        return self.version.major in TESTED_GENERATIONS

    # -- feed positions ----------------------------------------------------

    def since_literal(self, position: int) -> str:
        """What to write after ``SINCE`` to read the entries at and after ``position``.

        2.x rounds down to the sequence: every entry at ``position`` is read
        (maybe one more before it on a store with non-zero low bits, which is
        harmless, UPSERTs being idempotent; rounding up could skip one).
        """
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise ValueError(f"feed position must be a non-negative int, not {position!r}")
        if self.rules == 2:
            return str(min(position >> 16, _U64_MAX))
        if position > _U64_MAX:
            raise ValueError(f"feed position {position} does not fit SINCE (u64)")
        return str(position)

    def next_position(self, versionstamp: int) -> int:
        """The first position after an applied entry's ``versionstamp``.

        ``since_literal(next_position(v))`` never re-reads the entry at ``v``.
        """
        if self.rules == 2:
            return ((versionstamp >> 16) + 1) << 16
        return versionstamp + 1

    def entry_position(self, entry: Mapping[str, Any]) -> int:
        """The position of a ``SHOW CHANGES`` entry (its raw versionstamp)."""
        stamp = entry.get("versionstamp")
        if isinstance(stamp, bool) or not isinstance(stamp, int) or stamp < 0:
            raise ValueError(f"feed entry has no usable versionstamp: {stamp!r}")
        return stamp

    def lag_seconds(self, versionstamp: int, now: float) -> float | None:
        """How old the entry at ``versionstamp`` is at unix time ``now``; None on 2.x.

        3.x stamps carry the commit's wall-clock milliseconds (clamped at 0 for
        clock skew); 2.x stamps are a bare counter.
        """
        if self.rules == 2:
            return None
        return max(0.0, now - (versionstamp >> 16) / 1000.0)

    def plausible(self, versionstamp: int, now: float | None = None) -> bool:
        """Whether ``versionstamp`` can be a position of this server's feed.

        3.x: its milliseconds lie between 2020 and a day after ``now``. 2.x
        stamps carry no time, so only the range is checked; the saved
        :attr:`rules` is the real guard against a position from the other
        generation (a 3.x stamp used as a 2.x one reads nothing, silently).
        """
        if isinstance(versionstamp, bool) or not isinstance(versionstamp, int):
            return False
        if self.rules == 2:
            return 0 <= versionstamp <= _STAMP_MAX_V2
        if not 0 <= versionstamp <= _U64_MAX:
            return False
        millis = versionstamp >> 16
        latest = _U64_MAX if now is None else now * 1000 + _SKEW_MS
        return _EARLIEST_MS <= millis <= latest

    def can_resume(self, saved_rules: int | None, position: int, now: float | None = None) -> bool:
        """Whether a checkpoint saved under ``saved_rules`` at ``position`` can be resumed here."""
        return saved_rules == self.rules and self.plausible(position, now)

    def show_changes(self, position: int, limit: int, table: str | None = None) -> str:
        """``SHOW CHANGES FOR DATABASE|TABLE t SINCE <position> LIMIT n`` (n capped at 1000)."""
        target = "DATABASE" if table is None else f"TABLE {quote_ident(table)}"
        count = max(1, min(int(limit), FEED_LIMIT_MAX))
        return f"SHOW CHANGES FOR {target} SINCE {self.since_literal(position)} LIMIT {count}"

    # -- SurrealQL ---------------------------------------------------------

    @property
    def record_fn(self) -> str:
        """The record-id constructor: ``type::thing`` (2.x) or ``type::record`` (3.x)."""
        return "type::thing" if self.rules == 2 else "type::record"

    @property
    def uuid_bound_needs_literal(self) -> bool:
        """2.x refuses a UUID range bound as a parameter: splice ``t:u'<uuid>'>..`` instead."""
        return self.rules == 2

    @property
    def missing_table_is_error(self) -> bool:
        """Reading an undefined table fails (3.x) instead of returning ``[]`` (2.x).

        A secondary has no table until something was replicated to it, so
        readers of a secondary treat :func:`is_undefined_table` as empty.
        """
        return self.rules >= 3

    @property
    def transaction_control_results(self) -> bool:
        """Whether ``BEGIN``/``COMMIT``/``CANCEL`` get a result entry of their own (3.x)."""
        return self.rules >= 3

    def record_range(self, table_var: str = "$t", after_var: str | None = None) -> str:
        """The records of a table in id order, after ``after_var``'s id value, or all.

        ``type::thing($t, $after>..)`` on 2.x, ``type::record(...)`` on 3.x;
        use it after ``FROM`` (with a LIMIT). See :attr:`uuid_bound_needs_literal`.
        """
        bound = ".." if after_var is None else f"{_param(after_var)}>.."
        return f"{self.record_fn}({_param(table_var)}, {bound})"

    def ensure_table(self, table_var: str) -> str | None:
        """A statement defining the table named by ``table_var`` if missing (3.x), else None.

        3.x takes the name as a ``$param`` here; 2.x only takes an identifier,
        and needs none (its reads of a missing table return ``[]``).
        """
        return f"DEFINE TABLE IF NOT EXISTS {_param(table_var)}" if self.rules >= 3 else None

    def natural_upsert(self, var: str, table_var: str, fields: Sequence[str], *, many: bool) -> str:
        """One top-level statement upserting by natural key (one result entry).

        ``$var`` holds one row (``many`` False) or a list of rows, each
        ``{"id": <record id>, "content": {...}}``; ``table_var`` (``$t0``) the
        table name; ``fields`` the key. The record holding the key keeps its
        id; a new key gets the row's id. Replaces the form syncd used, which
        on *both* generations added a random-id duplicate when run inside
        ``FOR`` (``UPSERT type::table($t) ... WHERE`` in a loop creates one),
        and on 3.x scanned the table per row and failed on a missing table.
        """
        fields = _fields(fields)
        table = _param(table_var)
        row = "$r" if many else _param(f"${var}")
        lets = "; ".join(f"LET $_k{i} = {row}.content.{f}" for i, f in enumerate(fields))
        where = " AND ".join(f"{f} = $_k{i}" for i, f in enumerate(fields))
        body = (
            f"{lets}; LET $_hit = (SELECT VALUE id FROM type::table({table}) WHERE {where} "
            f"LIMIT 1)[0]; IF $_hit {{ UPSERT $_hit CONTENT {row}.content RETURN NONE }} "
            f"ELSE {{ UPSERT {row}.id CONTENT {row}.content RETURN NONE }}"
        )
        statement = f"FOR $r IN {_param(f'${var}')} {{ {body} }}" if many else body
        ensure = self.ensure_table(table)
        if ensure is not None:
            statement = f"{ensure}; {statement}"
        # A block is one statement with one result entry on both generations.
        return statement if many and ensure is None else f"{{ {statement} }}"

    # -- results -----------------------------------------------------------

    def statement_results(self, kinds: Sequence[str], results: Sequence[Any]) -> list[Any] | None:
        """The entries of a ``query`` answer shaped as 2.x shapes them.

        ``kinds`` are the top-level statements' first keywords (as
        ``syncd.reads.statements.parse`` gives them, ``BEGIN``, ``CREATE``...).
        2.x answers pass unchanged. From a 3.x answer this drops the entries of
        ``BEGIN`` and of the ``COMMIT``/``CANCEL`` closing it, and collapses a
        transaction that ``RETURN``s (successfully) into that one entry, as 2.x
        does; so ``syncd.reads.statements.result_index`` applies to both. Returns
        None when the 3.x answer cannot be aligned (a ``RETURN`` inside a
        block ended a transaction early): treat it as "alignment unknown".
        """
        if self.rules == 2:
            return list(results)
        upper = [k.upper() for k in kinds]
        shaped: list[Any] = []
        entry, i = 0, 0
        while i < len(upper):
            if upper[i] != "BEGIN":
                if entry >= len(results):
                    return None
                shaped.append(results[entry])
                entry, i = entry + 1, i + 1
                continue
            end = i + 1
            while end < len(upper) and upper[end] not in _CONTROL_CLOSE:
                end += 1
            taken = _transaction(upper[i + 1 : end], results, entry + 1)
            if taken is None:
                return None
            body, entry = taken
            shaped.extend(body)
            if end < len(upper):  # the closer's own entry
                if entry >= len(results):
                    return None
                entry += 1
            i = end + 1
        return shaped if entry == len(results) else None


def _transaction(
    body: Sequence[str], results: Sequence[Any], entry: int
) -> tuple[list[Any], int] | None:
    """A 3.x transaction body's entries (2.x-shaped) and the next entry index."""
    taken: list[Any] = []
    nested = False
    for kind in body:
        if entry >= len(results):
            return None
        result = results[entry]
        entry += 1
        taken.append(result)
        nested = nested or kind == "BEGIN"
        if kind == "RETURN" and not nested and failure_of(result) is None:
            # It ended the transaction: later statements get no entry, and
            # 2.x answers the whole transaction with this one value.
            return [result], entry
    return taken, entry


def tested(version: str | None) -> bool | None:
    """Whether syncd was tested with the server answering ``version`` (None: not known)."""
    if version is None:
        return None
    try:
        return parse_version(version).major in TESTED_GENERATIONS
    except ValueError:
        return False


def dialect_for(version: str | ServerVersion) -> Dialect:
    """The dialect for a server's ``version`` answer (or a parsed version).

    Raises ``ValueError`` for an unparseable version and for 1.x, whose
    feed and SurrealQL syncd never supported.
    """
    parsed = version if isinstance(version, ServerVersion) else parse_version(version)
    if parsed.major < 2:
        raise ValueError(f"SurrealDB {parsed} is not supported (2.x or later)")
    return Dialect(parsed, 2 if parsed.major == 2 else 3)
