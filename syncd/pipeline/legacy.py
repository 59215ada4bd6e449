"""Spool segments written by syncd 0.1 (format 1), rewritten in the current format at open.

Format 1: header ``SYNCDSP1`` + nonce, then frames
``<u32 length><u32 crc32><u64 seq><payload>`` (CRC over length and seq with the
CRC field zeroed, then the payload), and ``head.json`` in today's layout. Only
frames after the saved offset are kept, in order. Format 1 frames cannot be
found without the ones before them, so the walk stops at the first frame that
fails its check; what is left after it is reported lost.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from typing import Any

import structlog

from syncd.errors import SpoolCorrupt
from syncd.pipeline.segments import HEADER, MAGIC, frame
from syncd.sink.operation import Operation

__all__ = ["LEGACY_MAGIC", "convert"]

log = structlog.get_logger("syncd.pipeline.spool")

LEGACY_MAGIC = b"SYNCDSP1"
_FRAME = struct.Struct("<IIQ")  # payload length, crc32, seq


def convert(buf: Any, saved: list[Any] | None) -> bytes:
    """The current-format bytes of the format-1 segment ``buf`` (unconfirmed frames only)."""
    size = len(buf)
    nonce = bytes(buf[8:16])
    off = saved[1] if saved and saved[0] == nonce.hex() else HEADER.size
    out = [HEADER.pack(MAGIC, os.urandom(8))]
    while off + _FRAME.size <= size:
        length, checksum, seq = _FRAME.unpack_from(buf, off)
        end = off + _FRAME.size + length
        if end > size:
            break
        payload = bytes(buf[off + _FRAME.size : end])
        if zlib.crc32(payload, zlib.crc32(_FRAME.pack(length, 0, seq))) != checksum:
            break
        try:  # the new frame head carries the time: read it from the operation
            when = Operation.from_bytes(payload).enqueued_at
        except SpoolCorrupt:
            when = time.time()
        out.append(frame(seq, when, payload))
        off = end
    if off < size:
        log.error("spool_frames_lost", offset=off, bytes=size - off, reason="format 1 damage")
    return b"".join(out)
