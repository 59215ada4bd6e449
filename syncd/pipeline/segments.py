"""Segment files of the spool: the on-disk format, and the walk that checks it.

A segment ``seg-<20 digits>.spool`` is a 16-byte header (magic ``SYNCDSP2``,
random nonce), then frames. A frame describes itself, so it can be found and
checked without the segment header or the frames before it (as Vector's disk
buffer does)::

    <4s frame magic><u32 length><u32 crc32><u64 seq><f64 enqueued_at><payload>

The payload is :meth:`Operation.to_bytes`; the CRC covers the 28-byte head
(CRC field zeroed) and the payload. A frame with seq 0 is a *pad*: damage
already reported, made into a valid frame so later walks step over it quietly.

A walk that meets a frame failing its check scans forward for the next frame
whose head and CRC check out and goes on from there, so damage costs the frames
it overlaps and no more. This module knows the format and walks bytes; what to
do about damage (report it, pad it, truncate a torn tail) is
:mod:`syncd.pipeline.spool`'s call.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"SYNCDSP2"
HEADER = struct.Struct("<8s8s")  # magic, nonce
FRAME_MAGIC = b"\xf3Sy\x02"
FRAME = struct.Struct("<4sIIQd")  # magic, payload length, crc32, seq, enqueued_at
NAME = re.compile(r"seg-(\d{20})\.spool")
_ZERO_CRC = b"\0\0\0\0"


def frame(seq: int, when: float, payload: bytes) -> bytes:
    """One frame, ready to write; ``seq`` >= 1 (0 marks a pad)."""
    if seq < 1:
        raise ValueError("seq must be >= 1 (0 marks a pad frame)")
    head = FRAME.pack(FRAME_MAGIC, len(payload), 0, seq, when)
    checksum = zlib.crc32(payload, zlib.crc32(head))
    return FRAME.pack(FRAME_MAGIC, len(payload), checksum, seq, when) + payload


def pad_head(region: Any) -> bytes:
    """A head that makes ``region`` (damaged bytes, at least a head long) one valid pad frame."""
    length = len(region) - FRAME.size
    head = FRAME.pack(FRAME_MAGIC, length, 0, 0, 0.0)
    checksum = zlib.crc32(region[FRAME.size :], zlib.crc32(head))
    return FRAME.pack(FRAME_MAGIC, length, checksum, 0, 0.0)


def check(buf: Any, off: int, size: int) -> tuple[int, int, float] | None:
    """``(payload length, seq, enqueued_at)`` of a valid frame at ``off``, else ``None``."""
    if off + FRAME.size > size:
        return None
    magic, length, checksum, seq, when = FRAME.unpack_from(buf, off)
    end = off + FRAME.size + length
    if magic != FRAME_MAGIC or end > size:
        return None
    # Over the bytes as they are (a garbage float would not re-pack the same).
    crc = zlib.crc32(buf[off : off + 8])
    crc = zlib.crc32(buf[off + 12 : end], zlib.crc32(_ZERO_CRC, crc))
    if crc != checksum:
        return None
    return length, seq, when


def resync(buf: Any, start: int, size: int) -> int | None:
    """The offset of the first valid frame at or after ``start``, or ``None``."""
    at: int = buf.find(FRAME_MAGIC, start, size)
    while at != -1:
        if check(buf, at, size) is not None:
            return at
        at = buf.find(FRAME_MAGIC, at + 1, size)
    return None


@dataclass(frozen=True, slots=True)
class Frame:
    """A valid frame met by :func:`walk` (``seq`` 0: a pad)."""

    start: int
    end: int
    seq: int
    when: float


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes ``[start, end)`` that hold no valid frame; a valid frame follows them."""

    start: int
    end: int


def walk(buf: Any, off: int, size: int) -> Iterator[Frame | Damage]:
    """The frames and damaged regions of ``buf[off:size]``, in order.

    Stops at the end or before bytes after which no valid frame follows: the
    caller learns where from the last item (``size`` when nothing is left).
    """
    while off + FRAME.size <= size:
        found = check(buf, off, size)
        if found is not None:
            end = off + FRAME.size + found[0]
            yield Frame(off, end, found[1], found[2])
            off = end
            continue
        nxt = resync(buf, off + 1, size)
        if nxt is None:
            return
        yield Damage(off, nxt)
        off = nxt


def lost_estimate(region: Any, before: int | None, after: int | None) -> int:
    """How many frames a damaged region held: from the seqs around it when both are
    known (seqs count up by one), else from the frame magics still in it; at least 1."""
    if before is not None and after is not None and after - before > 1:
        return after - before - 1
    return max(1, bytes(region).count(FRAME_MAGIC))


