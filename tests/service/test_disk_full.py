"""A full disk, or a spool at ``spool_max_bytes``: the library and the daemon go on, nothing lost.

Library: the application keeps running, the tables whose operations the spool
could not keep are recorded (durably) and copied again from the primary once
the secondary is back. Daemon: it stays up, logs ``spool_disk_full``, stops
reading its changefeed while it cannot spool, and goes on when there is room.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs
from surrealdb import RecordID

from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.daemon import connect, converge, events_daemon
from tests.support.replica import replicator, rows_by_id, secondary_rows
from tests.support.tinydisk import fill, tiny_disk
from tests.support.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def write(db: Any, start: int, count: int, table: str = "events") -> None:
    for n in range(start, start + count):
        await db.upsert(RecordID(table, n % 400), {"n": n, "text": "x" * 100})


async def test_spool_max_bytes_reached_marks_tables_and_a_resync_repairs_them(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    secondary_server.stop()
    async with replicator(tmp_path, secondary_server.url, spool_max_bytes="16KiB") as rep:
        db = rep.wrap(primary)
        with capture_logs() as logs:
            await write(db, 0, 1500)  # never fails, whatever the spool does
            await write(db, 0, 50, table="others")
        events = [e["event"] for e in logs]
        assert events.count("spool_disk_full") == 1 and "resync_marked" in events
        assert rep.status()["resync_pending"] == ["events", "others"]
        gauge = rep.metrics.registry.get_sample_value
        assert gauge("syncd_resync_pending", {"secondary": "secondary", "table": "events"}) == 1
        secondary_server.start()
        await rep.flush(timeout=90)  # applied, and re-synced
        assert rep.status()["resync_pending"] == []
        assert gauge("syncd_resync_pending", {"secondary": "secondary", "table": "events"}) is None
    for table in ("events", "others"):
        assert await secondary_rows(secondary_server.url, table) == await rows_by_id(primary, table)


async def test_disk_full_keeps_the_application_running_and_loses_nothing(
    tmp_path: Path,
    primary: Any,
    secondary_server: ServerProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    secondary_server.stop()
    async with replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        await write(db, 0, 100)  # on disk
        monkeypatch.setattr("syncd.pipeline.spool.write_all", full)
        await write(db, 100, 600)  # the disk is full: the application does not notice
        assert rep.status()["resync_pending"] == ["events"]
        assert rep.fanout.room() == 0
        monkeypatch.undo()  # space again
        await write(db, 700, 100)
        secondary_server.start()
        await rep.flush(timeout=90)
    assert await secondary_rows(secondary_server.url, "events") == await rows_by_id(
        primary, "events"
    )


async def test_a_pending_resync_survives_a_restart(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    secondary_server.stop()
    async with replicator(
        tmp_path, secondary_server.url, spool_max_bytes="8KiB", drain_timeout="1s"
    ) as rep:
        await write(rep.wrap(primary), 0, 800)
        assert rep.status()["resync_pending"] == ["events"]
    # The application stopped (or was killed) before the secondary came back.
    secondary_server.start()
    async with replicator(tmp_path, secondary_server.url) as rep:
        assert rep.status()["resync_pending"] == ["events"]
        rep.wrap(primary)  # the re-sync reads through the application's connection
        await rep.flush(timeout=90)
        assert rep.status()["resync_pending"] == []
    assert await secondary_rows(secondary_server.url, "events") == await rows_by_id(
        primary, "events"
    )


async def test_writes_during_a_resync_are_not_overwritten_by_older_copies(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    secondary_server.stop()
    async with replicator(tmp_path, secondary_server.url, spool_max_bytes="8KiB") as rep:
        db = rep.wrap(primary)
        await write(db, 0, 800)
        secondary_server.start()

        async def keep_writing() -> None:
            for n in range(800, 3000):
                await write(db, n, 1)
                if n % 20 == 0:
                    await anyio.sleep(0.001)

        async with anyio.create_task_group() as tg:
            tg.start_soon(keep_writing)
            await until(lambda: not rep.status()["resync_pending"], 90)
        await rep.flush(timeout=90)
    assert await secondary_rows(secondary_server.url, "events") == await rows_by_id(
        primary, "events"
    )


async def test_library_on_a_full_filesystem_drains_and_recopies_while_it_stays_full(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    secondary_server.stop()
    with tiny_disk(tmp_path / "state", "1m") as state, capture_logs() as logs:
        async with replicator(tmp_path, secondary_server.url) as rep:
            db = rep.wrap(primary)
            for n in range(3000):
                await db.upsert(RecordID("events", n), {"n": n, "text": "x" * 1000})
            events = [e["event"] for e in logs]
            assert "spool_disk_full" in events and rep.status()["resync_pending"] == ["events"]
            filler = state / "filler"
            fill(filler)  # whatever the spool frees, nothing else gets any room
            secondary_server.start()
            await rep.flush(timeout=120)  # drained, and re-copied, on a disk still full
            assert rep.status()["resync_pending"] == []
            assert await secondary_rows(secondary_server.url, "events") == await rows_by_id(
                primary, "events"
            )
            filler.unlink()  # space again
            for n in range(3000, 3100):
                await db.upsert(RecordID("events", n), {"n": n, "text": "y"})
            await rep.flush(timeout=60)
    assert await secondary_rows(secondary_server.url, "events") == await rows_by_id(
        primary, "events"
    )
    failures = [e for e in logs if e["event"] == "spool_io_failed" or "exc_info" in e]
    assert not failures, failures[:3]


async def test_daemon_stays_up_when_the_spool_is_full_and_goes_on(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db, syncd = await events_daemon(
        primary_server, secondary_server, syncd_factory, spool_max_bytes="4KiB"
    )
    secondary_server.stop()

    async def upserts(start: int) -> None:
        await db.query(
            f"FOR $i IN {start}..{start + 500} {{ UPSERT events CONTENT {{id: $i, n: $i}} }}"
        )

    # An empty spool takes any one append, however large (else a transaction
    # bigger than the bound could never pass). So the first transaction is read
    # and spooled before the others are written: read together with them, as a
    # daemon slow to get the CPU does, it would leave no later append to refuse.
    await upserts(0)
    await until(lambda: syncd.metric("syncd_spool_bytes") > 0, 60)
    for start in range(500, 3000, 500):
        await upserts(start)
    await until(lambda: "spool_disk_full" in syncd.log.read_text(), 60)
    assert syncd.proc is not None and syncd.proc.poll() is None
    lines = [json.loads(line) for line in syncd.log.read_text().splitlines() if "{" in line]
    full = [e for e in lines if e.get("event") == "spool_disk_full"]
    assert full and full[0]["level"] == "error"
    secondary_server.start()
    await converge(db, secondary_server.url, "events", within=90)
    assert syncd.proc.poll() is None
    assert "spool_writable_again" in syncd.log.read_text()
    assert syncd.terminate() == 0
    await db.close()


async def test_daemon_on_a_full_filesystem_goes_on_when_space_comes_back(
    tmp_path: Path,
    primary_server: ServerProcess,
    secondary_server: ServerProcess,
    syncd_factory: Any,
) -> None:
    with tiny_disk(tmp_path / "state", "2m") as state:
        db = await connect(primary_server.url)
        await db.query("DEFINE TABLE events CHANGEFEED 1d")
        syncd = syncd_factory(primary_server.url, secondary_server.url, tables={"events": {}})
        syncd.start()
        syncd.wait_ready()
        secondary_server.stop()
        await db.query("FOR $i IN 0..500 { UPSERT events CONTENT {id: $i, n: $i} }")
        filler = state / "filler"
        fill(filler)  # the disk is full: nothing more can be spooled
        for start in range(500, 3000, 500):
            await db.query(
                f"FOR $i IN {start}..{start + 500} "
                f"{{ UPSERT events CONTENT {{id: $i, n: $i, text: '{'x' * 200}'}} }}"
            )
        await until(lambda: "spool_disk_full" in syncd.log.read_text(), 60)
        # Up and answering while the disk stays full (a process only just alive would not).
        await until(lambda: syncd.http("/healthz")[0] == 200, 60)
        assert syncd.proc is not None and syncd.proc.poll() is None
        filler.unlink()  # space again
        secondary_server.start()
        await converge(db, secondary_server.url, "events", within=90)
        assert syncd.proc.poll() is None, syncd.log.read_text()[-3000:]
        assert "Traceback" not in syncd.log.read_text()
        assert syncd.terminate() == 0
        await db.close()
