"""The sync queue with a real spool on disk: order, overflow, flush, persistence."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from syncd.pipeline.lanes import lane_for
from syncd.pipeline.queue import SyncQueue
from syncd.pipeline.spool import Spool
from syncd.sink.operation import Operation
from tests.support.replica import spooled_count


def op(key: str, v: int, position: int | None = None) -> Operation:
    return Operation(table="t", key=key, record={"id": key, "v": v}, position=position)


def make(tmp_path: Path, *, lanes: int = 2, capacity: int = 10) -> SyncQueue:
    queue = SyncQueue(lanes=lanes, capacity=capacity, spool=Spool(tmp_path / "spool"))
    queue.open()
    return queue


async def drain(queue: SyncQueue, lane: int, *, limit: int = 1000) -> list[Operation]:
    taken: list[Operation] = []
    while True:
        batch = await queue.take(lane, 7, 0, 0.2)
        if not batch:
            return taken
        taken.extend(batch)
        queue.finish(lane, batch)
        if len(taken) >= limit:
            return taken


async def test_one_keys_operations_come_out_in_order_through_the_spool(tmp_path: Path) -> None:
    queue = make(tmp_path, capacity=5)
    async with anyio.create_task_group() as tg:
        tg.start_soon(queue.run)
        for v in range(200):
            queue.put(op(f"k{v % 3}", v))
        assert queue.spooled > 150  # most went to disk
        assert queue.depth <= 5
        out = [o for lane in range(queue.lanes) for o in await drain(queue, lane)]
        tg.cancel_scope.cancel()
    assert len(out) == 200 and queue.spooled == 0
    for key in ("k0", "k1", "k2"):
        versions = [o.record["v"] for o in out if o.key == key]
        assert versions == sorted(versions)


async def test_wait_finished_returns_only_when_everything_before_is_done(tmp_path: Path) -> None:
    queue = make(tmp_path, lanes=1)
    for v in range(5):
        queue.put(op("a", v))
    target = queue.last_seq
    batch = await queue.take(0, 3, 0, 0)
    queue.finish(0, batch)
    with anyio.move_on_after(0.2) as scope:
        await queue.wait_finished(target)
    assert scope.cancelled_caught  # two are still pending
    queue.finish(0, await queue.take(0, 10, 0, 0))
    with anyio.fail_after(1):
        await queue.wait_finished(target)


async def test_lag_is_the_age_of_the_oldest_pending(tmp_path: Path) -> None:
    queue = make(tmp_path, lanes=1)
    assert queue.lag_seconds() == 0.0
    first = op("a", 1)
    first.enqueued_at -= 5
    queue.put(first)
    queue.put(op("b", 2))
    assert 4.9 < queue.lag_seconds() < 6
    queue.finish(0, await queue.take(0, 10, 0, 0))
    assert queue.lag_seconds() == 0.0


async def test_persist_puts_memory_before_the_spool_and_the_next_start_resumes(
    tmp_path: Path,
) -> None:
    queue = make(tmp_path, lanes=1, capacity=3)
    for v in range(10):
        queue.put(op("a", v))
    held = await queue.take(0, 2, 0, 0)  # in a worker's hands at shutdown
    assert [o.record["v"] for o in held] == [0, 1]
    assert queue.persist() == 3  # held 0,1 and queued 2
    queue.close()
    again = make(tmp_path, lanes=1, capacity=100)
    async with anyio.create_task_group() as tg:
        tg.start_soon(again.run)
        assert again.spooled == 10
        out = await drain(again, 0)
        tg.cancel_scope.cancel()
    assert [o.record["v"] for o in out] == list(range(10))
    fresh = op("a", 99)
    again.put(fresh)
    assert fresh.seq == 11  # numbering continues after what the spool held


async def test_positions_watermark_follows_finished_operations(tmp_path: Path) -> None:
    queue = make(tmp_path, lanes=2)
    keys = ["a", "b"]
    for position, key in enumerate(keys * 2, start=10):
        queue.put(op(key, position, position=position))
    assert queue.positions.safe_through(13) == 9
    lane_a = lane_for("a", 2)
    first = await queue.take(lane_a, 1, 0, 0)
    queue.finish(lane_a, first)
    assert queue.positions.safe_through(13) == 10


def test_put_after_persist_is_refused(tmp_path: Path) -> None:
    queue = make(tmp_path)
    queue.persist()
    with pytest.raises(RuntimeError):
        queue.put(op("a", 1))
    queue.close()


async def test_a_failing_disk_keeps_operations_in_memory_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = make(tmp_path, lanes=1, capacity=2)
    real_append = queue._spool.append
    broken = True
    attempts = 0

    def append(ops: list[Operation]) -> None:
        nonlocal attempts
        if broken:
            attempts += 1
            raise OSError(28, "No space left on device")
        real_append(ops)

    monkeypatch.setattr(queue._spool, "append", append)
    async with anyio.create_task_group() as tg:
        tg.start_soon(queue.run)
        for v in range(1200):
            queue.put(op("a", v))  # never raises into the application
        assert queue.spooled == 1198
        await anyio.sleep(0.5)  # the writer tries, fails, keeps everything
        assert attempts >= 1 and queue.spooled == 1198
        broken = False
        out = await drain(queue, 0, limit=1200)
        tg.cancel_scope.cancel()
    assert [o.record["v"] for o in out] == list(range(1200))


async def test_spooled_operations_survive_a_crash_after_refill(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.open()
    ops = [op(f"k{v}", v) for v in range(1, 11)]
    for seq, each in enumerate(ops, 1):
        each.seq = seq
    spool.append(ops)
    spool.close()  # fsynced: durable
    queue = SyncQueue(lanes=1, capacity=100, spool=Spool(tmp_path / "spool"))
    queue.open()
    async with anyio.create_task_group() as tg:
        tg.start_soon(queue.run)
        taken = await queue.take(0, 100, 0, 2)
        tg.cancel_scope.cancel()
    assert len(taken) == 10  # in a worker's hands, not applied yet
    # SIGKILL now: no persist(), no close(). What does the next start find?
    assert spooled_count(tmp_path) == 10
