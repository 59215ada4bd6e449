"""``syncd run`` as a real third process between two real database processes.

The primary and the secondary are devserver processes on 127.0.0.1; writes go
to the primary through the SDK (raw queries, ``RETURN NONE`` included), never
through syncd. Each test then waits for the secondary to equal the primary.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.daemon import (
    SyncdProcess,
    connect,
    converge,
    events_daemon,
)
from tests.support.replica import secondary_rows
from tests.support.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def queue_depth(syncd: SyncdProcess) -> int:
    """Operations the daemon holds in memory (0 while /status does not answer)."""
    code, body = syncd.http("/status")
    return int(json.loads(body)["queue_depth"]) if code == 200 else 0


async def test_raw_queries_and_return_none_replicate_and_sigterm_drains(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db, syncd = await events_daemon(primary_server, secondary_server, syncd_factory)
    await db.query("CREATE events:1 SET n = 1 RETURN NONE")
    await db.query("INSERT INTO events [{ id: 2, n: 2 }, { id: 3, n: 3 }] RETURN NONE")
    await db.query("FOR $i IN 4..20 { UPSERT events CONTENT {id: $i, n: $i} }")
    await db.query("UPDATE events:1 SET n = 100 RETURN NONE")
    await db.query("DELETE events:3")
    await converge(db, secondary_server.url, "events")
    replica = await secondary_rows(secondary_server.url, "events")
    assert replica["events:3"]["n"] == 3  # deletes are not propagated
    status = json.loads(syncd.http("/status")[1])
    assert status["checkpoint"]["position"] is not None
    started = time.monotonic()
    assert syncd.terminate() == 0
    assert time.monotonic() - started < 15
    assert json.loads((syncd.state / "checkpoint.json").read_text())["positions"]["database"] > 0
    await db.close()


async def test_first_start_backfills_while_writes_continue(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db = await connect(primary_server.url)
    # A table without a changefeed, holding data: syncd must enable the feed
    # itself (tables omitted = every table) and copy what is there.
    await db.query("DEFINE TABLE notes SCHEMAFULL; DEFINE FIELD n ON notes TYPE int")
    await db.query("FOR $i IN 0..2500 { CREATE notes CONTENT {id: $i, n: $i} }")
    syncd = syncd_factory(primary_server.url, secondary_server.url)
    syncd.start()
    for i in range(2500, 2800):  # writes during start-up and backfill
        await db.query(f"UPSERT notes:{i} SET n = {i} RETURN NONE")
        await db.query(f"UPDATE notes:{i - 2500} SET n = -1 RETURN NONE")
    syncd.wait_ready()
    await db.query("UPSERT notes:9999 SET n = 9999")
    await converge(db, secondary_server.url, "notes")
    info = await db.query("INFO FOR DB")
    assert "CHANGEFEED" in info["tables"]["notes"] and "SCHEMAFULL" in info["tables"]["notes"]
    await db.close()


async def test_sigkill_three_times_during_a_stream_loses_nothing(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db, syncd = await events_daemon(primary_server, secondary_server, syncd_factory)
    written = 0
    for _ in range(3):
        for _ in range(400):
            await db.query(f"UPSERT events:{written % 300} SET n = {written} RETURN NONE")
            written += 1
        syncd.kill()
        for _ in range(200):  # writes while syncd is dead
            await db.query(f"UPSERT events:{written % 300} SET n = {written} RETURN NONE")
            written += 1
        syncd.start()
        syncd.wait_ready()
    await converge(db, secondary_server.url, "events")
    await db.close()


async def test_secondary_killed_and_frozen_during_the_stream(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db, syncd = await events_daemon(
        primary_server, secondary_server, syncd_factory, readyz_down_threshold="1s"
    )
    for i in range(300):
        await db.query(f"UPSERT events:{i % 100} SET n = {i} RETURN NONE")
    secondary_server.kill()
    for i in range(300, 600):
        await db.query(f"UPSERT events:{i % 100} SET n = {i} RETURN NONE")
    # Polling another process's endpoint: there is no event to wait on.
    await until(lambda: syncd.http("/readyz")[0] == 503, 60)  # flips while it is down
    secondary_server.start()
    await converge(db, secondary_server.url, "events")
    assert syncd.http("/readyz")[0] == 200
    downs = len(syncd.events("connection_down", role="secondary"))
    secondary_server.freeze()
    try:
        for i in range(600, 800):
            await db.query(f"UPSERT events:{i % 100} SET n = {i} RETURN NONE")
        # A write or a health check times out: the daemon takes it for down.
        await until(lambda: len(syncd.events("connection_down", role="secondary")) > downs, 60)
    finally:
        secondary_server.thaw()
    await converge(db, secondary_server.url, "events")
    await db.close()


async def test_missing_changefeed_without_auto_enable_exits_2_naming_the_fix(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db = await connect(primary_server.url)
    await db.query("CREATE plain:1 SET n = 1")
    await db.close()
    syncd = syncd_factory(
        primary_server.url,
        secondary_server.url,
        tables={"plain": {}},
        changefeed_auto_enable=False,
    )
    syncd.start()
    assert syncd.proc is not None
    assert syncd.proc.wait(60) == 2
    lines = [ln for ln in syncd.log.read_text().splitlines() if ln.startswith("syncd:")]
    assert len(lines) == 1
    assert "plain" in lines[0] and "DEFINE TABLE OVERWRITE plain CHANGEFEED" in lines[0]
    assert "Traceback" not in syncd.log.read_text()


async def test_notify_socket_gets_ready_watchdog_status_stopping_in_order(
    tmp_path: Path,
    primary_server: ServerProcess,
    secondary_server: ServerProcess,
    syncd_factory: Any,
) -> None:
    db = await connect(primary_server.url)
    await db.query("DEFINE TABLE events CHANGEFEED 1d")
    await db.close()
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    try:
        syncd = syncd_factory(primary_server.url, secondary_server.url, tables={"events": {}})
        syncd.start(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
        syncd.wait_ready()
        messages: list[str] = []

        def kinds() -> list[str]:
            return [m.splitlines()[0].split("=")[0] for m in messages]

        def receive() -> bool:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                return False
            return True

        await until(lambda: receive() and kinds().count("WATCHDOG") >= 2, 60)
        assert syncd.terminate() == 0
        while receive():
            pass
    finally:
        sock.close()
    kinds = kinds()
    assert "READY" in kinds and "STOPPING" in kinds
    assert kinds.index("READY") < kinds.index("STOPPING")
    assert kinds.count("WATCHDOG") >= 2
    ready = messages[kinds.index("READY")]
    assert "STATUS=lag" in ready and "queue" in ready


async def test_primary_restarted_during_the_stream_and_a_second_signal_exits_at_once(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db, syncd = await events_daemon(primary_server, secondary_server, syncd_factory)
    for i in range(200):
        await db.query(f"UPSERT events:{i} SET n = {i} RETURN NONE")
    await db.close()
    primary_server.kill()
    # The daemon sees the primary gone and keeps running.
    await until(lambda: syncd.events("connection_down", role="primary"), 60)
    assert syncd.proc is not None and syncd.proc.poll() is None
    primary_server.start()  # same store, same port
    db = await connect(primary_server.url)
    for i in range(200, 400):
        await db.query(f"UPSERT events:{i} SET n = {i} RETURN NONE")
    await converge(db, secondary_server.url, "events")
    # Two signals while a drain is stuck on a frozen secondary: the second one
    # exits at once, and the checkpoint still protects what was not applied.
    secondary_server.freeze()
    try:
        for i in range(400, 450):
            await db.query(f"UPSERT events:{i} SET n = {i} RETURN NONE")
        await until(lambda: queue_depth(syncd) > 0, 60)  # read, and stuck on the secondary
        syncd.proc.send_signal(signal.SIGTERM)
        await until(lambda: syncd.events("daemon_draining"), 60)
        started = time.monotonic()
        syncd.proc.send_signal(signal.SIGTERM)
        assert syncd.proc.wait(10) != 0
        assert time.monotonic() - started < 3
    finally:
        secondary_server.thaw()
    syncd.start()
    syncd.wait_ready()
    await converge(db, secondary_server.url, "events")
    await db.close()


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_sigterm_during_backfill_with_secondary_down_exits(
    primary_server: ServerProcess,
    secondary_server: ServerProcess,
    syncd_factory: Any,
) -> None:
    db = await connect(primary_server.url)
    await db.query("DEFINE TABLE events CHANGEFEED 1d")
    await db.query("FOR $i IN 1..50 { CREATE events CONTENT {id: $i, n: $i} }")
    await db.close()
    secondary_server.stop()
    syncd = syncd_factory(
        primary_server.url, secondary_server.url, tables={"events": {}}, drain_timeout="2s"
    )
    syncd.start()
    deadline = time.monotonic() + 60
    while "backfill_table_started" not in syncd.log.read_text():
        assert time.monotonic() < deadline, syncd.log.read_text()
        assert syncd.proc.poll() is None, syncd.log.read_text()
        await anyio.sleep(0.1)
    await until(lambda: queue_depth(syncd) > 0, 60)  # a chunk copied, waiting on the secondary
    syncd.proc.send_signal(signal.SIGTERM)
    try:
        code = syncd.proc.wait(15)  # drain_timeout 2 s + margin
    except subprocess.TimeoutExpired:
        raise AssertionError("syncd ignored SIGTERM for 15 s during backfill") from None
    assert code == 0


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_primary_outage_during_backfill_is_waited_out(
    primary_server: ServerProcess,
    secondary_server: ServerProcess,
    syncd_factory: Any,
) -> None:
    db = await connect(primary_server.url)
    await db.query("DEFINE TABLE events CHANGEFEED 1d")
    await db.query("FOR $i IN 1..2500 { CREATE events CONTENT {id: $i, n: $i} }")
    await db.close()
    secondary_server.stop()  # the first chunk waits to be applied
    syncd = syncd_factory(primary_server.url, secondary_server.url, tables={"events": {}})
    syncd.start()
    deadline = time.monotonic() + 60
    while "backfill_table_started" not in syncd.log.read_text():
        assert time.monotonic() < deadline, syncd.log.read_text()
        await anyio.sleep(0.1)
    await until(lambda: queue_depth(syncd) > 0, 60)  # the first chunk waits on the secondary
    primary_server.kill()  # a primary blip...
    secondary_server.start()  # ...just when the next chunk is due
    deadline = time.monotonic() + 60
    while "backfill_waiting_for_primary" not in syncd.log.read_text():
        code = syncd.proc.poll()
        assert code is None, (
            f"syncd exited {code} on a primary outage:\n{syncd.log.read_text()[-800:]}"
        )
        assert time.monotonic() < deadline, syncd.log.read_text()[-800:]
        await anyio.sleep(0.1)
    primary_server.start()  # the primary is back: the copy goes on and completes
    db = await connect(primary_server.url)
    try:
        await converge(db, secondary_server.url, "events", within=90)
    finally:
        await db.close()
    assert syncd.proc.poll() is None


async def test_a_changefeed_dropped_under_the_daemon_is_reported_restored_and_copied(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db, syncd = await events_daemon(primary_server, secondary_server, syncd_factory)
    await db.query("FOR $i IN 0..20 { UPSERT events CONTENT {id: $i, n: $i} }")
    await converge(db, secondary_server.url, "events")
    # A migration tool redefines the table without its changefeed: writes
    # from here on reach no feed.
    await db.query("DEFINE TABLE OVERWRITE events TYPE ANY SCHEMALESS PERMISSIONS NONE")
    await db.query("FOR $i IN 20..40 { UPSERT events CONTENT {id: $i, n: $i} }")
    # Found within a scan (10 s), said at error level; the feed is enabled
    # again and the table copied, so the writes of the gap arrive too.
    await until(lambda: '"changefeed_lost"' in syncd.log.read_text(), seconds=60)
    await converge(db, secondary_server.url, "events", within=90)
    await until(lambda: '"changefeed_restored"' in syncd.log.read_text(), seconds=60)
    await until(lambda: syncd.http("/readyz")[0] == 200, seconds=60)
    info = await db.query("INFO FOR DB")
    assert "CHANGEFEED" in info["tables"]["events"]
    assert syncd.terminate() == 0
    await db.close()


async def test_a_lost_changefeed_without_auto_enable_keeps_the_daemon_unready(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db, syncd = await events_daemon(
        primary_server, secondary_server, syncd_factory, changefeed_auto_enable=False
    )
    await db.query("DEFINE TABLE OVERWRITE events TYPE ANY SCHEMALESS PERMISSIONS NONE")
    await until(lambda: syncd.http("/readyz")[0] == 503, seconds=60)
    _, body = syncd.http("/readyz")
    assert "changefeed lost on the primary: events" in body, body
    assert syncd.proc is not None and syncd.proc.poll() is None  # up, not exited
    # The operator restores the feed: the table is copied, the daemon is ready.
    await db.query("DEFINE TABLE OVERWRITE events TYPE ANY SCHEMALESS CHANGEFEED 1d")
    await db.query("UPSERT events:7 SET n = 7")
    await until(lambda: syncd.http("/readyz")[0] == 200, seconds=60)
    await converge(db, secondary_server.url, "events", within=60)
    assert syncd.terminate() == 0
    await db.close()


async def test_the_daemon_logs_a_summary_line_now_and_then(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db, syncd = await events_daemon(
        primary_server, secondary_server, syncd_factory, log_summary_interval="500ms"
    )
    await db.query("CREATE events:1 SET n = 1")

    def summaries() -> list[dict[str, Any]]:
        lines = [json.loads(x) for x in syncd.log.read_text().splitlines() if x.startswith("{")]
        return [e for e in lines if e.get("event") == "replication_summary"]

    await until(lambda: any(e["applied"] >= 1 for e in summaries()), 30)
    last = summaries()[-1]
    assert last["level"] == "info"
    assert {"applied", "applied_per_second", "lag_seconds", "backlog", "secondaries"} <= set(last)
    assert last["secondaries"].endswith("secondary up")
    assert "events:1" not in syncd.log.read_text()  # counts, never records
    await db.close()
