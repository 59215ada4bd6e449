"""Durable FIFO overflow of operations: the spool.

Segment files ``seg-<20 digits>.spool`` are read in lexical order: tails count
up from 10**12, :meth:`Spool.prepend` heads count down, so in-memory operations
saved at shutdown (older than the spool's content) come first. A segment is a
16-byte header (magic, random nonce), then frames ``<u32 length><u32 crc32>
<u64 seq><Operation.to_bytes()>``; the CRC covers length, seq and payload.

Read position is persisted: ``head.json`` maps each partly read segment (name
and nonce, so a reused name never inherits a stale offset) to its offset, and
keeps ``max_seq`` once the spool drains. It is replaced atomically every 1024
reads and on sync/close, so a crash re-delivers at most the reads since then
(at-least-once: operations are idempotent upserts).

An append is one ``write()`` to the OS (a killed process loses nothing); fsync
waits for :meth:`Spool.sync`, which runs outside the lock. Damage is logged,
never fatal: a torn tail is truncated (cut bytes kept in ``corrupt/``), a
segment failing its CRC is moved to ``corrupt/``.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from syncd.errors import SpoolCorrupt
from syncd.ops import Operation

log = structlog.get_logger(__name__)

MAGIC = b"SYNCDSP1"
TAIL_BASE = 10**12
CHECKPOINT_EVERY = 1024
_HEADER = struct.Struct("<8s8s")  # magic, nonce
_FRAME = struct.Struct("<IIQ")  # payload length, crc32, seq
_NAME = re.compile(r"seg-(\d{20})\.spool")
_STATE = "head.json"


def _crc(length: int, seq: int, payload: Any) -> int:
    return zlib.crc32(payload, zlib.crc32(_FRAME.pack(length, 0, seq)))


def _frame(seq: int, payload: bytes) -> bytes:
    return _FRAME.pack(len(payload), _crc(len(payload), seq, payload), seq) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _replace(path: Path, data: bytes, *, fsync: bool) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + rename), mode 0600."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    """Fsync a file or directory through a fresh descriptor (fsync is per inode)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # read and deleted meanwhile: nothing left to make durable
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    nonce: bytes
    size: int  # bytes in the file, header included
    offset: int  # read position: start of the first unread frame
    frames: int  # unread frames


