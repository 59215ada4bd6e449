"""The queue's memory: a FIFO of operations per lane, and those the workers hold.

Pure bookkeeping, no I/O: which operations are in memory, in which lane, which
a worker has taken and not finished, and the lowest of their seqs (the flush
watermark's part in memory). One record's operations share a lane, so they
come out in the order they were admitted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

import anyio

from syncd.pipeline.lanes import lane_for
from syncd.pipeline.watermark import Watermark
from syncd.sink.operation import Operation

__all__ = ["Window"]


class Window:
    """Operations in memory, per lane; see the module docstring."""

    def __init__(self, lanes: int, *, clock: Callable[[], float] = time.time) -> None:
        """``lanes`` FIFOs, one per worker.

        ``clock`` is the wall clock operations' ``enqueued_at`` was read from.
        """
        self._clock = clock
        self._lanes: list[deque[Operation]] = [deque() for _ in range(lanes)]
        self._wakeups: list[anyio.Event] = [anyio.Event() for _ in range(lanes)]
        # How many queued operations wake a lane's worker: 1 while it waits for
        # a first one, its batch size while it lingers for a batch to fill (so
        # an admit does not wake it just to find the batch still short).
        self._wake_at: list[int] = [1] * lanes
        self._held: list[dict[int, Operation]] = [{} for _ in range(lanes)]
        self._pending = Watermark()
        self._enqueued_at: dict[int, float] = {}
        #: Operations queued in lanes (not those workers hold).
        self.queued = 0

    @property
    def lanes(self) -> int:
        """Number of lanes."""
        return len(self._lanes)

    @property
    def depth(self) -> int:
        """Operations in memory: queued in lanes and in workers' hands."""
        return self.queued + sum(len(h) for h in self._held)

    def admit(self, op: Operation) -> None:
        """Queue ``op`` in its lane; it stays pending until finished."""
        if op.seq in self._enqueued_at:
            return  # delivered twice: one copy is enough (and keeps the watermark sound)
        lane = lane_for(op.key, len(self._lanes))
        self._lanes[lane].append(op)
        self.queued += 1
        self._pending.add(op.seq)
        self._enqueued_at[op.seq] = op.enqueued_at
        if len(self._lanes[lane]) >= self._wake_at[lane]:
            self._wakeups[lane].set()

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
            left = min(linger, queue[0].enqueued_at + linger - self._clock())
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
        self.queued -= len(batch)
        return batch

    async def _wait_lane(self, lane: int) -> None:
        event = self._wakeups[lane]
        if event.is_set():
            self._wakeups[lane] = event = anyio.Event()
        await event.wait()

    def finish(self, lane: int, ops: Sequence[Operation]) -> list[Operation]:
        """Forget ``ops`` (taken from ``lane``); return those that were pending."""
        held = self._held[lane]
        done = []
        for op in ops:
            if held.pop(op.seq, None) is not None:
                self._pending.finish(op.seq)
                self._enqueued_at.pop(op.seq, None)
                done.append(op)
        return done

    def oldest(self) -> tuple[int, float] | None:
        """(seq, enqueued_at) of the oldest pending operation in memory."""
        low = self._pending.low()
        return None if low is None else (low, self._enqueued_at.get(low, self._clock()))
