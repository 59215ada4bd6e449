"""Lane choice and batch shaping. Pure: no I/O, no clocks.

Rules of this file:
- every operation on one record goes to the same lane, whatever the number of
  workers, so one worker applies that record's operations in arrival order;
  the lane comes from a CRC of the dedup key, stable across processes (Python's
  ``hash()`` of a string is salted per process);
- an operation carries the record's whole state, so within one batch only the
  newest operation per key needs to be sent: older ones are *superseded*, and
  reported as such (they are accounted for, not dropped silently).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from syncd.sink.operation import Operation


def lane_for(key: str, lanes: int) -> int:
    """The lane (worker index) that owns ``key``."""
    if lanes < 1:
        raise ValueError("lanes must be >= 1")
    return zlib.crc32(key.encode("utf-8")) % lanes


def coalesce(ops: Sequence[Operation]) -> tuple[list[Operation], list[Operation]]:
    """Keep the newest operation per key; return ``(kept, superseded)``.

    ``kept`` preserves the relative order of the surviving operations, so two
    keys' writes still go out in the order they arrived.
    """
    last: dict[tuple[str, str], int] = {}
    for index, op in enumerate(ops):
        last[(op.table, op.key)] = index
    kept: list[Operation] = []
    superseded: list[Operation] = []
    for index, op in enumerate(ops):
        if last[(op.table, op.key)] == index:
            kept.append(op)
        else:
            superseded.append(op)
    return kept, superseded