class Spool:
    """A directory of segment files holding operations in FIFO order; thread-safe."""

    def __init__(self, directory: Path, *, segment_bytes: int = 32 * 1024 * 1024) -> None:
        """Bind to ``directory``; nothing is touched until :meth:`open`."""
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._open = False
        self._segments: list[_Segment] = []
        self._tail: _Segment | None = None  # the segment behind self._fd, always the last
        self._fd: int | None = None
        self._unsynced: list[Path] = []  # rolled segments not yet fsynced
        self._dir_dirty = False
        self._count = self._bytes = self._max_seq = self._since_checkpoint = 0
        self._next_tail = TAIL_BASE

    def open(self) -> None:
        """Create the directory (0700) if needed, scan the segments, repair damage."""
        with self._lock:
            if self._open:
                raise RuntimeError("spool is already open")
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # umask only narrows
            self._reset()
            saved = self._load_state()
            for stray in self.directory.glob(".seg-*.tmp"):  # a prepend cut short: keep bytes
                self._quarantine(stray, "interrupted prepend", None)
            for path in sorted(self.directory.glob("seg-*.spool")):
                if match := _NAME.fullmatch(path.name):
                    self._next_tail = max(self._next_tail, int(match.group(1)) + 1)
                    self._scan(path, int(match.group(1)), saved.get(path.name))
            self._write_state()  # forgets offsets of segments that are gone
            self._open = True

    def _scan(self, path: Path, number: int, saved: list[Any] | None) -> None:
        """Walk one segment's frames (CRC checked, not decoded); keep, repair or quarantine."""
        size = path.stat().st_size
        if size < _HEADER.size:  # created, header never completed: holds no operation
            log.warning("spool_tail_truncated", file=path.name, offset=0, bytes_dropped=size)
            path.unlink()
            return
        frames = skipped = 0
        bad = False
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            magic, nonce = _HEADER.unpack_from(mm, 0)
            want = saved[1] if saved and saved[0] == nonce.hex() else None
            off = start = _HEADER.size
            with memoryview(mm) as view:
                while magic == MAGIC and off + _FRAME.size <= size:
                    length, crc, seq = _FRAME.unpack_from(mm, off)
                    end = off + _FRAME.size + length
                    if end > size:
                        break
                    if off == want:
                        start, skipped = off, frames
                    # Past a bad frame the walk goes on only to count what is lost.
                    if _crc(length, seq, view[off + _FRAME.size : end]) == crc:
                        self._max_seq = max(self._max_seq, seq)
                    else:
                        bad = True
                    frames, off = frames + 1, end
            start, skipped = (off, frames) if off == want else (start, skipped)
            torn = mm[off:] if magic == MAGIC and not bad else b""
        if magic != MAGIC or bad:
            lost = frames - skipped if magic == MAGIC else None
            self._quarantine(path, "bad magic" if lost is None else "crc mismatch", lost)
            return
        if torn:
            (self._corrupt_dir() / f"{path.name}.torn-{off}").write_bytes(torn)
            os.truncate(path, off)
            log.warning("spool_tail_truncated", file=path.name, offset=off, bytes_dropped=len(torn))
        if frames == skipped:  # fully read before a crash, not yet deleted
            path.unlink()
            return
        self._segments.append(_Segment(number, path, nonce, off, start, frames - skipped))
        self._count += frames - skipped
        self._bytes += off - start

    def _corrupt_dir(self) -> Path:
        (target := self.directory / "corrupt").mkdir(mode=0o700, exist_ok=True)
        return target

    def _quarantine(self, path: Path, reason: str, frames_lost: int | None) -> None:
        target = self._corrupt_dir() / path.name.lstrip(".")
        if target.exists():
            target = target.with_name(f"{target.name}.{time.time_ns()}")
        os.replace(path, target)
        self._dir_dirty = True
        log.error("spool_segment_corrupt", file=path.name, frames_lost=frames_lost, reason=reason)

    def append(self, ops: Sequence[Operation]) -> None:
        """Add ``ops`` at the tail; handed to the OS before returning (fsync is :meth:`sync`)."""
        encoded = [(op.seq, op.to_bytes()) for op in ops]  # the slow part: outside the lock
        with self._lock:
            self._check_open()
            parts: list[bytes] = []
            pending = 0
            for seq, payload in encoded:
                used = self._tail.size + pending if self._tail else 0
                if self._tail is None or (used > _HEADER.size and used >= self.segment_bytes):
                    self._flush(parts, pending)
                    parts, pending = [], 0
                    self._roll()
                parts.append(_frame(seq, payload))
                pending += len(parts[-1])
                self._max_seq = max(self._max_seq, seq)
            self._flush(parts, pending)

    def _roll(self) -> None:
        """Start a new tail segment; its header goes out with its first frames."""
        if self._fd is not None and self._tail is not None:
            os.close(self._fd)  # sync() fsyncs it by path later, off the event loop
            self._unsynced.append(self._tail.path)
        number, self._next_tail = self._next_tail, self._next_tail + 1
        path = self.directory / f"seg-{number:020d}.spool"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._tail = _Segment(number, path, os.urandom(8), 0, 0, 0)
        self._segments.append(self._tail)
        self._dir_dirty = True

    def _flush(self, parts: list[bytes], pending: int) -> None:
        if not parts:
            return
        assert self._fd is not None and self._tail is not None
        head = b"" if self._tail.size else _HEADER.pack(MAGIC, self._tail.nonce)
        try:
            _write_all(self._fd, b"".join([head, *parts]))
        except OSError:
            # Disk full or I/O error: cut the half-written frame so later appends stay readable.
            os.ftruncate(self._fd, self._tail.size)
            raise
        self._tail.size += len(head) + pending
        self._tail.offset = self._tail.offset or _HEADER.size
        self._tail.frames += len(parts)
        self._count += len(parts)
        self._bytes += pending

    def prepend(self, ops: Sequence[Operation]) -> None:
        """Store ``ops`` as a new head segment, read before everything else; fsynced."""
        encoded = [(op.seq, op.to_bytes()) for op in ops]
        with self._lock:
            self._check_open()
            if not encoded:
                return
            # One segment, whatever its size: the caller's in-memory backlog is bounded.
            number = min((s.number for s in self._segments), default=self._next_tail) - 1
            path, nonce = self.directory / f"seg-{number:020d}.spool", os.urandom(8)
            data = b"".join([_HEADER.pack(MAGIC, nonce), *(_frame(*e) for e in encoded)])
            _replace(path, data, fsync=True)  # renamed into place: a head is never torn
            head = _Segment(number, path, nonce, len(data), _HEADER.size, len(encoded))
            self._segments.insert(0, head)
            self._count += len(encoded)
            self._bytes += len(data) - _HEADER.size
            self._max_seq = max(self._max_seq, *(seq for seq, _ in encoded))
            self._dir_dirty = True

    def read(self, max_ops: int) -> list[Operation]:
        """Remove and return up to ``max_ops`` operations from the head, oldest first."""
        with self._lock:
            self._check_open()
            raw = self._pop(max_ops)
        ops: list[Operation] = []
        for seq, payload in raw:  # decoding is slow: outside the lock
            try:
                ops.append(Operation.from_bytes(payload))
            except SpoolCorrupt as exc:  # the CRC matched: keep the bytes for a human
                log.error("spool_frame_undecodable", seq=seq, error=str(exc), cbor=payload.hex())
        return ops

    def _pop(self, max_ops: int) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        while len(out) < max_ops and self._segments:
            seg = self._segments[0]
            # Opened per call (cheap next to decoding), so no reader outlives a segment.
            with seg.path.open("rb", buffering=1 << 18) as reader:
                reader.seek(seg.offset)
                while len(out) < max_ops and seg.frames:
                    head = reader.read(_FRAME.size)
                    length, crc, seq = _FRAME.unpack(head) if len(head) == 16 else (0, 1, 0)
                    payload = reader.read(length)
                    if _crc(length, seq, payload) != crc or len(payload) != length:
                        break  # damaged after open() checked it: quarantined below
                    out.append((seq, payload))
                    seg.offset += _FRAME.size + length
                    seg.frames -= 1
                    self._count -= 1
                    self._bytes -= _FRAME.size + length
            if seg.frames == 0 or len(out) < max_ops:  # fully read, or damaged
                self._drop(seg, corrupt=seg.frames > 0)
        self._since_checkpoint += len(out)
        if self._since_checkpoint >= CHECKPOINT_EVERY:
            self._write_state()
        return out

    def _drop(self, seg: _Segment, *, corrupt: bool) -> None:
        """Forget ``seg``: delete it when fully read, quarantine it when damaged."""
        if self._tail is seg and self._fd is not None:
            os.close(self._fd)
            self._fd = self._tail = None
        self._segments.remove(seg)
        self._count -= seg.frames
        self._bytes -= seg.size - seg.offset
        self._dir_dirty = True
        if corrupt:
            self._quarantine(seg.path, "crc mismatch", seg.frames)
        else:
            seg.path.unlink(missing_ok=True)

    def _load_state(self) -> dict[str, list[Any]]:
        try:
            state = json.loads((self.directory / _STATE).read_text())
            self._max_seq = int(state["max_seq"])
            items = state["offsets"].items()
            return {str(k): v for k, v in items if isinstance(v, list) and len(v) == 2}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Costs only re-delivery of partly read segments: not worth refusing to start.
            log.warning("spool_state_ignored", error=f"{type(exc).__name__}: {exc}")
            return {}

    def _write_state(self, *, fsync: bool = False) -> None:
        segs = self._segments
        offsets = {s.path.name: [s.nonce.hex(), s.offset] for s in segs if s.offset > _HEADER.size}
        state = {"v": 1, "max_seq": self._max_seq, "offsets": offsets}
        _replace(self.directory / _STATE, json.dumps(state).encode(), fsync=fsync)
        self._since_checkpoint = 0

    def sync(self) -> None:
        """Fsync the tail, rolled segments and the directory; meant for a worker thread."""
        with self._lock:
            if not self._open:
                return
            self._write_state()
            paths = self._unsynced + ([self._tail.path] if self._tail else [])
            paths += [self.directory] if self._dir_dirty else []
            self._unsynced, self._dir_dirty = [], False
        for path in paths:  # outside the lock: appends must not wait on the disk
            _fsync(path)

    def close(self) -> None:
        """Fsync everything, save the read position and release all files; idempotent."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            if self._fd is not None:
                os.close(self._fd)
            try:
                self._write_state(fsync=True)
                for path in [*self._unsynced, *([self._tail.path] if self._tail else [])]:
                    _fsync(path)
                _fsync(self.directory)
            finally:
                self._reset()

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("spool is not open")

    def __len__(self) -> int:
        """Operations in the spool, not yet read (an int read is atomic: no lock)."""
        return self._count

    @property
    def max_seq(self) -> int:
        """Largest :attr:`Operation.seq` ever appended or found on disk (0 if none)."""
        return self._max_seq

    # Last in the class: from here on, in the class body, ``bytes`` is this property.
    @property
    def bytes(self) -> int:
        """Bytes on disk of frames not yet read (segment headers excluded)."""
        return self._bytes
