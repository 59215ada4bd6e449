"""The sync queue: a bounded in-memory FIFO per lane that overflows to a durable spool.

Rules this module keeps:

- ``put`` never blocks and never fails for lack of room: the application's
  write path calls it right after the primary answered.
- Logically the queue is one FIFO: memory (older) followed by the spool
  (newer). Once anything is spooled, every new operation goes to the spool too
  until it is empty again; the refill task moves the spool's head back into
  memory. So the operations of one record come out in the order they went in,
  whichever of the two held them.
- An operation is *pending* from ``put`` until ``finish``: in a lane, in a
  worker's hands, parked for a retry, or spooled. ``flush`` waits on that.
- At shutdown, whatever is pending in memory is written to the spool's head
  (it is older than the spool's content), so the next start resumes in order.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio.abc import TaskStatus
from prometheus_client import Counter

from syncd.pipeline.lanes import lane_for
from syncd.pipeline.watermark import Watermark
from syncd.sink.operation import Operation

if TYPE_CHECKING:
    from syncd.metrics import Metrics
    from syncd.pipeline.spool import Spool

log = structlog.get_logger("syncd.pipeline.queue")

# Spilled operations are buffered and written by the run task, in chunks, in a
# worker thread: encoding and write() stay off the application's write path.
_SPILL_CHUNK = 512
_SPILL_LINGER = 0.05
_REFILL_CHUNK = 2000
_SYNC_INTERVAL = 1.0


class SyncQueue:
    """Bounded, lane-partitioned operation queue with a durable overflow."""

    def __init__(
        self,
        *,
        lanes: int,
        capacity: int,
        spool: Spool,
        metrics: Metrics | None = None,
    ) -> None:
        self._lanes: list[deque[Operation]] = [deque() for _ in range(lanes)]
        self._wakeups: list[anyio.Event] = [anyio.Event() for _ in range(lanes)]
        # How many queued operations wake a lane's worker: 1 while it waits for
        # a first one, its batch size while it lingers for a batch to fill (so
        # a put does not wake it just to find the batch still short).
        self._wake_at: list[int] = [1] * lanes
        self._held: list[dict[int, Operation]] = [{} for _ in range(lanes)]
        self._capacity = capacity
        self._spool = spool
        self._metrics = metrics
        self._enqueued: dict[tuple[str, str], Counter] = {}
        self._in_memory = 0
        self._spill_buffer: list[Operation] = []
        # Operations spooled, buffered for the spool, or being read back;
        # while non-zero, put() must spill to keep FIFO order.
        self._spooled = 0
        self._spool_head_seq = 0
        self._spool_head_time = 0.0
        self._spill_wakeup = anyio.Event()
        self._refill_wakeup = anyio.Event()
        self._finished = anyio.Event()
        self._pending = Watermark()
        self._enqueued_at: dict[int, float] = {}
        self._next_seq = 1
        self._resumed_through = 0
        self._closed = False
        # Changefeed positions of unfinished operations (daemon): the
        # checkpoint may advance only below the lowest of them.
        self.positions = Watermark()
        if metrics is not None:
            # Read at scrape time: no gauge update on the application's write path.
            metrics.queue_depth.set_function(lambda: self.depth)
            metrics.spool_depth.set_function(lambda: self._spooled)
            metrics.spool_bytes.set_function(lambda: self._spool.bytes)

    # -- lifecycle -------------------------------------------------------

    def open(self) -> None:
        """Open the spool and continue numbering after what it holds."""
        self._spool.open()
        self._next_seq = self._spool.max_seq + 1
        self._resumed_through = self._spool.max_seq
        self._spooled = len(self._spool)
        if self._spooled:
            # Operations left by an earlier run: their times are unknown until
            # read, so count their age from now rather than guess.
            self._spool_head_seq = 0
            self._spool_head_time = time.time()
            log.info("spool_resumed", operations=self._spooled)

    @property
    def lanes(self) -> int:
        """Number of lanes (one per worker)."""
        return len(self._lanes)

    @property
    def depth(self) -> int:
        """Operations pending in memory (lanes and workers' hands)."""
        return self._in_memory + sum(len(h) for h in self._held)

    @property
    def spooled(self) -> int:
        """Operations waiting in the spool (or on their way to or from it)."""
        return self._spooled

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
        """Enqueue ``op``; O(1), never blocks. Spills to the spool when full."""
        if self._closed:
            raise RuntimeError("queue is closed")
        op.seq = self._next_seq
        self._next_seq += 1
        if op.position is not None:
            self.positions.add(op.position)
        if self._spooled or self._in_memory >= self._capacity:
            if not self._spooled:
                self._spool_head_seq = op.seq
                self._spool_head_time = op.enqueued_at
            self._spooled += 1
            self._spill_buffer.append(op)
            # No disk I/O here, on the application's write path: the run task
            # writes the buffer to the spool, in a worker thread.
            self._spill_wakeup.set()
        else:
            self._admit(op)
        if self._metrics is not None:
            # The labelled child is looked up once per (table, source): labels()
            # validates and locks, a measurable part of the application's write.
            counter = self._enqueued.get((op.table, op.source))
            if counter is None:
                counter = self._metrics.enqueued.labels(op.table, op.source)
                self._enqueued[(op.table, op.source)] = counter
            counter.inc()

    def put_many(self, ops: Iterable[Operation]) -> None:
        """Enqueue several operations in order."""
        for op in ops:
            self.put(op)

    def _admit(self, op: Operation) -> None:
        if op.seq in self._enqueued_at:
            # Delivered twice by the spool (a crash between persisting the
            # head and confirming its source): one copy is enough, and two with
            # one seq would leave the flush watermark stuck.
            return
        if op.seq <= self._resumed_through:
            # Left by an earlier run: its position is behind the saved
            # checkpoint already and is not tracked in this one.
            op.position = None
        lane = lane_for(op.key, len(self._lanes))
        self._lanes[lane].append(op)
        self._in_memory += 1
        self._pending.add(op.seq)
        self._enqueued_at[op.seq] = op.enqueued_at
        if len(self._lanes[lane]) >= self._wake_at[lane]:
            self._wakeups[lane].set()

    def _write_spill(self) -> None:
        """Write the spill buffer now (shutdown: the run task has stopped)."""
        if self._spill_buffer:
            chunk, self._spill_buffer = self._spill_buffer, []
            try:
                self._spool.append(chunk)
            except OSError as exc:
                self._keep_in_memory(chunk, exc)

    async def _write_spill_in_thread(self) -> None:
        # Only the run task calls this, and it refills only after the write
        # returns, so the buffer's operations can never overtake the chunk.
        if 0 < len(self._spill_buffer) < _SPILL_CHUNK:
            await anyio.sleep(_SPILL_LINGER)  # gather a chunk: one write, not many
        if self._spill_buffer:
            chunk, self._spill_buffer = self._spill_buffer, []
            try:
                await anyio.to_thread.run_sync(self._spool.append, chunk)
            except OSError as exc:
                self._keep_in_memory(chunk, exc)

    def _keep_in_memory(self, chunk: list[Operation], exc: OSError) -> None:
        # Disk full or gone: keep the operations in memory (order intact,
        # nothing dropped) and try again on the next tick.
        self._spill_buffer = chunk + self._spill_buffer
        log.error("spool_write_failed", error=str(exc), buffered=len(self._spill_buffer))

    # -- consumer side ---------------------------------------------------

    async def take(self, lane: int, max_ops: int, linger: float, wait: float) -> list[Operation]:
        """Take up to ``max_ops`` from ``lane``; they stay pending until finished.

        Waits up to ``wait`` seconds for a first operation, then for the batch
        to fill until the oldest operation in the lane is ``linger`` seconds
        old: one that already waited out the previous batch's round trip is
        not held back a whole ``linger`` more. Returns ``[]`` on timeout.
        """
        queue = self._lanes[lane]
        if not queue:
            with anyio.move_on_after(wait):
                await self._wait_lane(lane)
        if queue and len(queue) < max_ops and linger > 0:
            # Clamped: a wall clock set back must not stretch the wait.
            left = min(linger, queue[0].enqueued_at + linger - time.time())
            if left > 0:
                self._wake_at[lane] = max_ops
                try:
                    with anyio.move_on_after(left):
                        while len(queue) < max_ops:
                            await self._wait_lane(lane)
                finally:
                    self._wake_at[lane] = 1
        batch: list[Operation] = []
        while queue and len(batch) < max_ops:
            op = queue.popleft()
            batch.append(op)
            self._held[lane][op.seq] = op
        self._in_memory -= len(batch)
        if batch and self._spooled:
            self._refill_wakeup.set()
        return batch

    async def _wait_lane(self, lane: int) -> None:
        event = self._wakeups[lane]
        if event.is_set():
            self._wakeups[lane] = event = anyio.Event()
        await event.wait()

    def finish(self, lane: int, ops: Sequence[Operation]) -> None:
        """Mark ``ops`` (taken from ``lane``) applied, dead-lettered or superseded."""
        held = self._held[lane]
        for op in ops:
            if held.pop(op.seq, None) is not None:
                self._pending.finish(op.seq)
                self._enqueued_at.pop(op.seq, None)
                if op.position is not None:
                    self.positions.finish(op.position)
        self._finished.set()

    # -- flush and lag ---------------------------------------------------

    def _low(self) -> int | None:
        low = self._pending.low()
        if self._spooled:
            low = self._spool_head_seq if low is None else min(low, self._spool_head_seq)
        return low

    async def wait_finished(self, through_seq: int) -> None:
        """Return once every operation with ``seq <= through_seq`` has finished."""
        while True:
            low = self._low()
            if low is None or low > through_seq:
                return
            if self._finished.is_set():
                self._finished = anyio.Event()
            await self._finished.wait()

    def lag_seconds(self, now: float | None = None) -> float:
        """Age of the oldest unfinished operation; 0 when idle."""
        now = time.time() if now is None else now
        low = self._pending.low()
        oldest = math.inf
        if low is not None:
            oldest = self._enqueued_at.get(low, now)
        if self._spooled:
            oldest = min(oldest, self._spool_head_time)
        return 0.0 if oldest is math.inf else max(0.0, now - oldest)

    # -- background: spill writer and refill -----------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Move spilled operations to disk and back into memory; fsync now and then."""
        task_status.started()
        last_sync = time.monotonic()
        first = True
        while True:
            # Operations left by an earlier run are read back at once.
            if not first:
                with anyio.move_on_after(_SPILL_LINGER if self._spill_buffer else _SYNC_INTERVAL):
                    await self._either_wakeup()
            first = False
            self._spill_wakeup = anyio.Event()
            self._refill_wakeup = anyio.Event()
            try:
                await self._write_spill_in_thread()
                await self._refill()
                spool_busy = len(self._spool) or self._spool.unconfirmed
                if time.monotonic() - last_sync >= _SYNC_INTERVAL and spool_busy:
                    # Everything below the lowest unfinished seq is applied or
                    # dead-lettered: the spool may let go of it.
                    low = self._low()
                    through = self.last_seq if low is None else low - 1
                    await anyio.to_thread.run_sync(self._confirm_and_sync, through)
                    last_sync = time.monotonic()
            except Exception as exc:
                # The disk failing must not end the pipeline (nor cancel the
                # application): what was spooled stays spooled; try again.
                log.error("spool_io_failed", error=f"{type(exc).__name__}: {exc}")
                await anyio.sleep(_SYNC_INTERVAL)

    def _confirm_and_sync(self, through_seq: int) -> None:
        # One thread hop: confirming deletes segment files, syncing fsyncs.
        self._spool.confirm(through_seq)
        self._spool.sync()

    async def _either_wakeup(self) -> None:
        async with anyio.create_task_group() as tg:

            async def wait(event: anyio.Event) -> None:
                await event.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(wait, self._spill_wakeup)
            tg.start_soon(wait, self._refill_wakeup)

    async def _refill(self) -> None:
        # Hysteresis: refill once memory is half empty, so reads from disk come
        # in large chunks rather than one operation at a time.
        while self._spooled and self._in_memory <= self._capacity // 2:
            room = min(self._capacity - self._in_memory, _REFILL_CHUNK)
            if len(self._spool) == 0:
                # Nothing on disk: the buffer is the head, no need for a round trip.
                ops = self._spill_buffer[:room]
                del self._spill_buffer[:room]
            else:
                ops = await anyio.to_thread.run_sync(self._spool.read, room)
            if not ops:
                if not len(self._spool) and not self._spill_buffer:
                    # Only reachable if segments were quarantined as corrupt.
                    log.error("spool_count_mismatch", expected=self._spooled)
                    self._spooled = 0
                return
            for op in ops:
                self._admit(op)
            self._spooled -= len(ops)
            self._spool_head_seq = ops[-1].seq + 1
            self._spool_head_time = ops[-1].enqueued_at

    # -- shutdown --------------------------------------------------------

    def persist(self) -> int:
        """Write every pending in-memory operation to the spool; return how many.

        Called once the workers have stopped. In-memory operations are older
        than the spool's content, so they go to its head; per lane, operations
        a worker held come before those still queued.
        """
        self._closed = True
        head: list[Operation] = []
        for lane, queue in enumerate(self._lanes):
            head.extend(sorted(self._held[lane].values(), key=lambda op: op.seq))
            head.extend(queue)
            queue.clear()
            self._held[lane].clear()
        head.sort(key=lambda op: op.seq)
        if head:
            self._spool.prepend(head)
        # Whatever was read from the spool has finished or is in ``head`` now:
        # release it, or the next start would deliver those seqs twice.
        self._spool.confirm(self.last_seq)
        self._write_spill()
        self._spool.sync()
        self._in_memory = 0
        return len(head)

    def close(self) -> None:
        """Close the spool (after :meth:`persist`)."""
        self._spool.close()
