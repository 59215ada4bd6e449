"""The queue's memory on a wall clock the test sets: lingering for a batch, the oldest one."""

from __future__ import annotations

import anyio

from syncd.pipeline.window import Window
from syncd.sink.operation import Operation


class WallClock:
    """A wall clock that moves only when told."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def op(seq: int, enqueued_at: float) -> Operation:
    return Operation(table="t", key="t:1", record={"v": seq}, enqueued_at=enqueued_at, seq=seq)


async def test_a_fresh_operation_lingers_for_the_batch_to_fill() -> None:
    clock = WallClock(1000.0)
    window = Window(1, clock=clock)
    window.admit(op(1, 1000.0))
    with anyio.move_on_after(0.05) as scope:
        await window.take(0, max_ops=10, linger=60.0, wait=0.0)
    assert scope.cancelled_caught  # the clock says it is 0 s old: it waits up to a minute
    assert window.queued == 1


async def test_an_operation_older_than_the_linger_is_taken_at_once() -> None:
    clock = WallClock(1000.0 + 61.0)
    window = Window(1, clock=clock)
    window.admit(op(1, 1000.0))
    with anyio.fail_after(1):
        batch = await window.take(0, max_ops=10, linger=60.0, wait=0.0)
    assert [o.seq for o in batch] == [1] and window.queued == 0


async def test_oldest_is_the_lowest_pending_seq_and_its_enqueue_time() -> None:
    window = Window(1, clock=WallClock(5000.0))
    window.admit(op(2, 1002.0))
    window.admit(op(3, 1003.0))
    assert window.oldest() == (2, 1002.0)
    taken = await window.take(0, max_ops=10, linger=0.0, wait=0.0)
    window.finish(0, taken[:1])
    assert window.oldest() == (3, 1003.0)
    window.finish(0, taken[1:])
    assert window.oldest() is None
