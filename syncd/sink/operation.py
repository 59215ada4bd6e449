"""The unit of replication: one record's state to UPSERT into the secondary.

Every operation carries the *whole* record as the primary returned it after
the write, never a diff. That is what makes a retry, a replay or a duplicate
harmless, and it means a later operation on the same key supersedes an
earlier one that has not been applied yet.

Operations travel through memory, the spool and the dead-letter file; the
binary form is the SDK's own CBOR so every SurrealDB type (record ids,
datetimes, decimals, geometry) survives the round trip exactly.

The SDK's CBOR codec is pure Python and costs about 100 us to encode and 70 us
to decode one operation: during an outage that is paid on the application's
write path, and again when the spool drains. Most records hold only maps,
arrays, strings, numbers, booleans, NULL and record ids, so those take a fast
path here that writes exactly the SDK's bytes and reads back exactly the
SDK's values (about 5x faster both ways); anything else, on either side, goes
to the SDK whole (see :mod:`syncd.surreal.codec`).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.errors import SpoolCorrupt
from syncd.keys import KeyRule, table_of
from syncd.surreal.codec import decode, encode

_ARRAY9_1 = b"\x89\x01"  # CBOR: an array of 9 items, the first the layout version 1
_NULL = b"\xf6"  # CBOR null: no position (syncd's codec reads it back as None)
_FLOAT = struct.Struct(">Bd")


_SMALL = [bytes((n,)) for n in range(24)]
_WIDTHS = ((24, 1, 1 << 8), (25, 2, 1 << 16), (26, 4, 1 << 32), (27, 8, 1 << 64))
# Tables and sources are few, and met on every write: their CBOR is kept.
_TEXTS: dict[str, bytes] = {}


def _uint(value: int, major: int = 0) -> bytes:
    """A CBOR head: ``major`` type with ``value`` (an unsigned integer for major 0)."""
    if 0 <= value < 24:
        return _SMALL[value | (major << 5)] if major == 0 else bytes(((major << 5) | value,))
    for info, size, limit in _WIDTHS:
        if 0 <= value < limit:
            return bytes(((major << 5) | info,)) + value.to_bytes(size, "big")
    return encode(value)  # negative or huge: never a seq, count or position


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return _uint(len(data), 3) + data


def _name(value: str) -> bytes:
    """``_text`` of a table or source name, from a small cache."""
    found = _TEXTS.get(value)
    if found is None:
        if len(_TEXTS) > 4096:
            _TEXTS.clear()
        found = _TEXTS[value] = _text(value)
    return found


@dataclass(slots=True)
class Operation:
    """One record to upsert into the secondary."""

    table: str
    key: str
    record: dict[str, Any]
    source: str = "wrapper"
    enqueued_at: float = field(default_factory=time.time)
    attempts: int = 0
    seq: int = 0
    # Changefeed sequence number the operation came from (daemon only); the
    # checkpoint advances past it once it is applied or dead-lettered.
    position: int | None = None
    #: The record's CBOR, made once (see :meth:`record_bytes`): the spool's frame
    #: carries it, and a sink may splice the same bytes into its request.
    record_cbor: bytes | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_row(
        cls,
        record: Mapping[str, Any],
        keys: KeyRule,
        *,
        table: str | None = None,
        source: str = "wrapper",
        position: int | None = None,
    ) -> Operation | None:
        """The operation that upserts ``record``; ``None`` when it has no usable key.

        The one place a row becomes an operation (wrapper, changefeed,
        backfill, repair): the key comes from ``keys``, the table from the
        record's id unless given.
        """
        table = table or table_of(record)
        if table is None:
            return None
        key = keys.key(table, record)
        if key is None:
            return None
        row = record if isinstance(record, dict) else dict(record)
        return cls(table=table, key=key, record=row, source=source, position=position)

    def clone(self) -> Operation:
        """A copy for another secondary's queue: its own seq and attempts, the same
        record and (once encoded) the same bytes."""
        return Operation(
            table=self.table,
            key=self.key,
            record=self.record,
            source=self.source,
            enqueued_at=self.enqueued_at,
            position=self.position,
            record_cbor=self.record_cbor,
        )

    def record_bytes(self) -> bytes:
        """The record's CBOR (SurrealDB types preserved), encoded on the first call only.

        The record must not change after that: it is a copy made at capture,
        which nothing in syncd mutates.
        """
        if self.record_cbor is None:
            self.record_cbor = encode(self.record)
        return self.record_cbor

    def to_bytes(self) -> bytes:
        """Encode for the spool: the CBOR array ``[1, table, key, record, source,
        enqueued_at, attempts, position, seq]``.

        A CBOR array is its items' encodings in a row, so the record's bytes
        (:meth:`record_bytes`, the costly part) are spliced in, not made again.
        """
        head, tail = self._envelope()
        return head + self.record_bytes() + tail

    def _envelope(self) -> tuple[bytes, bytes]:
        """The array's bytes before and after the record: a few scalars, written here
        directly, byte for byte what :func:`syncd.surreal.codec.encode` writes for them."""
        position = _NULL if self.position is None else _uint(self.position)
        head = _ARRAY9_1 + _name(self.table) + _text(self.key)
        tail = (
            _name(self.source)
            + _FLOAT.pack(0xFB, self.enqueued_at)
            + _uint(self.attempts)
            + position
            + _uint(self.seq)
        )
        return head, tail

    @classmethod
    def from_bytes(cls, data: bytes) -> Operation:
        """Decode what :meth:`to_bytes` wrote; raises :class:`SpoolCorrupt` otherwise."""
        try:
            items = decode(data)
            version, table, key, record, source, enqueued_at, attempts, position, seq = items
        except Exception as exc:  # the decoder raises many kinds on garbage
            raise SpoolCorrupt(f"undecodable operation ({type(exc).__name__})") from exc
        if version != 1 or not isinstance(record, dict) or not isinstance(table, str):
            raise SpoolCorrupt("operation has an unknown layout")
        op = cls(
            table=table,
            key=str(key),
            record=record,
            source=str(source),
            enqueued_at=float(enqueued_at),
            attempts=int(attempts),
            position=position,
            seq=int(seq),
        )
        # The record's bytes are in there already: keep them if the envelope
        # around them is what to_bytes() writes (it is, unless an older writer).
        head, tail = op._envelope()
        if data.startswith(head) and data.endswith(tail):
            op.record_cbor = bytes(data[len(head) : len(data) - len(tail)])
        return op


def group_by_table(ops: Sequence[Operation]) -> dict[str, list[Operation]]:
    """Split a batch into one list per table (one UPSERT statement each), order kept."""
    groups: dict[str, list[Operation]] = {}
    for op in ops:
        groups.setdefault(op.table, []).append(op)
    return groups
