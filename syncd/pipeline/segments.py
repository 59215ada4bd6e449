"""Segment files of the spool: the on-disk format, and the check made at open.

A segment ``seg-<20 digits>.spool`` is a 16-byte header (magic, random nonce),
then frames ``<u32 length><u32 crc32><u64 seq><Operation.to_bytes()>``; the CRC
covers length, seq and payload. This module knows the format and reads files;
what to do about damage (truncate, quarantine, log) is :mod:`syncd.pipeline.spool`'s call.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"SYNCDSP1"
HEADER = struct.Struct("<8s8s")  # magic, nonce
FRAME = struct.Struct("<IIQ")  # payload length, crc32, seq
NAME = re.compile(r"seg-(\d{20})\.spool")


def crc(length: int, seq: int, payload: Any) -> int:
    """The frame checksum: over length and seq (crc field zeroed), then the payload."""
    return zlib.crc32(payload, zlib.crc32(FRAME.pack(length, 0, seq)))


def frame(seq: int, payload: bytes) -> bytes:
    """One frame, ready to write."""
    return FRAME.pack(len(payload), crc(len(payload), seq, payload), seq) + payload


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is out (a write may be short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def replace(path: Path, data: bytes, *, fsync: bool) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename), mode 0600."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def fsync_path(path: Path) -> None:
    """Fsync a file or directory through a fresh descriptor (fsync is per inode)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # confirmed and deleted meanwhile: nothing left to make durable
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class Segment:
    """One segment file as the spool tracks it; offsets are into the file."""

    number: int
    path: Path
    nonce: bytes
    size: int  # bytes in the file, header included
    offset: int  # read cursor: start of the first unread frame
    frames: int  # unread frames
    confirmed: int  # start of the first unconfirmed frame: what head.json keeps
    # Frames read but not confirmed, in read order. Arrays, 16 bytes a frame:
    # the consumer may hold tens of thousands, and objects would cost ~10x.
    read_seqs: array[int] = field(default_factory=lambda: array("Q"))
    read_ends: array[int] = field(default_factory=lambda: array("Q"))

    def mark_read(self, seq: int, length: int) -> None:
        """Move the read cursor past the frame at it (``length``: its payload)."""
        self.offset += FRAME.size + length
        self.frames -= 1
        self.read_seqs.append(seq)
        self.read_ends.append(self.offset)

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


@dataclass(frozen=True, slots=True)
class Scan:
    """What :func:`scan` found in one segment file."""

    nonce: bytes
    frames: int  # whole frames
    start: int  # where reading resumes: the saved offset if it is a frame boundary
    skipped: int  # frames before ``start`` (confirmed in an earlier run)
    end: int  # end of the last whole frame
    max_seq: int  # largest seq among frames whose CRC matched
    damage: str | None  # "bad magic" or "crc mismatch": the file cannot be trusted
    torn: bytes  # bytes after the last whole frame of an undamaged file


def scan(path: Path, saved: list[Any] | None) -> Scan:
    """Walk the frames of ``path`` (at least a header long), checking CRCs, decoding nothing.

    ``saved`` is ``[nonce hex, offset]`` from ``head.json``; it applies only
    when the nonce matches, so a reused file name never inherits a stale offset.
    """
    size = path.stat().st_size
    frames = skipped = max_seq = 0
    bad = False
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        magic, nonce = HEADER.unpack_from(mm, 0)
        want = saved[1] if saved and saved[0] == nonce.hex() else None
        off = start = HEADER.size
        with memoryview(mm) as view:
            while magic == MAGIC and off + FRAME.size <= size:
                length, checksum, seq = FRAME.unpack_from(mm, off)
                end = off + FRAME.size + length
                if end > size:
                    break
                if off == want:
                    start, skipped = off, frames
                # Past a bad frame the walk goes on only to count what is lost.
                if crc(length, seq, view[off + FRAME.size : end]) == checksum:
                    max_seq = max(max_seq, seq)
                else:
                    bad = True
                frames, off = frames + 1, end
        start, skipped = (off, frames) if off == want else (start, skipped)
        torn = mm[off:] if magic == MAGIC and not bad else b""
    damage = "bad magic" if magic != MAGIC else "crc mismatch" if bad else None
    return Scan(nonce, frames, start, skipped, off, max_seq, damage, torn)
