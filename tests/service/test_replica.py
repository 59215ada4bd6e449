"""One secondary's pipeline: where its state lives, its flow, drain, health and status.

The secondary is either an engine in this process (``mem://``: operations are
really applied) or an address nothing listens on (down), so no server runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from syncd.keys import KeyRule
from syncd.metrics import Metrics
from syncd.service.replica import Replica
from syncd.sink.operation import Operation
from syncd.surreal.codec import RecordID
from tests.support.replica import dead_url, entry, make_config, spooled_count
from tests.support.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def make(tmp_path: Path, url: str, name: str = "secondary", **kw: Any) -> Replica:
    # An engine in this process has no users: an empty password does not sign in.
    password = "" if url == "mem://" else "root"
    if name == "secondary":
        config = make_config(tmp_path, url, connect_timeout="1s", secondary_pass=password)
    else:
        one = {**entry(name, url), "pass": password}
        config = make_config(tmp_path, None, secondaries=[one], connect_timeout="1s")
    return Replica(config, name, Metrics(CollectorRegistry(), secondary=name), **kw)


@asynccontextmanager
async def running(replica: Replica) -> AsyncIterator[Replica]:
    await anyio.to_thread.run_sync(replica.open)
    try:
        async with anyio.create_task_group() as tg:
            await replica.start(tg)
            yield replica
            tg.cancel_scope.cancel()
    finally:
        await anyio.to_thread.run_sync(replica.persist)
        await anyio.to_thread.run_sync(replica.close)


def op(n: int) -> Operation:
    made = Operation.from_row({"id": RecordID("t", n), "n": n}, KeyRule())
    assert made is not None
    return made


def test_the_flat_secondary_keeps_its_state_in_state_dir(tmp_path: Path) -> None:
    replica = make(tmp_path, dead_url())
    assert replica.state_path == tmp_path / "state"
    assert replica.deadletters.path.parent == tmp_path / "state"
    assert replica.ledger is not None and replica.recopier is not None


def test_a_named_secondary_keeps_its_own_directory(tmp_path: Path) -> None:
    replica = make(tmp_path, dead_url(), "archive", priority=2)
    assert replica.state_path == tmp_path / "state" / "secondaries" / "archive"
    assert (replica.name, replica.priority) == ("archive", 2)


def test_a_tool_s_replica_has_its_own_spool_and_no_ledger(tmp_path: Path) -> None:
    replica = make(tmp_path, dead_url(), spool_name="spool-backfill", ledger=False)
    assert replica.ledger is None and replica.recopier is None
    assert replica.resync_pending() == []
    replica.open()
    try:
        assert (tmp_path / "state" / "spool-backfill").is_dir()
        assert not (tmp_path / "state" / "spool").exists()
    finally:
        replica.close()


async def test_operations_reach_an_engine_and_drain_says_so(tmp_path: Path) -> None:
    async with running(make(tmp_path, "mem://")) as replica:
        await until(lambda: replica.is_up, 30)
        assert not replica.held
        replica.queue.put_many([op(1), op(2)])
        assert await replica.drain(60, paused=False)
        await replica.wait_finished(replica.queue.last_seq)
        rows = await replica.secondary.call(lambda c: c.query("SELECT * FROM t ORDER BY n"), 30)
        assert [r["n"] for r in rows] == [1, 2]
        status = replica.status({"paused": False, "paused_since": None})
        assert status["up"] is True and status["applied"] == 2.0
        assert status["version"] is not None and status["joining"] is False
        assert replica.metrics.secondary_up._value.get() == 1


async def test_a_down_secondary_holds_everything_back(tmp_path: Path) -> None:
    async with running(make(tmp_path, dead_url(), "far")) as replica:
        await replica.wait_first_attempt(30)
        assert not replica.is_up and replica.held
        assert replica.refusal() is None
        assert replica.down_too_long(3600) is None
        await until(lambda: replica.down_too_long(0) is not None, 30)
        assert "down for" in str(replica.down_too_long(0))
        replica.queue.put_many([op(1)])
        with anyio.fail_after(30):
            assert not await replica.drain(10, paused=False)
        status = replica.status({"paused": True, "paused_since": 5.0})
        assert status["name"] == "far" and status["up"] is False
        assert status["paused"] is True and status["last_error"]
        assert replica.metrics.secondary_up._value.get() == 0
    # what was held back is on disk for the next start
    assert spooled_count(tmp_path / "state" / "secondaries" / "far") == 1


async def test_a_paused_or_held_back_secondary_does_not_drain(tmp_path: Path) -> None:
    replica = make(tmp_path, "mem://")
    replica.held_back = True
    async with running(replica):
        await until(lambda: replica.is_up, 30)
        replica.queue.put_many([op(1)])
        assert not await replica.drain(10, paused=True)
        assert not await replica.drain(10, paused=False)  # held back: nothing applies
        assert replica.status({})["joining"] is True
        assert replica.metrics.snapshot("secondary").get("applied", 0.0) == 0.0
        async with anyio.create_task_group() as tg:
            await replica.release(tg)
            assert not replica.held_back
            assert await replica.drain(60, paused=False)
            tg.cancel_scope.cancel()


async def test_room_is_what_memory_has_left(tmp_path: Path) -> None:
    replica = make(tmp_path, dead_url())
    replica.open()
    try:
        size = replica.config.queue_size
        assert replica.room() == size
        replica.queue.put_many([op(1), op(2)])
        assert replica.room() == size - 2
    finally:
        replica.persist()
        replica.close()
