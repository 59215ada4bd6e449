"""The sync queue: every operation on disk first, a bounded window of them in memory.

Rules this module keeps:

- ``put`` never waits for the secondary and never raises into the application:
  before it returns, the operations are encoded once and handed to the OS in
  the spool, one ``write()`` per call, no fsync (a killed process loses
  nothing; the run task fsyncs every ``fsync_interval``, in a worker thread).
- Memory holds a window of up to ``capacity`` operations, in lanes. While the
  spool holds nothing unread and memory has room, a put is delivered to memory
  as well (the spool counts it read); otherwise it stays unread on disk until
  the run task reads it back, in order, once memory has half emptied. So the
  operations of one record come out in the order they went in.
- An operation is *pending* from ``put`` until ``finish`` (applied,
  dead-lettered or superseded). The lowest pending seq is the flush watermark;
  the run task confirms everything below it to the spool, which trims its
  files. On start, what was not confirmed is delivered again, in order.
- The spool alone counts what it holds; the queue asks it.
- A disk that fails (full, ``spool_max_bytes`` reached, an I/O error) never
  fails a put. With a ledger (library): operations still go to memory while
  order allows and it has room, the rest are not kept, and either way their
  tables are recorded for a re-sync (a kill would lose what is only in
  memory). Without (daemon: its changefeed is its buffer): they wait in memory,
  in order, until the disk takes them, and :attr:`writable` is false meanwhile.
- Operations the spool reports lost (damaged frames, a missing or cut
  segment) are never known by table: with a ledger, every replicated table
  (``every_table``) is recorded for a re-sync. Without (daemon), the
  checkpoint never passed them: lost at open, they are read again from the
  feed by this start; lost while running, their positions never finish, so
  the checkpoint stays below them (:attr:`lost_until_restart` says so) and
  the next start reads them again.
- Operations that need no durability (a re-sync's copies: the ledger and the
  primary are their record) go to memory without the spool when order allows
  (:meth:`put_copies`), so a full disk does not stop the copy that repairs it.
"""

from __future__ import annotations

import errno
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio.abc import TaskStatus

from syncd.pipeline.watermark import Watermark
from syncd.pipeline.window import Window
from syncd.sink.operation import Operation

if TYPE_CHECKING:
    from syncd.metrics import Metrics
    from syncd.pipeline.recopy import RecopyLedger
    from syncd.pipeline.spool import Spool

log = structlog.get_logger("syncd.pipeline.queue")

_REFILL_CHUNK = 2000
_WRITE_CHUNK = 4096


