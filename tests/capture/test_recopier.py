"""Re-copy of the tables the spool could not keep: read through the application's own
connection, queued behind everything before it, rows a writer overtook skipped, and the
table leaves the ledger only when nothing more went unkept meanwhile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from surrealdb import RecordID as SdkRecordID

from syncd.capture.recopier import RESYNC_SOURCE, AppPrimary, Recopier, _CopyIntake
from syncd.errors import PrimaryUnavailable
from syncd.keys import KeyRule
from syncd.metrics import Metrics
from syncd.pipeline.queue import SyncQueue
from syncd.pipeline.recopy import RecopyLedger
from syncd.pipeline.spool import Spool
from syncd.sink.operation import Operation
from tests.support.replica import embedded_primary

pytestmark = [pytest.mark.timeout(120)]


class Secondary:
    is_up = True


class Pipeline:
    """A queue and ledger, with a consumer that finishes every operation it takes."""

    def __init__(self, tmp_path: Path) -> None:
        self.ledger = RecopyLedger(tmp_path / "resync")
        self.ledger.open()
        self.queue = SyncQueue(lanes=1, capacity=100, spool=Spool(tmp_path / "spool"),
                               ledger=self.ledger)  # fmt: skip
        self.queue.open()
        self.applied: list[Operation] = []

    async def consume(self) -> None:
        while True:
            batch = await self.queue.take(0, 50, 0, 0.5)
            self.applied += batch
            self.queue.finish(0, batch)


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[Pipeline]:
    p = Pipeline(tmp_path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(p.queue.run)
        tg.start_soon(p.consume)
        yield p
        tg.cancel_scope.cancel()
    p.queue.close()
    p.ledger.close()


def recopier(p: Pipeline, metrics: Metrics | None = None) -> Recopier:
    metrics = metrics or Metrics()
    return Recopier(p.ledger, p.queue, Secondary(), KeyRule(), metrics,  # type: ignore[arg-type]
                    query_seconds=30)  # fmt: skip


@pytest.mark.integration
async def test_a_marked_table_is_copied_and_leaves_the_ledger(pipeline: Pipeline) -> None:
    pipeline.ledger.mark("t", 1)
    async with embedded_primary() as db:
        await db.query("CREATE t:1 SET n = 1; CREATE t:2 SET n = 2; CREATE other:1")
        rec = recopier(pipeline)
        rec.primary = db
        with anyio.fail_after(60):
            assert await rec.copy("t")
    assert not pipeline.ledger
    assert [(o.key, o.source, o.record["n"]) for o in pipeline.applied] == [
        ("t:1", RESYNC_SOURCE, 1), ("t:2", RESYNC_SOURCE, 2),
    ]  # fmt: skip


@pytest.mark.integration
async def test_a_table_marked_again_during_the_copy_stays_in_the_ledger(
    pipeline: Pipeline,
) -> None:
    pipeline.ledger.mark("t", 1)
    async with embedded_primary() as db:
        await db.query("CREATE t:1 SET n = 1")

        class Marking:
            """The application's connection; another unkept write lands mid-copy."""

            async def query(self, sql: str, params: Any = None) -> Any:
                pipeline.ledger.mark("t", 2)
                return await db.query(sql, params)

        rec = recopier(pipeline)
        rec.primary = Marking()
        with anyio.fail_after(60):
            assert not await rec.copy("t")
    assert pipeline.ledger.tables() == ["t"]


async def test_a_table_not_in_the_ledger_is_done(pipeline: Pipeline) -> None:
    with anyio.fail_after(30):
        assert await recopier(pipeline).copy("nothing")


async def test_a_failed_copy_keeps_the_table_marked(pipeline: Pipeline) -> None:
    pipeline.ledger.mark("t", 1)

    class Broken:
        async def query(self, sql: str, params: Any = None) -> Any:
            raise KeyError("a bug")

    rec = recopier(pipeline)
    rec.primary = Broken()
    with anyio.fail_after(30):
        assert not await rec.copy("t")
    assert pipeline.ledger.tables() == ["t"]
    assert pipeline.queue.observers == []  # its observer is gone


def test_rows_a_writer_put_during_the_chunk_are_skipped(tmp_path: Path) -> None:
    queue = SyncQueue(lanes=1, capacity=10, spool=Spool(tmp_path / "spool"))
    queue.open()
    try:
        intake = _CopyIntake(queue, KeyRule(), Metrics(), "t")
        intake.observe([
            Operation("t", "t:2", {"id": "t:2"}, source="wrapper"),
            Operation("u", "u:3", {"id": "u:3"}, source="wrapper"),  # another table
            Operation("t", "t:3", {"id": "t:3"}, source=RESYNC_SOURCE),  # our own
        ])  # fmt: skip
        assert intake.written == {"t:2"}
        rows = [{"id": SdkRecordID("t", n), "n": n} for n in (1, 2, 3)]
        assert intake.capture(rows) == 2
        assert queue.depth == 2
        assert intake.room() == 0
    finally:
        queue.close()


async def test_flush_forgets_the_writers_of_the_last_chunk(pipeline: Pipeline) -> None:
    intake = _CopyIntake(pipeline.queue, KeyRule(), Metrics(), "t")
    intake.observe([Operation("t", "t:1", {"id": "t:1"})])
    with anyio.fail_after(30):
        await intake.flush()
    assert intake.written == set()


async def test_the_pending_gauge_follows_the_ledger(pipeline: Pipeline) -> None:
    metrics = Metrics()
    rec = recopier(pipeline, metrics)
    waiter_done = anyio.Event()
    pipeline.ledger.mark("t", 1)

    async def waiter() -> None:
        await rec.wait_done()
        waiter_done.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            rec.ledger_changed(["t", "u"])
            assert metrics.resync_pending.labels("u")._value.get() == 1
            rec.ledger_changed(["t"])
            samples = {
                s.labels["table"]
                for m in metrics.registry.collect()
                if m.name == "syncd_resync_pending"
                for s in m.samples
            }
            assert samples == {"t"}
            await anyio.wait_all_tasks_blocked()
            assert not waiter_done.is_set()
            generation = pipeline.ledger.generation("t")
            assert generation is not None and pipeline.ledger.clear("t", generation)
            rec.ledger_changed([])
            await waiter_done.wait()


async def test_the_apps_connection_failing_in_transport_is_a_primary_outage() -> None:
    class Gone:
        async def query(self, sql: str, params: Any = None) -> Any:
            raise ConnectionResetError(104, "reset")

    with anyio.fail_after(30), pytest.raises(PrimaryUnavailable, match="reset"):
        await AppPrimary(Gone()).call(lambda c: c.query("x"), 5)

    async def slow(conn: Any) -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(30), pytest.raises(PrimaryUnavailable, match=r"timeout|TimeoutError"):
        await AppPrimary(object()).call(slow, 0.05)
