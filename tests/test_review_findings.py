"""Review findings: each test proves a correctness bug under failure.

Every proving test is marked ``xfail(strict=True)`` so the suite stays green
until the bug is fixed; the fix flips it to XPASS, which fails the run and
tells whoever fixed it to drop the marker.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from prometheus_client import CollectorRegistry
from surrealdb import RecordID

from syncd.pipeline.queue import SyncQueue
from syncd.pipeline.spool import Spool
from syncd.service.replicator import Replicator
from syncd.sink.operation import Operation
from tests.support.replica import connect_secondary, make_config
from tests.support.server import ServerProcess
from tests.test_daemon import connect as connect_primary
from tests.test_daemon import syncd_factory  # noqa: F401  (a fixture)


def replicator(tmp_path: Path, url: str, **overrides: Any) -> Replicator:
    return Replicator(make_config(tmp_path, url, **overrides), registry=CollectorRegistry())


def dead_url() -> str:
    """A ws:// URL on which nothing listens (a secondary that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{s.getsockname()[1]}"


def op(key: str, v: int, seq: int = 0) -> Operation:
    return Operation(table="t", key=key, record={"id": key, "v": v}, seq=seq)


def spooled_count(state: Path) -> int:
    spool = Spool(state / "spool")
    spool.open()
    try:
        return len(spool)
    finally:
        spool.close()


# -- 2. a failing background task cancels the application and loses the queue -----


@pytest.mark.integration
@pytest.mark.timeout(90)
async def test_dead_letter_write_failure_does_not_cancel_the_application(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    admin = await connect_secondary(secondary_server.url)
    await admin.query("DEFINE TABLE strict SCHEMAFULL; DEFINE FIELD n ON strict TYPE int")
    await admin.close()
    finished_body = False
    async with replicator(tmp_path, secondary_server.url, sync_max_retries=1) as rep:
        db = rep.wrap(primary)
        # The dead-letter file cannot be written (stands in for ENOSPC/EIO: the
        # spool may well have filled the disk during the outage).
        (tmp_path / "state" / "deadletters.jsonl").mkdir()
        await db.create(RecordID("strict", 1), {"n": "not a number"})
        for i in range(2, 20):
            await db.create(RecordID("strict", i), {"n": i})
            await anyio.sleep(0.1)  # the application goes on with its work
        finished_body = True
    assert finished_body
    # The refused record was neither dead-lettered nor dropped: it waits in the spool.
    assert spooled_count(tmp_path / "state") >= 1


# -- 3. two processes on one state_dir overwrite each other's spool ----------------


async def test_two_openers_of_one_spool_lose_nothing_or_are_refused(tmp_path: Path) -> None:
    from syncd.errors import ConfigError

    first = replicator(tmp_path, dead_url())
    second = replicator(tmp_path, dead_url())
    async with first:
        with pytest.raises(ConfigError, match="in use by another syncd process"):
            async with second:
                pass
    async with second:  # free again once the first has stopped
        pass


# -- 4. a spooled operation is deleted from disk when read, not when applied -------


async def test_spooled_operations_survive_a_crash_after_refill(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.open()
    spool.append([op(f"k{v}", v, seq=v) for v in range(1, 11)])
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


# -- 5. a write after (or racing) shutdown fails although the primary committed ----


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_a_write_after_shutdown_does_not_fail_the_application(
    tmp_path: Path, primary: Any
) -> None:
    async with replicator(tmp_path, dead_url(), drain_timeout="1s") as rep:
        db = rep.wrap(primary)
    # e.g. a request handler still running in the application's outer task group
    await db.create(RecordID("events", "late"), {"n": 1})
    assert await primary.select(RecordID("events", "late"))


# -- 6. SIGTERM is ignored while the first backfill waits on a down secondary ------


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_sigterm_during_backfill_with_secondary_down_exits(
    primary_server: ServerProcess,
    secondary_server: ServerProcess,
    syncd_factory: Any,  # noqa: F811
) -> None:
    db = await connect_primary(primary_server.url)
    await db.query("DEFINE TABLE events CHANGEFEED 1d")
    await db.query("FOR $i IN 1..50 { CREATE type::thing('events', $i) SET n = $i }")
    await db.close()
    secondary_server.stop()
    syncd = syncd_factory(
        primary_server.url, secondary_server.url, tables={"events": {}}, drain_timeout="2s"
    )
    syncd.start()
    deadline = time.monotonic() + 30
    while "backfill_table_started" not in syncd.log.read_text():
        assert time.monotonic() < deadline, syncd.log.read_text()
        assert syncd.proc.poll() is None, syncd.log.read_text()
        await anyio.sleep(0.1)
    await anyio.sleep(0.5)
    syncd.proc.send_signal(signal.SIGTERM)
    try:
        code = syncd.proc.wait(15)  # drain_timeout 2 s + margin
    except subprocess.TimeoutExpired:
        raise AssertionError("syncd ignored SIGTERM for 15 s during backfill") from None
    assert code == 0


# -- 7. library mode: log.exception renders frame locals (records, secrets) --------


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_batch_failure_log_does_not_contain_record_contents(
    tmp_path: Path, secondary_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = structlog.get_config()
    structlog.reset_defaults()  # what an application that never configured structlog runs
    try:
        async with replicator(
            tmp_path, secondary_server.url, sync_max_retries=100, sync_workers=1
        ) as rep:
            secret = {"id": RecordID("users", "u1"), "api_token": "hunter2-very-secret"}
            unencodable = {"id": RecordID("users", "u2"), "blob": object()}
            rep.capture([secret, unencodable])
            await anyio.sleep(1.5)  # a worker fails the batch and logs it
            # The unencodable record cannot be spooled at shutdown either.
            rep.queue.persist = lambda: 0  # type: ignore[method-assign]
        out = capsys.readouterr()
    finally:
        structlog.configure(**saved)
    text = out.out + out.err
    assert "batch_failed" in text
    assert "hunter2-very-secret" not in text


# -- 8. a primary blip during the first backfill stops the daemon for good ---------


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_primary_outage_during_backfill_is_waited_out(
    primary_server: ServerProcess,
    secondary_server: ServerProcess,
    syncd_factory: Any,  # noqa: F811
) -> None:
    db = await connect_primary(primary_server.url)
    await db.query("DEFINE TABLE events CHANGEFEED 1d")
    await db.query("FOR $i IN 1..2500 { CREATE type::thing('events', $i) SET n = $i }")
    await db.close()
    secondary_server.stop()  # the first chunk waits to be applied
    syncd = syncd_factory(primary_server.url, secondary_server.url, tables={"events": {}})
    syncd.start()
    deadline = time.monotonic() + 30
    while "backfill_table_started" not in syncd.log.read_text():
        assert time.monotonic() < deadline, syncd.log.read_text()
        await anyio.sleep(0.1)
    await anyio.sleep(0.5)
    primary_server.kill()  # a primary blip...
    secondary_server.start()  # ...just when the next chunk is due
    await anyio.sleep(8)
    code = syncd.proc.poll()
    assert code is None, f"syncd exited {code} on a primary outage:\n{syncd.log.read_text()[-800:]}"


# -- 9. a primary error in a merged read surfaces as an ExceptionGroup --------------


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_a_primary_error_in_a_merged_read_is_the_sdks_own(
    tmp_path: Path, primary: Any
) -> None:
    with pytest.raises(RuntimeError):
        await primary.select("a b")  # the bare SDK: a parse error, RuntimeError
    async with replicator(tmp_path, dead_url()) as rep:
        db = rep.wrap(primary)
        with pytest.raises(RuntimeError):
            await db.select("a b")
