"""Durable FIFO overflow of operations: the spool.

Segment files (format in :mod:`syncd.pipeline.segments`) are read in lexical
order: tails count up from 10**12, :meth:`Spool.prepend` heads count down, so
in-memory operations saved at shutdown (older than the spool's content) come first.

Reading and confirming are separate, so an operation leaves the disk only once
the consumer is done with it. :meth:`Spool.read` moves an in-memory cursor;
:meth:`Spool.confirm` (everything read up to a seq was applied or
dead-lettered) advances a segment's confirmed offset, and deletes a segment
read and confirmed to its end. ``head.json`` maps each partly confirmed
segment (name and nonce, so a reused name never inherits a stale offset) to
that offset, and keeps ``max_seq`` once the spool drains. It is replaced
atomically every 1024 confirmed frames and on sync/close; :meth:`Spool.open`
delivers everything after it again, read or not (at-least-once: operations are
idempotent upserts).

Ordering. A segment has one offset, so confirming ``n`` advances it over the
leading read frames with seq <= n and stops at the first above: safe whatever
the order, and prompt because seqs rise in read order. The queue numbers
operations as they are put, spools them in that order (a failed append is
undone whole, so its retry writes no seq twice) and reads them back in that
order. Only a head written by :meth:`Spool.prepend` goes back down, and it is
older than everything unread: at shutdown the queue saves there every
operation pending in memory (never spooled, or read and unfinished), then
confirms all it has read. Segments are confirmed each on its own, so that
releases the read frames behind the still unread head, and the next start
reads the head (sorted), then the unread rest: one FIFO, no seq twice. Only a
crash between that prepend and ``head.json`` recording the confirm delivers
the head's operations again from their old segment as well (same seqs).

An append is one ``write()`` per segment it touches (a killed process loses
nothing); fsync waits for :meth:`Spool.sync`, outside the lock. Damage is
logged, never fatal: a torn tail is truncated (cut bytes kept in
``corrupt/``), a segment failing its CRC is moved to ``corrupt/``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from syncd.errors import SpoolCorrupt
from syncd.pipeline.segments import (
    FRAME,
    HEADER,
    MAGIC,
    NAME,
    Segment,
    crc,
    frame,
    fsync_path,
    replace,
    scan,
    write_all,
)
from syncd.sink.operation import Operation

log = structlog.get_logger(__name__)

TAIL_BASE = 10**12
CHECKPOINT_EVERY = 1024
_STATE = "head.json"


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
        self._segments: list[Segment] = []  # in read order
        self._tail: Segment | None = None  # the segment behind self._fd, always the last
        self._fd: int | None = None
        self._unsynced: list[Path] = []  # rolled segments not yet fsynced
        self._dir_dirty = False
        self._count = self._unconfirmed = self._bytes = 0
        self._max_seq = self._since_checkpoint = 0
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
                if match := NAME.fullmatch(path.name):
                    self._next_tail = max(self._next_tail, int(match.group(1)) + 1)
                    self._scan(path, int(match.group(1)), saved.get(path.name))
            self._write_state()  # forgets offsets of segments that are gone
            self._open = True

    def _scan(self, path: Path, number: int, saved: list[Any] | None) -> None:
        """Check one segment at open; keep, repair or quarantine it."""
        size = path.stat().st_size
        if size < HEADER.size:  # created, header never completed: holds no operation
            log.warning("spool_tail_truncated", file=path.name, offset=0, bytes_dropped=size)
            path.unlink()
            return
        found = scan(path, saved)
        self._max_seq = max(self._max_seq, found.max_seq)
        if found.damage:
            lost = None if found.damage == "bad magic" else found.frames - found.skipped
            self._quarantine(path, found.damage, lost)
            return
        if found.torn:
            (self._corrupt_dir() / f"{path.name}.torn-{found.end}").write_bytes(found.torn)
            os.truncate(path, found.end)
            log.warning(
                "spool_tail_truncated",
                file=path.name,
                offset=found.end,
                bytes_dropped=len(found.torn),
            )
        left = found.frames - found.skipped
        if not left:  # confirmed to the end before a crash, not yet deleted
            path.unlink()
            return
        start = found.start
        self._segments.append(Segment(number, path, found.nonce, found.end, start, left, start))
        self._count += left
        self._bytes += found.end - start

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
        """Add ``ops`` at the tail; handed to the OS before returning (fsync is :meth:`sync`).

        All or nothing: on an ``OSError`` (disk full) nothing of ``ops`` stays,
        so the caller can retry without writing any operation twice.
        """
        encoded = [(op.seq, op.to_bytes()) for op in ops]  # the slow part: outside the lock
        with self._lock:
            self._check_open()
            tail, segments, counts = self._tail, len(self._segments), (self._count, self._bytes)
            size, frames = (tail.size, tail.frames) if tail else (0, 0)
            try:
                self._append(encoded)
            except OSError:
                self._undo_append(segments, tail, size, frames)
                self._count, self._bytes = counts
                raise

    def _append(self, encoded: list[tuple[int, bytes]]) -> None:
        parts: list[bytes] = []
        pending = 0
        for seq, payload in encoded:
            used = self._tail.size + pending if self._tail else 0
            if self._tail is None or (used > HEADER.size and used >= self.segment_bytes):
                self._flush(parts, pending)
                parts, pending = [], 0
                self._roll()
            parts.append(frame(seq, payload))
            pending += len(parts[-1])
            self._max_seq = max(self._max_seq, seq)
        self._flush(parts, pending)

    def _undo_append(self, segments: int, tail: Segment | None, size: int, frames: int) -> None:
        """Cut what a failed append wrote: segments it rolled, frames it added to ``tail``."""
        for seg in self._segments[segments:]:
            if seg is self._tail and self._fd is not None:
                os.close(self._fd)
                self._fd = None
            seg.path.unlink(missing_ok=True)
        del self._segments[segments:]
        if tail is not None:
            if tail is self._tail and self._fd is not None:
                os.ftruncate(self._fd, size)
            else:  # its descriptor was closed by a roll
                os.truncate(tail.path, size)
            tail.size, tail.frames = size, frames
        if self._fd is None:  # the next append rolls a fresh tail
            self._tail = None

    def _roll(self) -> None:
        """Start a new tail segment; its header goes out with its first frames."""
        if self._fd is not None and self._tail is not None:
            os.close(self._fd)  # sync() fsyncs it by path later, off the event loop
            self._unsynced.append(self._tail.path)
            self._fd = None
        number, self._next_tail = self._next_tail, self._next_tail + 1
        path = self.directory / f"seg-{number:020d}.spool"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._tail = Segment(number, path, os.urandom(8), 0, 0, 0, 0)
        self._segments.append(self._tail)
        self._dir_dirty = True

    def _flush(self, parts: list[bytes], pending: int) -> None:
        if not parts:
            return
        assert self._fd is not None and self._tail is not None
        head = b"" if self._tail.size else HEADER.pack(MAGIC, self._tail.nonce)
        # On an error (disk full), append() cuts the half-written frame off again.
        write_all(self._fd, b"".join([head, *parts]))
        self._tail.size += len(head) + pending
        self._tail.offset = self._tail.offset or HEADER.size
        self._tail.confirmed = self._tail.confirmed or HEADER.size
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
            data = b"".join([HEADER.pack(MAGIC, nonce), *(frame(*e) for e in encoded)])
            replace(path, data, fsync=True)  # renamed into place: a head is never torn
            head = Segment(number, path, nonce, len(data), HEADER.size, len(encoded), HEADER.size)
            self._segments.insert(0, head)
            self._count += len(encoded)
            self._bytes += len(data) - HEADER.size
            self._max_seq = max(self._max_seq, *(seq for seq, _ in encoded))
            self._dir_dirty = True

    def read(self, max_ops: int) -> list[Operation]:
        """Return up to ``max_ops`` unread operations, oldest first.

        They stay on disk, and come again after a restart, until :meth:`confirm`.
        """
        with self._lock:
            self._check_open()
            raw = self._pop(max_ops)
        ops: list[Operation] = []
        for seq, payload in raw:  # decoding is slow: outside the lock
            try:
                ops.append(Operation.from_bytes(payload))
            except SpoolCorrupt as exc:  # the CRC matched; its bytes are contents: not logged
                log.error("spool_frame_undecodable", seq=seq, error=str(exc), bytes=len(payload))
        return ops

    def _pop(self, max_ops: int) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        # Read but unconfirmed segments stay in front: skipped, not reread.
        for seg in [s for s in self._segments if s.frames]:
            if len(out) >= max_ops:
                break
            # Opened per call (cheap next to decoding), so no reader outlives a segment.
            with seg.path.open("rb", buffering=1 << 18) as reader:
                reader.seek(seg.offset)
                while len(out) < max_ops and seg.frames:
                    head = reader.read(FRAME.size)
                    length, checksum, seq = FRAME.unpack(head) if len(head) == 16 else (0, 1, 0)
                    payload = reader.read(length)
                    if crc(length, seq, payload) != checksum or len(payload) != length:
                        break  # damaged after open() checked it: quarantined below
                    out.append((seq, payload))
                    seg.mark_read(seq, length)
                    self._count -= 1
                    self._unconfirmed += 1
            if seg.frames and len(out) < max_ops:
                # Its read frames go too: on disk they would fail the CRC check at open anyway.
                self._drop(seg, corrupt=True)
        return out

    def confirm(self, through_seq: int) -> None:
        """Release every read operation with ``seq <= through_seq``: applied or dead-lettered.

        Advances each segment's confirmed offset up to its first read frame
        above ``through_seq`` and deletes segments read and confirmed to their
        end; unread operations are untouched whatever their seq. A no-op once
        closed, like :meth:`sync`.
        """
        with self._lock:
            if not self._open:
                return
            released = 0
            for seg in list(self._segments):
                before = seg.confirmed
                if count := seg.confirm(through_seq):
                    released += count
                    self._bytes -= seg.confirmed - before
                if seg.done:
                    self._drop(seg, corrupt=False)
            self._unconfirmed -= released
            self._since_checkpoint += released
            if self._since_checkpoint >= CHECKPOINT_EVERY:
                self._write_state()

    def _drop(self, seg: Segment, *, corrupt: bool) -> None:
        """Forget ``seg``: delete it when done, quarantine it when damaged."""
        if self._tail is seg and self._fd is not None:
            os.close(self._fd)
            self._fd = self._tail = None
        self._segments.remove(seg)
        self._count -= seg.frames
        self._unconfirmed -= len(seg.read_seqs)
        self._bytes -= seg.size - seg.confirmed
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
            # Costs only re-delivery of partly confirmed segments: not worth refusing to start.
            log.warning("spool_state_ignored", error=f"{type(exc).__name__}: {exc}")
            return {}

    def _write_state(self, *, fsync: bool = False) -> None:
        segs = self._segments
        offsets = {
            s.path.name: [s.nonce.hex(), s.confirmed] for s in segs if s.confirmed > HEADER.size
        }
        state = {"v": 1, "max_seq": self._max_seq, "offsets": offsets}
        replace(self.directory / _STATE, json.dumps(state).encode(), fsync=fsync)
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
            fsync_path(path)

    def close(self) -> None:
        """Fsync everything, save the confirmed offsets and release all files; idempotent."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            if self._fd is not None:
                os.close(self._fd)
            try:
                self._write_state(fsync=True)
                for path in [*self._unsynced, *([self._tail.path] if self._tail else [])]:
                    fsync_path(path)
                fsync_path(self.directory)
            finally:
                self._reset()

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("spool is not open")

    def __len__(self) -> int:
        """Operations in the spool not yet read (an int read is atomic: no lock)."""
        return self._count

    @property
    def unconfirmed(self) -> int:
        """Operations read but not yet confirmed: on disk still, delivered again on restart."""
        return self._unconfirmed

    @property
    def max_seq(self) -> int:
        """Largest :attr:`Operation.seq` ever appended or found on disk (0 if none)."""
        return self._max_seq

    # Last in the class: from here on, in the class body, ``bytes`` is this property.
    @property
    def bytes(self) -> int:
        """Bytes on disk of frames not yet confirmed, read or not (headers excluded)."""
        return self._bytes
