"""The spool: every operation the queue holds, on disk, in order, until it is finished.

One append-only log: segment files (format in :mod:`syncd.pipeline.segments`)
read in lexical order, the order they were written. :meth:`Spool.append` hands
frames to the OS with one ``write()`` per segment it touches, so a process
killed right after loses nothing (only power loss needs the fsync that
:meth:`Spool.sync` does, off the caller's thread). The first ``deliver``
operations of an append count as read already: the queue keeps them in memory
too, and reads back from disk only what memory had no room for.

Reading and confirming are separate, so an operation leaves the disk only once
the consumer is done with it. :meth:`Spool.read` moves an in-memory cursor;
:meth:`Spool.confirm` (everything up to a seq was applied or dead-lettered)
advances a segment's confirmed offset, up to its first read frame above that
seq, and deletes a segment confirmed to its end. ``head.json`` keeps those
offsets (with each segment's nonce: a reused name never inherits a stale one)
and ``max_seq``; it is replaced every 1024 confirmed frames and on sync/close.
:meth:`Spool.open` delivers everything after it again, read or not, in order
(at-least-once: operations are idempotent upserts).

The spool alone counts what it holds: unread operations (``len``), read and
unconfirmed ones, their bytes, and the oldest unread one's seq and time
(:attr:`Spool.head`). ``max_bytes`` bounds it: an append that would pass it
raises :class:`SpoolFull` (an ``OSError`` like a full disk), all or nothing.
Damage is logged, counted (``on_lost``, :attr:`Spool.lost`) and never fatal,
and costs only the frames it overlaps (see :mod:`syncd.pipeline.recovery`); the
queue has what they held delivered by other means. ``head.json`` names every
segment, so a segment that disappears is found too; it is rewritten whenever a
segment is started or deleted (once per ``segment_bytes``), and a failure to
write it (a full disk) is logged and costs only that check and re-delivery.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from syncd.errors import SpoolCorrupt
from syncd.files import fsync_path, write_all
from syncd.pipeline.recovery import TAIL_BASE, recover, report_lost, save_state
from syncd.pipeline.segments import (
    FRAME,
    HEADER,
    MAGIC,
    Damage,
    Segment,
    first_frame,
    frame,
    walk,
)
from syncd.sink.operation import Operation

log = structlog.get_logger(__name__)

CHECKPOINT_EVERY = 1024
_READ_SLICE = 256


class SpoolFull(OSError):
    """The spool holds ``max_bytes`` already: the append was refused whole."""

    def __init__(self, held: int, limit: int) -> None:
        """Name the bound that was reached."""
        super().__init__(errno.ENOSPC, f"spool_max_bytes reached ({held} of {limit} bytes held)")


class Spool:
    """A directory of segment files holding operations in FIFO order; thread-safe."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 32 * 1024 * 1024,
        max_bytes: int = 0,
        on_lost: Callable[[int], None] | None = None,
    ) -> None:
        """Bind to ``directory``; nothing is touched until :meth:`open`.

        ``max_bytes``: bound on the bytes held (0: none). ``on_lost``: called
        with the number of frames found damaged (a metric's ``inc``).
        """
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self._on_lost = on_lost
        #: Frames reported lost since this object was made (damage, missing segments).
        self.lost = 0
        self._state_failed = False
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._open = False
        self._segments: list[Segment] = []  # in read order
        self._tail: Segment | None = None  # the segment behind self._fd, always the last
        self._fd: int | None = None
        self._unsynced: list[Path] = []  # rolled segments not yet fsynced
        self._dir_dirty = self._dirty = False
        self._count = self._unconfirmed = self._bytes = 0
        self._max_seq = self._since_checkpoint = 0
        self._head: tuple[int, float] | None = None
        self._next_tail = TAIL_BASE

    def open(self) -> None:
        """Create the directory (0700) if needed, scan the segments, repair damage."""
        with self._lock:
            if self._open:
                raise RuntimeError("spool is already open")
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # umask only narrows
            self._reset()
            found = recover(self.directory, self._count_lost)
            self._segments, self._max_seq, self._next_tail = found
            self._count = sum(seg.frames for seg in self._segments)
            self._bytes = sum(seg.size - seg.offset for seg in self._segments)
            self._head = self._peek()
            self._write_state()  # forgets offsets of segments that are gone
            self._open = True

    def append(self, ops: Sequence[Operation], *, deliver: int = 0) -> None:
        """Add ``ops`` at the tail; handed to the OS before returning (fsync is :meth:`sync`).

        The first ``deliver`` of them count as read (the caller holds them in
        memory); that needs every earlier operation read already. All or
        nothing: on an ``OSError`` (disk full, :class:`SpoolFull`) nothing of
        ``ops`` stays, so the caller can retry without writing any twice.
        """
        frames = [frame(op.seq, op.enqueued_at, op.to_bytes()) for op in ops]  # outside the lock
        with self._lock:
            self._check_open()
            if deliver and self._count:
                raise RuntimeError("cannot deliver past unread operations")
            held, limit = self._bytes, self.max_bytes
            if limit and held and held + sum(len(f) for f in frames) > limit:
                raise SpoolFull(held, limit)
            tail, segments, counts = self._tail, len(self._segments), (self._count, self._bytes)
            state = (tail.size, tail.frames, tail.offset, len(tail.read_seqs)) if tail else None
            try:
                self._append(ops, frames, deliver)
            except OSError:
                self._undo_append(segments, tail, state)
                self._count, self._bytes = counts
                raise
            self._dirty = True
            for op in ops:
                if op.seq > self._max_seq:
                    self._max_seq = op.seq
            if self._head is None and deliver < len(ops):
                self._head = (ops[deliver].seq, ops[deliver].enqueued_at)

    def _append(self, ops: Sequence[Operation], frames: list[bytes], deliver: int) -> None:
        start = 0
        while start < len(frames):
            if self._tail is None or self._tail.size >= self.segment_bytes:
                self._roll()
            assert self._tail is not None and self._fd is not None
            tail = self._tail
            # Fill this segment up to its size (at least one frame), in one write.
            stop, room = start, self.segment_bytes - max(tail.size, HEADER.size)
            while stop < len(frames) and (stop == start or room >= len(frames[stop])):
                room -= len(frames[stop])
                stop += 1
            head = b"" if tail.size else HEADER.pack(MAGIC, tail.nonce)
            # On an error (disk full), append() cuts the half-written frame off again.
            write_all(self._fd, b"".join([head, *frames[start:stop]]))
            offset = tail.size = tail.size or HEADER.size
            tail.confirmed = tail.confirmed or HEADER.size
            tail.offset = tail.offset or HEADER.size
            for index in range(start, stop):
                offset += len(frames[index])
                if index < deliver:
                    tail.frames += 1  # mark_read takes it off again
                    tail.mark_read(ops[index].seq, offset)
                    self._unconfirmed += 1
                else:
                    tail.frames += 1
                    self._count += 1
            self._bytes += offset - tail.size
            tail.size = offset
            start = stop

    def _undo_append(
        self, segments: int, tail: Segment | None, state: tuple[int, int, int, int] | None
    ) -> None:
        """Cut what a failed append wrote: segments it rolled, frames it added to ``tail``."""
        for seg in self._segments[segments:]:
            self._unconfirmed -= len(seg.read_seqs)
            if seg is self._tail and self._fd is not None:
                os.close(self._fd)
                self._fd = None
            seg.path.unlink(missing_ok=True)
        if removed := self._segments[segments:]:
            del self._segments[segments:]
            self._next_tail = removed[0].number  # numbers stay contiguous
            self._write_state()
        if tail is not None and state is not None:
            size, frames, offset, read = state
            if tail is self._tail and self._fd is not None:
                os.ftruncate(self._fd, size)
            else:  # its descriptor was closed by a roll
                os.truncate(tail.path, size)
            self._unconfirmed -= len(tail.read_seqs) - read
            del tail.read_seqs[read:]
            del tail.read_ends[read:]
            tail.size, tail.frames, tail.offset = size, frames, offset
        if self._fd is None:  # the next append rolls a fresh tail
            self._tail = None

    def _roll(self) -> None:
        """Start a new tail segment; its header goes out with its first frames."""
        if self._fd is not None and self._tail is not None:
            os.close(self._fd)  # sync() fsyncs it by path later, off the caller's thread
            self._unsynced.append(self._tail.path)
            self._fd = None
        number, self._next_tail = self._next_tail, self._next_tail + 1
        path = self.directory / f"seg-{number:020d}.spool"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._tail = Segment(number, path, os.urandom(8), 0, 0, 0, 0)
        self._segments.append(self._tail)
        self._dir_dirty = True
        self._write_state()  # names it: should it go missing, that is noticed

    def read(self, max_ops: int) -> list[Operation]:
        """Return up to ``max_ops`` unread operations, oldest first.

        They stay on disk, and come again after a restart, until :meth:`confirm`.
        """
        raw: list[tuple[int, bytes]] = []
        while len(raw) < max_ops:
            # In slices: an append (the application's write) waits at most one.
            with self._lock:
                self._check_open()
                got = self._pop(min(_READ_SLICE, max_ops - len(raw)))
                self._head = self._peek()
            raw.extend(got)
            if not got:
                break
        ops: list[Operation] = []
        for seq, payload in raw:  # decoding is slow: outside the lock
            try:
                ops.append(Operation.from_bytes(payload))
            except SpoolCorrupt as exc:  # the CRC matched; its bytes are contents: not logged
                log.error("spool_frame_undecodable", seq=seq, error=str(exc), bytes=len(payload))
        return ops

    def _pop(self, max_ops: int) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        for seg in [s for s in self._segments if s.frames]:
            if len(out) >= max_ops:
                break
            # Opened per call (cheap next to decoding), so no reader outlives a segment.
            with (
                seg.path.open("r+b") as f,
                mmap.mmap(f.fileno(), seg.size, access=mmap.ACCESS_READ) as mm,
            ):
                for item in walk(mm, seg.offset, seg.size):
                    if isinstance(item, Damage):  # damaged after open() checked it
                        self._lost_reading(seg, f.fileno(), mm, item)
                        continue
                    if item.seq:
                        out.append((item.seq, mm[item.start + FRAME.size : item.end]))
                        seg.mark_read(item.seq, item.end)
                        self._count -= 1
                        self._unconfirmed += 1
                    else:
                        seg.offset = item.end
                    if len(out) >= max_ops or not seg.frames:
                        break
                if seg.frames and len(out) < max_ops:  # no valid frame left: the rest is lost
                    self._lost_reading(seg, f.fileno(), mm, Damage(seg.offset, seg.size))
        return out

    def _lost_reading(self, seg: Segment, fd: int, mm: mmap.mmap, region: Damage) -> None:
        """Damage met while reading: the frames counted at open minus those still valid."""
        after = walk(mm, region.end, seg.size)
        remaining = sum(1 for item in after if not isinstance(item, Damage) and item.seq)
        lost = seg.frames - remaining
        report_lost(seg.path, fd, mm[region.start : region.end], region, lost, self._count_lost)
        seg.frames = remaining
        self._count -= lost

    def _count_lost(self, frames: int) -> None:
        self.lost += frames
        if self._on_lost is not None:
            self._on_lost(frames)

    def _peek(self) -> tuple[int, float] | None:
        """The oldest unread frame's (seq, enqueued_at)."""
        seg = next((s for s in self._segments if s.frames), None)
        return None if seg is None else first_frame(seg.path, seg.offset, seg.size)

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
                    self._drop(seg)
            self._unconfirmed -= released
            self._since_checkpoint += released
            self._dirty = self._dirty or bool(released)
            if self._since_checkpoint >= CHECKPOINT_EVERY:
                self._write_state()

    def _drop(self, seg: Segment) -> None:
        """Forget ``seg``, read and confirmed to its end, and delete its file."""
        if self._tail is seg and self._fd is not None:
            os.close(self._fd)
            self._fd = self._tail = None
        self._segments.remove(seg)
        self._bytes -= seg.size - seg.confirmed
        self._dir_dirty = True
        self._write_state()  # first: a segment it still names would count as lost
        seg.path.unlink(missing_ok=True)

    def _write_state(self, *, fsync: bool = False) -> None:
        try:
            save_state(self.directory, self._segments, self._max_seq, fsync=fsync)
        except OSError as exc:
            # A full disk: the offsets and names in head.json are late, which
            # costs re-delivery (harmless) and, after a crash, maybe a needless
            # re-copy; refusing appends or confirms for it would cost far more.
            if not self._state_failed:
                log.warning("spool_state_write_failed", error=str(exc))
            self._state_failed = self._dirty = True
            return
        if self._state_failed:
            log.info("spool_state_written_again")
        self._state_failed = False
        self._since_checkpoint = 0

    def sync(self) -> None:
        """Fsync what changed since the last call; meant for a worker thread."""
        with self._lock:
            if not self._open or not (self._dirty or self._dir_dirty or self._unsynced):
                return
            self._dirty = False
            self._write_state()  # a failure marks it dirty again
            paths = self._unsynced + ([self._tail.path] if self._tail else [])
            paths += [self.directory] if self._dir_dirty else []
            self._unsynced, self._dir_dirty = [], False
        for path in paths:  # outside the lock: appends must not wait on the disk
            fsync_path(path, missing_ok=True)  # confirmed and deleted meanwhile: fine

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
                    fsync_path(path, missing_ok=True)
                fsync_path(self.directory, missing_ok=True)
            finally:
                self._reset()

    def has_room(self) -> bool:
        """Whether appends would likely succeed again: the bound is 10% away, and the
        disk has 16 MiB free (a margin, so a put that fails does not flap the state)."""
        if self.max_bytes and self._bytes > self.max_bytes * 0.9:
            return False
        try:
            st = os.statvfs(self.directory)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize >= 16 << 20

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("spool is not open")

    def __len__(self) -> int:
        """Operations in the spool not yet read (an int read is atomic: no lock)."""
        return self._count

    @property
    def unconfirmed(self) -> int:
        """Operations read (or delivered) but not yet confirmed: delivered again on restart."""
        return self._unconfirmed

    @property
    def head(self) -> tuple[int, float] | None:
        """``(seq, enqueued_at)`` of the oldest unread operation; ``None`` when all are read."""
        return self._head

    @property
    def max_seq(self) -> int:
        """Largest :attr:`Operation.seq` ever appended or found on disk (0 if none)."""
        return self._max_seq

    # Last in the class: from here on, in the class body, ``bytes`` is this property.
    @property
    def bytes(self) -> int:
        """Bytes on disk of frames not yet confirmed, read or not (headers excluded)."""
        return self._bytes
