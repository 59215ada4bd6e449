"""A damaged or missing stretch of the spool costs nothing: its tables are copied again.

Library mode: 600 records are written while the secondary is down, the
application stops, the spool's files are damaged on disk the way a bad disk, a
crash or an operator would, and the next start (secondary up) delivers what
survived and copies again every table whose operations may have been lost:
the secondary ends equal to the primary. Daemon: its feed is its record (the
checkpoint never passes an operation not applied), so a restart on a damaged
spool reads the lost operations from the feed again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from surrealdb import RecordID

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.pipeline.segments import HEADER, Frame, walk
from tests.support.daemon import connect, converge
from tests.support.replica import replicator, rows_by_id, secondary_rows
from tests.support.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TABLES = ("events", "notes")


def frames_of(path: Path) -> list[tuple[int, int]]:
    data = path.read_bytes()
    return [(f.start, f.end) for f in walk(data, HEADER.size, len(data)) if isinstance(f, Frame)]


def flip_bytes(path: Path) -> None:
    start, end = frames_of(path)[300]
    with path.open("r+b") as f:
        f.seek((start + end) // 2)
        data = f.read(4)
        f.seek((start + end) // 2)
        f.write(bytes(b ^ 0xFF for b in data))


def tear_tail(path: Path) -> None:
    start, end = frames_of(path)[-1]
    os.truncate(path, (start + end) // 2)


def cut_to_ten_bytes(path: Path) -> None:
    os.truncate(path, 10)


def remove(path: Path) -> None:
    path.unlink()


def bad_magic(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(b"NOTASPOL")


DAMAGE: dict[str, Callable[[Path], None]] = {
    "bytes_flipped": flip_bytes,
    "torn_tail": tear_tail,
    "cut_to_10_bytes": cut_to_ten_bytes,
    "segment_missing": remove,
    "bad_magic": bad_magic,
}


async def write(db: Any) -> None:
    for n in range(600):
        table = TABLES[n % 2]
        await db.upsert(RecordID(table, n), {"n": n, "text": "x" * 200})


@pytest.mark.parametrize("tables", [None, {"events": {}, "notes": {}}], ids=["all", "listed"])
@pytest.mark.parametrize("kind", list(DAMAGE))
async def test_a_damaged_spool_is_repaired_from_the_primary(
    tmp_path: Path,
    primary: Any,
    secondary_server: ServerProcess,
    kind: str,
    tables: dict[str, Any] | None,
) -> None:
    secondary_server.stop()
    settings: dict[str, Any] = {"drain_timeout": "1s"}
    if tables is not None:
        settings["tables"] = tables
    async with replicator(tmp_path, secondary_server.url, **settings) as rep:
        await write(rep.wrap(primary))
    (segment,) = sorted((tmp_path / "state" / "spool").glob("seg-*.spool"))
    DAMAGE[kind](segment)
    secondary_server.start()
    with capture_logs() as logs:
        async with replicator(tmp_path, secondary_server.url, **settings) as rep:
            rep.wrap(primary)
            await rep.flush(timeout=90)
            assert rep.status()["resync_pending"] == []
    events = [e["event"] for e in logs]
    if kind != "bad_magic":  # a damaged header costs no frame: nothing to copy
        assert "resync_marked" in events and "resync_done" in events, events
    for table in TABLES:
        assert await secondary_rows(secondary_server.url, table) == await rows_by_id(
            primary, table
        ), table


@pytest.mark.parametrize("kind", ["bytes_flipped", "cut_to_10_bytes", "segment_missing"])
async def test_the_daemon_reads_what_its_spool_lost_from_the_feed_again(
    tmp_path: Path,
    primary_server: ServerProcess,
    secondary_server: ServerProcess,
    syncd_factory: Any,
    kind: str,
) -> None:
    db = await connect(primary_server.url)
    await db.query("DEFINE TABLE events CHANGEFEED 1d")
    syncd = syncd_factory(primary_server.url, secondary_server.url, tables={"events": {}})
    syncd.start()
    syncd.wait_ready()
    secondary_server.stop()
    await db.query(f"FOR $i IN 0..600 {{ UPSERT events CONTENT {{id: $i, text: '{'x' * 200}'}} }}")

    def spooled() -> bool:
        status = json.loads(syncd.http("/status")[1] or "{}")
        return int(status.get("queue_depth", 0)) + int(status.get("spool_depth", 0)) >= 600

    await until(spooled, 60)
    syncd.kill()
    (segment,) = sorted((syncd.state / "spool").glob("seg-*.spool"))
    DAMAGE[kind](segment)
    secondary_server.start()
    syncd.start()
    await converge(db, secondary_server.url, "events", within=90)
    assert syncd.terminate() == 0
    assert "Traceback" not in syncd.log.read_text()
    await db.close()
