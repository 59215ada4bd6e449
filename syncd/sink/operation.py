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

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.errors import SpoolCorrupt
from syncd.keys import KeyRule, table_of
from syncd.surreal.codec import decode, encode


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

    def to_bytes(self) -> bytes:
        """Encode for the spool (CBOR, SurrealDB types preserved)."""
        items = [
            1,
            self.table,
            self.key,
            self.record,
            self.source,
            self.enqueued_at,
            self.attempts,
            self.position,
            self.seq,
        ]
        return encode(items)

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
        return cls(
            table=table,
            key=str(key),
            record=record,
            source=str(source),
            enqueued_at=float(enqueued_at),
            attempts=int(attempts),
            position=position,
            seq=int(seq),
        )


def group_by_table(ops: Sequence[Operation]) -> dict[str, list[Operation]]:
    """Split a batch into one list per table (one UPSERT statement each), order kept."""
    groups: dict[str, list[Operation]] = {}
    for op in ops:
        groups.setdefault(op.table, []).append(op)
    return groups
