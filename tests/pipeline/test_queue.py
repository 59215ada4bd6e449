"""The sync queue with a real spool on disk: order, overflow, flush, persistence."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from syncd.pipeline.lanes import lane_for
from syncd.pipeline.queue import SyncQueue
from syncd.pipeline.recopy import RecopyLedger
from syncd.pipeline.spool import Spool
from syncd.sink.operation import Operation
from tests.support.replica import spooled_count
from tests.support.waiting import until


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


async def test_without_a_ledger_a_failing_disk_keeps_operations_in_memory_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The daemon's queue: its changefeed delivers again after a crash, so what
    # the disk refuses waits in memory, in order, and is written once it can be.
    queue = make(tmp_path, lanes=1, capacity=2)
    real_append = queue._spool.append
    broken = True
    attempts = 0

    def append(ops: list[Operation], **kw: int) -> None:
        nonlocal attempts
        if broken:
            attempts += 1
            raise OSError(28, "No space left on device")
        real_append(ops, **kw)

    monkeypatch.setattr(queue._spool, "append", append)
    async with anyio.create_task_group() as tg:
        tg.start_soon(queue.run)
        with capture_logs() as logs:
            for v in range(1200):
                queue.put(op("a", v))  # never raises into the application
        assert [e["event"] for e in logs] == ["spool_disk_full"]  # once, not per put
        assert (queue.unwritten, queue.writable) == (1200, False)
        await until(lambda: attempts >= 2)  # the run task tries, fails, keeps everything
        assert queue.unwritten == 1200
        broken = False
        await until(lambda: queue.writable)  # the next try of the run task writes them
        out = await drain(queue, 0, limit=1200)
        tg.cancel_scope.cancel()
    assert [o.record["v"] for o in out] == list(range(1200))
    assert queue.writable


def ledger_queue(tmp_path: Path, **spool: int) -> tuple[SyncQueue, RecopyLedger]:
    ledger = RecopyLedger(tmp_path / "resync")
    ledger.open()
    queue = SyncQueue(lanes=1, capacity=5, spool=Spool(tmp_path / "spool", **spool), ledger=ledger)
    queue.open()
    return queue, ledger


async def test_with_a_ledger_what_the_disk_refuses_is_recorded_for_a_resync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue, ledger = ledger_queue(tmp_path)

    def full(ops: list[Operation], **kw: int) -> None:
        raise OSError(28, "No space left on device")

    queue.put(op("a", 0))  # on disk: kept
    monkeypatch.setattr(queue._spool, "append", full)
    with capture_logs() as logs:
        for v in range(1, 10):
            queue.put(Operation(table="u", key=f"k{v}", record={"id": v}))  # never raises
    events = [e["event"] for e in logs]
    assert events.count("spool_disk_full") == 1 and "operations_not_kept" in events
    assert ledger.tables() == ["u"] and "resync_marked" in events
    assert queue.depth == 5  # memory took what it had room for, in order
    monkeypatch.undo()
    queue.put(op("a", 99))  # the disk works again: written, and the error is over
    assert queue.writable and queue.spooled == 1
    queue.persist()
    queue.close()
    ledger.close()
    again = RecopyLedger(tmp_path / "resync")
    again.open()  # durable: the next start re-syncs the table
    assert again.tables() == ["u"]
    again.close()


async def test_spool_max_bytes_bounds_the_spool(tmp_path: Path) -> None:
    queue, ledger = ledger_queue(tmp_path, max_bytes=4096)
    for v in range(100):
        queue.put(op(f"k{v}", v))
    assert 0 < queue._spool.bytes <= 4096 + 200
    assert ledger.tables() == ["t"] and not queue.writable
    queue.persist()
    queue.close()
    ledger.close()


def test_every_put_is_on_disk_before_it_returns(tmp_path: Path) -> None:
    queue = make(tmp_path, lanes=2, capacity=3)
    for v in range(10):
        queue.put(op(f"k{v}", v))
    assert (queue.depth, queue.spooled) == (3, 7)  # memory holds a window
    # SIGKILL now: no persist(), no close(), no fsync. The next start finds all.
    assert spooled_count(tmp_path) == 10


async def test_memory_takes_disk_backlog_first_then_new_puts(tmp_path: Path) -> None:
    queue = make(tmp_path, lanes=1, capacity=4)
    async with anyio.create_task_group() as tg:
        tg.start_soon(queue.run)
        for v in range(20):
            queue.put(op("a", v))
        first = await queue.take(0, 100, 0, 1)
        assert [o.record["v"] for o in first] == [0, 1, 2, 3]
        queue.finish(0, first)
        queue.put(op("a", 20))  # behind the backlog on disk, not ahead of it
        out = await drain(queue, 0)
        tg.cancel_scope.cancel()
    assert [o.record["v"] for o in out] == list(range(4, 21))


async def test_the_spool_is_trimmed_as_operations_finish(tmp_path: Path) -> None:
    queue = SyncQueue(lanes=1, capacity=100, spool=Spool(tmp_path / "spool"), fsync_interval=0.05)
    queue.open()
    async with anyio.create_task_group() as tg:
        tg.start_soon(queue.run)
        for v in range(50):
            queue.put(op("a", v))
        assert queue._spool.unconfirmed == 50
        await drain(queue, 0)
        await until(lambda: not queue._spool.unconfirmed)
        tg.cancel_scope.cancel()
    assert queue._spool.bytes == 0 and spooled_count(tmp_path) == 0


def test_observers_see_every_batch_put(tmp_path: Path) -> None:
    queue = make(tmp_path)
    seen: list[list[int]] = []
    queue.observers.append(lambda batch: seen.append([o.record["v"] for o in batch]))
    queue.put(op("a", 1))
    queue.put_many([op("b", 2), op("c", 3)])
    assert seen == [[1], [2, 3]]


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


async def test_operations_the_spool_lost_mark_every_replicated_table(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.open()
    spool.append([Operation(table="t", key=f"k{i}", record={"id": i}, seq=i) for i in (1, 2)])
    spool.close()
    for segment in (tmp_path / "spool").glob("seg-*.spool"):
        segment.unlink()  # gone: which tables it held is unknown
    ledger = RecopyLedger(tmp_path / "resync")
    ledger.open()
    queue = SyncQueue(
        lanes=1, capacity=5, spool=Spool(tmp_path / "spool"), ledger=ledger, every_table=["a", "b"]
    )
    with capture_logs() as logs:
        queue.open()
    assert ledger.tables() == ["a", "b"] and "resync_marked" in [e["event"] for e in logs]
    queue.persist()
    queue.close()
    ledger.close()


async def test_copies_go_to_memory_without_the_spool_when_nothing_waits_on_disk(
    tmp_path: Path,
) -> None:
    queue = make(tmp_path, lanes=1, capacity=2)
    queue.put_copies([op(f"c{i}", i) for i in range(5)])  # past capacity: one chunk
    assert (queue.depth, queue.spooled, queue._spool.bytes) == (5, 0, 0)
    queue.put_many([op(f"w{i}", i) for i in range(3)])  # memory is full: these spool
    queue.put_copies([op("c9", 9)])  # behind them, through the spool, in order
    assert queue.spooled == 4
    queue.persist()
    queue.close()


async def test_without_a_ledger_a_loss_while_running_waits_for_a_restart(tmp_path: Path) -> None:
    queue = make(tmp_path, lanes=1, capacity=2)
    queue.put_many([op(f"k{i}", i, position=100 + i) for i in range(10)])  # 8 wait on disk
    (segment,) = (tmp_path / "spool").glob("seg-*.spool")
    with segment.open("r+b") as f:
        f.seek(segment.stat().st_size - 40)
        f.write(b"\xff" * 4)  # the last frame, found damaged when read back
    taken = await drain(queue, 0)
    while queue.spooled:  # what the run task does
        await queue._refill()
        taken += await drain(queue, 0)
    assert [o.key for o in taken] == [f"k{i}" for i in range(9)]
    assert queue.lost_until_restart == 1
    assert queue.positions.safe_through(200) == 108  # held below the lost one: read again
    queue.persist()
    queue.close()
