"""Format-1 spool segments (syncd 0.1) rewritten in today's format: unconfirmed frames only,
in order, the first damaged frame ending the walk."""

from __future__ import annotations

import struct
import time
import zlib

from syncd.pipeline.legacy import LEGACY_MAGIC, convert
from syncd.pipeline.segments import HEADER, MAGIC, Frame, walk
from syncd.sink.operation import Operation

NONCE = b"\x09" * 8
_FRAME = struct.Struct("<IIQ")


def old_frame(seq: int, payload: bytes) -> bytes:
    checksum = zlib.crc32(payload, zlib.crc32(_FRAME.pack(len(payload), 0, seq)))
    return _FRAME.pack(len(payload), checksum, seq) + payload


def op(key: str, when: float) -> bytes:
    return Operation(table="t", key=key, record={"k": key}, enqueued_at=when).to_bytes()


def old_segment(*frames: bytes) -> bytes:
    return LEGACY_MAGIC + NONCE + b"".join(frames)


def frames_of(data: bytes) -> list[tuple[int, float, bytes]]:
    return [
        (item.seq, item.when, data[item.start + 28 : item.end])
        for item in walk(data, HEADER.size, len(data))
        if isinstance(item, Frame)
    ]


def test_every_frame_is_carried_over_with_its_seq_payload_and_time() -> None:
    a, b = op("a", 100.0), op("b", 200.0)
    data = convert(old_segment(old_frame(1, a), old_frame(2, b)), None)
    magic, nonce = HEADER.unpack_from(data)
    assert magic == MAGIC and nonce != NONCE  # a fresh nonce: no saved offset applies
    assert frames_of(data) == [(1, 100.0, a), (2, 200.0, b)]


def test_only_frames_after_the_saved_offset_are_kept() -> None:
    first = old_frame(1, op("a", 1.0))
    buf = old_segment(first, old_frame(2, op("b", 2.0)))
    data = convert(buf, [NONCE.hex(), HEADER.size + len(first)])
    assert [seq for seq, _, _ in frames_of(data)] == [2]
    # a saved offset for another file's nonce does not apply
    data = convert(buf, ["00" * 8, HEADER.size + len(first)])
    assert [seq for seq, _, _ in frames_of(data)] == [1, 2]


def test_the_walk_stops_at_the_first_damaged_frame() -> None:
    first, second, third = (old_frame(i, op(str(i), 1.0)) for i in (1, 2, 3))
    buf = bytearray(old_segment(first, second, third))
    buf[HEADER.size + len(first) + _FRAME.size + 2] ^= 0xFF
    data = convert(bytes(buf), None)
    assert [seq for seq, _, _ in frames_of(data)] == [1]


def test_a_torn_last_frame_is_dropped() -> None:
    first = old_frame(1, op("a", 1.0))
    data = convert(old_segment(first, old_frame(2, op("b", 2.0))[:-3]), None)
    assert [seq for seq, _, _ in frames_of(data)] == [1]


def test_a_payload_that_is_no_operation_is_kept_stamped_now() -> None:
    before = time.time()
    data = convert(old_segment(old_frame(4, b"not cbor of an operation")), None)
    [(seq, when, payload)] = frames_of(data)
    assert (seq, payload) == (4, b"not cbor of an operation")
    assert before <= when <= time.time()