@dataclass(frozen=True, slots=True)
class Survey:
    """What :func:`survey` found in one segment file."""

    magic: bytes  # the header's: MAGIC, or else the header is damaged (or an older format)
    nonce: bytes
    start: int  # where reading resumes: the saved offset when the nonce matches, else the first
    frames: int  # valid frames from ``start`` on, pads not counted
    end: int  # end of the last valid frame: bytes after it are torn (no valid frame follows)
    max_seq: int  # largest seq of a valid frame (the whole file)
    head: tuple[int, float] | None  # (seq, enqueued_at) of the first frame from ``start``
    # Damaged regions with the seqs of the frames around them (None: unknown).
    damage: list[tuple[Damage, int | None, int | None]]


def survey(buf: Any, size: int, saved: list[Any] | None, before: int | None = None) -> Survey:
    """Walk a segment's bytes (at least a header long), checking every frame, decoding none.

    ``saved`` is ``[nonce hex, offset]`` from ``head.json``; it applies only
    when the nonce matches, so a reused file name never inherits a stale
    offset. ``before`` is the seq of the last frame of the previous segment.
    """
    magic, nonce = HEADER.unpack_from(buf, 0)
    want = saved[1] if saved and magic == MAGIC and saved[0] == nonce.hex() else HEADER.size
    start = end = HEADER.size
    frames = max_seq = 0
    started = False
    head: tuple[int, float] | None = None
    damage: list[tuple[Damage, int | None, int | None]] = []
    last, open_damage = before, False
    for item in walk(buf, HEADER.size, size):
        end = item.end
        if isinstance(item, Damage):
            damage.append((item, last, None))
            open_damage = True
            continue
        if not item.seq:
            continue
        if open_damage:  # the frame after a damaged region tells what was lost
            region, seq_before, _ = damage[-1]
            damage[-1] = (region, seq_before, item.seq)
            open_damage = False
        if not started and item.start >= want:
            start, started = item.start, True
        if started:
            frames += 1
            head = head or (item.seq, item.when)
        max_seq, last = max(max_seq, item.seq), item.seq
    if not started:
        start = end  # everything was confirmed (or there is nothing)
    return Survey(magic, nonce, start, frames, end, max_seq, head, damage)


def first_frame(path: Path, offset: int, size: int) -> tuple[int, float] | None:
    """(seq, enqueued_at) of the first frame at or after ``offset`` that is not a pad.

    Read from its head alone when the head looks right (its CRC is checked when
    the frame is read), else by a walk past pads and damage.
    """
    with path.open("rb") as f:
        head = os.pread(f.fileno(), FRAME.size, offset)
        if len(head) == FRAME.size:
            magic, _, _, seq, when = FRAME.unpack(head)
            if magic == FRAME_MAGIC and seq:
                return seq, when
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
            for item in walk(mm, offset, size):
                if isinstance(item, Frame) and item.seq:
                    return item.seq, item.when
    return None


@dataclass(slots=True)
class Segment:
    """One segment file as the spool tracks it; offsets are into the file."""

    number: int
    path: Path
    nonce: bytes
    size: int  # bytes in the file, header included
    offset: int  # read cursor: start of the first unread frame
    frames: int  # unread frames (pads not counted)
    confirmed: int  # start of the first unconfirmed frame: what head.json keeps
    # Frames read but not confirmed, in read order. Arrays, 16 bytes a frame:
    # the consumer may hold tens of thousands, and objects would cost ~10x.
    read_seqs: array[int] = field(default_factory=lambda: array("Q"))
    read_ends: array[int] = field(default_factory=lambda: array("Q"))

    def mark_read(self, seq: int, end: int) -> None:
        """Move the read cursor to ``end``, past the frame ``seq`` just read."""
        self.offset = end
        self.frames -= 1
        self.read_seqs.append(seq)
        self.read_ends.append(end)

    def confirm(self, through_seq: int) -> int:
        """Release the leading read frames with seq <= ``through_seq``; return how many.

        The file has one confirmed offset, so the first read frame above
        ``through_seq`` holds back those behind it until a later confirm:
        never unsafe, merely late if seqs were out of order.
        """
        count = 0
        for seq in self.read_seqs:
            if seq > through_seq:
                break
            count += 1
        if count:
            self.confirmed = self.read_ends[count - 1]
            del self.read_seqs[:count]
            del self.read_ends[:count]
        return count

    @property
    def done(self) -> bool:
        """Every frame read and confirmed: the file can go."""
        return not self.frames and not self.read_seqs
