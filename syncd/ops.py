"""The unit of replication: one record's state to UPSERT into the secondary.

Every operation carries the *whole* record as the primary returned it after
the write, never a diff. That is what makes a retry, a replay or a duplicate
harmless, and it means a later operation on the same key supersedes an
earlier one that has not been applied yet.

Operations travel through memory, the spool and the dead-letter file; the
binary form uses the SDK's own CBOR encoder so every SurrealDB type
(record ids, datetimes, decimals, geometry) survives the round trip exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from surrealdb.data.cbor import decode, encode

from syncd.errors import SpoolCorrupt


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

    def to_bytes(self) -> bytes:
        """Encode for the spool (CBOR, SurrealDB types preserved)."""
        return bytes(
            encode(
                [
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
            )
        )

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