class SyncQueue:
    """Lane-partitioned operation queue, written ahead to a durable spool."""

    def __init__(
        self,
        *,
        lanes: int,
        capacity: int,
        spool: Spool,
        metrics: Metrics | None = None,
        ledger: RecopyLedger | None = None,
        every_table: Sequence[str] = (),
        fsync_interval: float = 0.5,
    ) -> None:
        """``every_table``: what the ledger records when operations of unknown tables
        are lost (the replicated tables, or the ledger's word for all of them)."""
        self._window = Window(lanes)
        self._capacity = capacity
        self._spool = spool
        self._ledger = ledger
        self._every_table = list(every_table)
        self._lost_seen = 0
        #: Operations the spool lost while running, without a ledger (daemon):
        #: applied only once a restart reads them from the feed again.
        self.lost_until_restart = 0
        self._fsync_interval = fsync_interval
        self._metrics = metrics
        # Daemon only: operations the disk refused, newer than all it holds.
        self._unwritten: deque[Operation] = deque()
        # The spool's head while a refill read is in flight (read, not yet admitted).
        self._reading: tuple[int, float] | None = None
        self._disk_error: str | None = None
        self._disk_full = False  # the error is a lack of room (it may pass without a write)
        self._unkept = 0  # operations not kept since the disk failed (library)
        #: Called with every batch put, before it is written (a re-sync's watch).
        self.observers: list[Callable[[list[Operation]], None]] = []
        self._refill_wakeup = anyio.Event()
        self._finished = anyio.Event()
        self._next_seq = 1
        self._resumed_through = 0
        self._closed = False
        # Changefeed positions of unfinished operations (daemon): the
        # checkpoint may advance only below the lowest of them.
        self.positions = Watermark()
        if metrics is not None:
            # Read at scrape time: no gauge update on the application's write path.
            metrics.queue_depth.set_function(lambda: self.depth)
            metrics.spool_depth.set_function(lambda: len(self._spool))
            metrics.spool_bytes.set_function(lambda: self._spool.bytes)

    def open(self) -> None:
        """Open the spool and continue numbering after what it holds."""
        self._spool.open()
        self._next_seq = self._spool.max_seq + 1
        self._resumed_through = self._spool.max_seq
        if len(self._spool):
            log.info("spool_resumed", operations=len(self._spool))
        self._note_lost(at_open=True)

    def _note_lost(self, *, at_open: bool = False) -> None:
        """Have what the spool lost delivered again (see the module docstring)."""
        lost = self._spool.lost
        if lost <= self._lost_seen:
            return
        new, self._lost_seen = lost - self._lost_seen, lost
        if self._ledger is None:
            if at_open:
                log.warning("spool_loss_read_again_from_feed", frames=new)
            else:
                self.lost_until_restart += new
                log.error("spool_loss_needs_restart", frames=self.lost_until_restart)
            return
        for table in self._every_table:
            self._ledger.mark(table, 0)

    @property
    def lanes(self) -> int:
        """Number of lanes (one per worker)."""
        return self._window.lanes

    @property
    def depth(self) -> int:
        """Operations pending in memory (lanes and workers' hands)."""
        return self._window.depth

    @property
    def spooled(self) -> int:
        """Operations on disk not yet read back into memory."""
        return len(self._spool)

    @property
    def unwritten(self) -> int:
        """Operations waiting in memory for the disk to take them (daemon)."""
        return len(self._unwritten)

    @property
    def writable(self) -> bool:
        """Whether the spool takes writes (false from a failure until one succeeds)."""
        return self._disk_error is None and not self._unwritten

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest operation put so far."""
        return self._next_seq - 1

    # -- producer side ---------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`seal` (or :meth:`persist`) was called: no more puts."""
        return self._closed

    def seal(self) -> None:
        """Refuse further puts; called on the event loop before persisting."""
        self._closed = True

    def put(self, op: Operation) -> None:
        """Enqueue ``op``: on disk (and maybe in memory) before returning; never blocks."""
        self.put_many((op,))

    def put_many(self, ops: Iterable[Operation]) -> None:
        """Enqueue several operations in order, with one write to the spool."""
        if self._closed:
            raise RuntimeError("queue is closed")
        batch = list(ops)
        if not batch:
            return
        for op in batch:
            op.seq = self._next_seq
            self._next_seq += 1
            if op.position is not None:
                self.positions.add(op.position)
        if self._metrics is not None:
            for op in batch:
                self._metrics.count_enqueued(op.table, op.source)
        for observe in self.observers:
            observe(batch)
        batch = self._encodable(batch)
        if self._unwritten:  # older ones wait for the disk: stay behind them
            self._unwritten.extend(batch)
            return
        deliver = self._deliverable(len(batch))
        try:
            self._spool.append(batch, deliver=deliver)
        except OSError as exc:
            self._disk_failed(exc)
            self._not_written(batch)
            return
        self._disk_ok()
        for op in batch[:deliver]:
            self._admit(op)

    def put_copies(self, ops: Iterable[Operation]) -> None:
        """Enqueue operations that need not be durable (a re-sync's copies).

        To memory alone while nothing older waits on disk (memory may go past
        ``capacity`` by one copy's chunk); otherwise behind the rest, through
        the spool, like :meth:`put_many`.
        """
        batch = list(ops)
        if len(self._spool) or self._reading is not None or self._unwritten or self._closed:
            self.put_many(batch)
            return
        for op in batch:
            op.seq = self._next_seq
            self._next_seq += 1
        if self._metrics is not None:
            for op in batch:
                self._metrics.count_enqueued(op.table, op.source)
        for observe in self.observers:
            observe(batch)
        for op in batch:
            self._admit(op)

    def _encodable(self, batch: list[Operation]) -> list[Operation]:
        """The operations whose record encodes (encoded here, once, for the spool)."""
        good = []
        for op in batch:
            try:
                op.record_bytes()
            except Exception as exc:
                # Cannot be spooled, nor sent: the worker meets the same error and
                # dead-letters it. Order does not matter for what never applies.
                log.error("operation_unencodable", table=op.table, error=type(exc).__name__)
                self._admit(op)
                continue
            good.append(op)
        return good

    def _deliverable(self, count: int) -> int:
        """How many of ``count`` new operations may go to memory now, order kept."""
        if len(self._spool) or self._reading is not None:
            return 0  # older operations wait on disk: new ones queue behind them
        return max(0, min(count, self._capacity - self._window.queued))

    def _not_written(self, batch: list[Operation]) -> None:
        if self._ledger is None:
            self._unwritten.extend(batch)
            return
        for op in batch:
            if self._deliverable(1):
                self._admit(op)
            else:
                if not self._unkept:  # once per episode, not once per write
                    log.warning("operations_not_kept", table=op.table, resync=True)
                self._unkept += 1
            self._ledger.mark(op.table, op.seq)

    def _disk_failed(self, exc: OSError) -> None:
        full = exc.errno == errno.ENOSPC  # or the spool's own bound
        if self._disk_error is None:
            log.error(
                "spool_disk_full" if full else "spool_write_failed",
                error=str(exc),
                queue=self.depth,
                spool_bytes=self._spool.bytes,
            )
        self._disk_error, self._disk_full = str(exc), full

    def _disk_ok(self) -> None:
        if self._disk_error is not None:
            log.info("spool_writable_again", spool_bytes=self._spool.bytes, not_kept=self._unkept)
            self._disk_error, self._disk_full, self._unkept = None, False, 0

    def _admit(self, op: Operation) -> None:
        if op.seq <= self._resumed_through:
            # Left by an earlier run: its position is behind the saved
            # checkpoint already and is not tracked in this one.
            op.position = None
        self._window.admit(op)

    # -- consumer side ---------------------------------------------------

    async def take(self, lane: int, max_ops: int, linger: float, wait: float) -> list[Operation]:
        """Up to ``max_ops`` from ``lane`` (see :meth:`Window.take`), pending until finished."""
        batch = await self._window.take(lane, max_ops, linger, wait)
        if batch and len(self._spool):
            self._refill_wakeup.set()
        return batch

    def finish(self, lane: int, ops: Sequence[Operation]) -> None:
        """Mark ``ops`` (taken from ``lane``) applied, dead-lettered or superseded."""
        for op in self._window.finish(lane, ops):
            if op.position is not None:
                self.positions.finish(op.position)
        self._finished.set()

    # -- flush and lag ---------------------------------------------------

    def _oldest(self) -> list[tuple[int, float]]:
        """(seq, enqueued_at) of the oldest unfinished operation in each place it may be."""
        found: list[tuple[int, float]] = []
        memory = self._window.oldest()
        if memory is not None:
            found.append(memory)
        head = self._reading or self._spool.head
        if head is not None:
            found.append(head)
        if self._unwritten:
            found.append((self._unwritten[0].seq, self._unwritten[0].enqueued_at))
        return found

    def finished_through(self, seq: int) -> bool:
        """Whether every operation with a sequence number ``<= seq`` has finished."""
        oldest = self._oldest()
        return not oldest or min(oldest)[0] > seq

    async def wait_finished(self, through_seq: int) -> None:
        """Return once every operation with ``seq <= through_seq`` has finished."""
        while True:
            if self.finished_through(through_seq):
                return
            if self._finished.is_set():
                self._finished = anyio.Event()
            await self._finished.wait()

    def lag_seconds(self, now: float | None = None) -> float:
        """Age of the oldest unfinished operation; 0 when idle."""
        now = time.time() if now is None else now
        oldest = min((when for _, when in self._oldest()), default=math.inf)
        return 0.0 if oldest is math.inf else max(0.0, now - oldest)

    def _safe_through(self) -> int:
        """The highest seq whose every operation, and every earlier one, finished."""
        oldest = self._oldest()
        return self.last_seq if not oldest else min(oldest)[0] - 1

    # -- background: read back, confirm, fsync ---------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Read the spool back into memory, confirm what finished, fsync now and then."""
        task_status.started()
        last_sync = time.monotonic()
        tick = min(self._fsync_interval, 1.0)
        first = True
        while True:
            if not first:  # operations left by an earlier run are read back at once
                with anyio.move_on_after(tick):
                    await self._refill_wakeup.wait()
            first = False
            self._refill_wakeup = anyio.Event()
            try:
                if self._unwritten:
                    await self._write_unwritten()
                elif self._disk_full and self._spool.has_room():
                    self._disk_ok()  # room again, with no put to prove it: the next one would
                await self._refill()
                if time.monotonic() - last_sync >= self._fsync_interval:
                    through = self._safe_through()
                    await anyio.to_thread.run_sync(self._confirm_and_sync, through)
                    last_sync = time.monotonic()
            except Exception as exc:
                # The disk failing must not end the pipeline (nor cancel the
                # application): what was spooled stays spooled; try again.
                log.error("spool_io_failed", error=f"{type(exc).__name__}: {exc}")
                await anyio.sleep(tick)

    def _confirm_and_sync(self, through_seq: int) -> None:
        # One thread hop: confirming deletes segment files, syncing fsyncs.
        self._spool.confirm(through_seq)
        self._spool.sync()
        if self._ledger is not None:
            self._ledger.sync()

    async def _write_unwritten(self) -> None:
        # While this runs in a thread, puts queue behind it in _unwritten and
        # nothing else reads or delivers, so ``deliver`` stays right.
        chunk = [self._unwritten[i] for i in range(min(len(self._unwritten), _WRITE_CHUNK))]
        deliver = self._deliverable(len(chunk))
        try:
            await anyio.to_thread.run_sync(partial(self._spool.append, chunk, deliver=deliver))
        except OSError as exc:
            self._disk_failed(exc)
            return
        for _ in chunk:
            self._unwritten.popleft()
        if not self._unwritten:
            self._disk_ok()
        for op in chunk[:deliver]:
            self._admit(op)

    async def _refill(self) -> None:
        # Hysteresis: refill once memory is half empty, so reads from disk come
        # in large chunks rather than one operation at a time.
        while len(self._spool) and self._window.queued <= self._capacity // 2:
            room = min(self._capacity - self._window.queued, _REFILL_CHUNK)
            self._reading = self._spool.head or (0, time.time())
            try:
                ops = await anyio.to_thread.run_sync(self._spool.read, room)
                for op in ops:
                    self._admit(op)
            finally:
                self._reading = None
            self._note_lost()
            if not ops:  # only damage was left (reported by the spool): the low moved
                self._finished.set()
                return

    # -- shutdown --------------------------------------------------------

    def persist(self) -> int:
        """Make what is pending durable for the next start; return how many are in memory.

        Called once the workers and the run task have stopped. Operations in
        memory are on disk already (unless the disk failed: then their tables
        are in the ledger, or the daemon's feed has them); the spool learns
        what finished, and everything is fsynced.
        """
        self._closed = True
        if self._unwritten:
            try:
                self._spool.append(list(self._unwritten))
                self._unwritten.clear()
            except OSError as exc:
                log.error("spool_write_failed", error=str(exc), left=len(self._unwritten))
        try:
            self._confirm_and_sync(self._safe_through())
        except OSError as exc:
            log.error("spool_sync_failed", error=str(exc))
        return self.depth

    def close(self) -> None:
        """Close the spool (after :meth:`persist`)."""
        try:
            self._spool.close()
        except OSError as exc:
            log.error("spool_sync_failed", error=str(exc))
