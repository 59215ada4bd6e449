"""A worker with a real queue, executor and dead-letter file over a scripted session.

The secondary is :class:`~tests.support.fake_client.FakeDatabase` behind a real
:class:`ManagedConnection`, so outages, refusals and lost answers are scripted
and each test runs in milliseconds. What the engine makes of the statements is
tested against the engine elsewhere (tests/test_replicator.py).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs
from surrealdb import RecordID

from syncd.keys import KeyRule
from syncd.metrics import Metrics
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.pause import PauseGate
from syncd.pipeline.queue import SyncQueue
from syncd.pipeline.spool import Spool
from syncd.pipeline.worker import Step, Worker, WorkerSettings, next_step
from syncd.sink.executor import Executor
from syncd.sink.operation import Operation
from syncd.surreal.connection import ManagedConnection
from syncd.surreal.failures import ErrorKind
from tests.support.fake_client import FakeDatabase, Sleeps, managed

pytestmark = pytest.mark.timeout(20)


@dataclass
class Pipeline:
    """The parts under test, running."""

    queue: SyncQueue
    conn: ManagedConnection
    dlq: DeadLetterFile
    metrics: Metrics
    worker: Worker

    def put(self, n: int, v: Any, **fields: Any) -> Operation:
        op = Operation(table="t", key=f"t:{n}", record={"id": RecordID("t", n), "v": v, **fields})
        self.queue.put(op)
        return op

    async def flush(self, seconds: float = 5.0) -> None:
        with anyio.fail_after(seconds):
            await self.queue.wait_finished(self.queue.last_seq)

    def count(self, name: str) -> float:
        value = self.metrics.registry.get_sample_value(
            f"syncd_operations_{name}_total", {"secondary": "secondary", "table": "t"}
        )
        return value or 0.0


@asynccontextmanager
async def pipeline(
    tmp_path: Path,
    db: FakeDatabase,
    *,
    max_retries: int = 3,
    retry_interval: float = 0.01,
    batch_size: int = 50,
    gate: PauseGate | None = None,
    clock: Callable[[], float] = time.monotonic,
    run_worker: bool = True,
) -> AsyncIterator[Pipeline]:
    """One lane, one worker, a managed connection to ``db``; cancelled on exit.

    ``run_worker=False``: the test calls ``worker.step()`` itself.
    """
    metrics = Metrics(CollectorRegistry())
    queue = SyncQueue(lanes=1, capacity=1000, spool=Spool(tmp_path / "spool"), metrics=metrics)
    queue.open()
    conn = managed(db, Sleeps(real=0.005), reconnect_backoff=0.05)
    dlq = DeadLetterFile(tmp_path / "deadletters.jsonl")
    settings = WorkerSettings(
        batch_size=batch_size,
        batch_timeout=0.001,
        retry_interval=retry_interval,
        max_retries=max_retries,
        retry_cap=1.0,
    )
    executor = Executor(conn, keys=KeyRule(), write_timeout=0.2, metrics=metrics)
    worker = Worker(
        0,
        queue=queue,
        executor=executor,
        conn=conn,
        deadletters=dlq,
        settings=settings,
        metrics=metrics,
        gate=gate,
        clock=clock,
    )
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(queue.run)
            await tg.start(conn.run)
            if run_worker:
                await tg.start(worker.run)
            yield Pipeline(queue, conn, dlq, metrics, worker)
            tg.cancel_scope.cancel()
    finally:
        queue.close()


def refuse_bad(row: Any) -> str | None:
    return "Found 'bad' for field `v`, but expected a int" if row.get("v") == "bad" else None


async def test_a_batch_waits_while_the_secondary_is_down(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.reachable = False
    async with pipeline(tmp_path, db) as p:
        ops = [p.put(n, n) for n in range(5)]
        await anyio.sleep(0.1)
        assert db.applied == [] and p.queue.lag_seconds() > 0
        assert all(op.attempts == 0 for op in ops)  # an outage is not the records' fault
        db.reachable = True
        await p.flush()
    assert {rid: row["v"] for rid, row in db.rows.items()} == {f"t:{n}": n for n in range(5)}
    assert len(db.applied) == 5 and p.count("applied") == 5
    assert p.dlq.count() == 0


async def test_a_lost_answer_resends_the_batch_and_each_key_ends_up_once(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.faults.append("drop_after")  # applied, then the connection dies before answering
    async with pipeline(tmp_path, db) as p:
        for n in range(10):
            p.put(n, n)
        await p.flush()
        assert db.connects == 2  # the stale session was replaced
    assert {rid: row["v"] for rid, row in db.rows.items()} == {f"t:{n}": n for n in range(10)}
    assert len(db.applied) == 20  # sent twice: harmless, UPSERTs
    assert p.count("applied") == 10  # but each operation finished once


async def test_a_hung_call_hits_the_write_deadline_and_is_resent(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.faults.append("hang")
    async with pipeline(tmp_path, db) as p:
        p.put(1, 1)
        await p.flush()
    assert db.rows["t:1"]["v"] == 1 and db.connects == 2


async def test_a_refused_batch_falls_back_to_one_by_one(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.refuse = refuse_bad
    async with pipeline(tmp_path, db, max_retries=1) as p:
        for n in range(5):
            p.put(n, "bad" if n == 2 else n)
        await p.flush()
    assert db.calls == [["batch"], ["one"] * 5]  # the FOR failed whole, then each alone
    assert sorted(db.rows) == ["t:0", "t:1", "t:3", "t:4"]
    assert db.refusals == [("t:2", refuse_bad({"v": "bad"}))] * 2
    letters, _ = p.dlq.read()
    assert [letter.op.key for letter in letters] == ["t:2"]


async def test_dead_letters_after_max_retries_while_other_records_flow(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.refuse = refuse_bad
    async with pipeline(tmp_path, db, max_retries=3) as p:
        p.put(0, "bad")
        for n in range(1, 20):
            p.put(n, n)
            await anyio.sleep(0.002)  # records keep arriving while the bad one is retried
        await p.flush()
        assert p.count("retried") == 2 and p.count("dead_lettered") == 1
    letters, malformed = p.dlq.read()
    assert malformed == []
    assert [(letter.op.key, letter.op.attempts) for letter in letters] == [("t:0", 3)]
    assert "expected a int" in letters[0].error
    assert sorted(db.rows) == sorted(f"t:{n}" for n in range(1, 20))
    assert db.applications("t:0") == []


async def test_a_newer_version_supersedes_a_parked_record(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.refuse = refuse_bad
    async with pipeline(tmp_path, db, retry_interval=0.3) as p:
        p.put(1, "bad")
        with anyio.fail_after(2):
            await db.refused.wait()
        p.put(1, 2)  # arrives while the refused version is parked
        await p.flush()
        assert p.count("superseded") == 1
        await anyio.sleep(0.4)  # past the parked version's retry time
    assert [row["v"] for row in db.applications("t:1")] == [2]  # only the newest
    assert db.rows["t:1"]["v"] == 2
    assert p.dlq.count() == 0


async def test_a_failing_dead_letter_write_keeps_the_operation(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.refuse = refuse_bad
    blocker = tmp_path / "deadletters.jsonl"
    blocker.mkdir()  # stands in for a full or unwritable disk
    async with pipeline(tmp_path, db, max_retries=1) as p:
        p.put(0, "bad")
        p.put(1, 1)
        with pytest.raises(TimeoutError):
            await p.flush(0.3)
        # Not dead-lettered, not dropped: still pending, and tried again.
        assert p.count("dead_lettered") == 0
        assert p.queue.lag_seconds() > 0
        assert len(db.refusals) >= 2
        assert db.rows["t:1"]["v"] == 1  # the rest of the lane was not held up
        shutil.rmtree(blocker)  # the disk has room again
        await p.flush()
        assert p.count("dead_lettered") == 1
    letters, _ = p.dlq.read()
    assert [(letter.op.key, letter.op.attempts) for letter in letters] == [("t:0", 1)]


async def test_a_closed_gate_holds_every_batch_until_it_opens(tmp_path: Path) -> None:
    db = FakeDatabase()
    gate = PauseGate("secondary")
    gate.close(1.0)
    async with pipeline(tmp_path, db, gate=gate) as p:
        for n in range(5):
            p.put(n, n)
        await anyio.sleep(0.2)
        assert db.calls == [] and p.queue.depth == 5  # nothing taken, nothing sent
        gate.open()
        await p.flush()
    assert len(db.applied) == 5 and p.count("applied") == 5


async def test_a_batch_held_for_an_outage_is_not_sent_once_paused(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.reachable = False
    gate = PauseGate("secondary")
    async with pipeline(tmp_path, db, gate=gate) as p:
        p.put(1, 1)
        await anyio.sleep(0.1)  # taken, waiting for the connection
        gate.close(1.0)
        db.reachable = True
        await anyio.sleep(0.3)  # the connection is back, but the secondary is paused
        assert db.applied == [] and p.queue.lag_seconds() > 0
        gate.open()
        await p.flush()
    assert db.rows["t:1"]["v"] == 1


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


NOT_EXECUTED = "The query was not executed due to a failed transaction"


@pytest.mark.parametrize(
    ("kind", "attempts", "max_retries", "step"),
    [
        (ErrorKind.FIELD_TYPE, 0, 3, Step(1, False)),
        (ErrorKind.FIELD_TYPE, 2, 3, Step(3, True)),
        (ErrorKind.UNIQUE_INDEX, 0, 1, Step(1, True)),
        (ErrorKind.OTHER, 0, 0, Step(1, True)),  # at least one attempt, whatever max says
        (ErrorKind.RESPONSE, 1, 3, Step(2, False)),
        (ErrorKind.NOT_EXECUTED, 0, 1, Step(0, False)),  # collateral: not the record's fault
        (ErrorKind.NOT_EXECUTED, 2, 3, Step(2, False)),
    ],
)
def test_next_step_decides_from_the_kind(
    kind: ErrorKind, attempts: int, max_retries: int, step: Step
) -> None:
    assert next_step(kind, attempts, max_retries) == step


async def test_a_parked_record_is_retried_when_the_clock_says(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.refuse = refuse_bad
    clock = FakeClock()
    async with pipeline(tmp_path, db, retry_interval=10.0, clock=clock, run_worker=False) as p:
        p.put(0, "bad")
        await p.worker.step()
        assert len(db.refusals) == 2  # the batch, then the record alone
        p.put(1, 1)
        await p.worker.step()  # 10 s not passed: the parked record is not sent
        assert len(db.refusals) == 2 and db.rows["t:1"]["v"] == 1
        db.refuse = lambda row: None
        clock.now += 10.0
        p.put(2, 2)
        await p.worker.step()
        await p.flush()
    assert db.rows["t:0"]["v"] == "bad" and p.count("retried") == 1
    assert p.dlq.count() == 0


async def test_a_statement_not_executed_does_not_count_against_its_record(
    tmp_path: Path,
) -> None:
    db = FakeDatabase()
    db.refuse = lambda row: NOT_EXECUTED
    clock = FakeClock()
    async with pipeline(
        tmp_path, db, max_retries=1, retry_interval=1.0, clock=clock, run_worker=False
    ) as p:
        op = p.put(0, 0)
        for _ in range(3):  # max_retries is 1, yet the record is never dead-lettered
            await p.worker.step()
            clock.now += 60.0
        assert op.attempts == 0 and p.dlq.count() == 0 and p.count("retried") == 3
        db.refuse = lambda row: None
        await p.worker.step()
        await p.flush()
    assert db.rows["t:0"]["v"] == 0 and p.count("dead_lettered") == 0


async def test_logs_name_the_kind_and_the_dead_letter_keeps_the_text(tmp_path: Path) -> None:
    db = FakeDatabase()
    db.refuse = lambda row: (
        f"Found '{row['v']}' for field `v`, with record `t:0`, but expected a int"
    )
    with capture_logs() as logs:
        async with pipeline(tmp_path, db, max_retries=2) as p:
            p.put(0, "SECRET-VALUE")
            await p.flush()
    refused = [e for e in logs if e["event"] in ("operation_rejected", "operation_dead_lettered")]
    assert [e["event"] for e in refused] == ["operation_rejected", "operation_dead_lettered"]
    assert {e["error_kind"] for e in refused} == {"field_type"}
    assert "SECRET-VALUE" not in repr(logs)
    letters, _ = p.dlq.read()
    assert "SECRET-VALUE" in letters[0].error
