"""The library end to end: an embedded primary, a secondary in a real process on 127.0.0.1.

Every test here compares what the secondary holds with what the primary holds,
record by record, after the failure it inflicts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from surrealdb import RecordID

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.errors import ConfigError
from syncd.pipeline.spool import Spool
from tests.support.replica import (
    connect_secondary,
    dead_url,
    replicator,
    rows_by_id,
    secondary_rows,
    spooled_count,
)
from tests.support.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def test_every_kind_of_write_replicates_and_deletes_do_not(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    async with replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        await db.create(RecordID("events", "c"), {"n": 1})
        await db.upsert(RecordID("events", "u"), {"n": 2})
        await db.update(RecordID("events", "u"), {"n": 3})
        await db.merge(RecordID("events", "c"), {"extra": True})
        await db.insert("events", [{"id": RecordID("events", "i1"), "n": 4}, {"n": 5}])
        await db.query("CREATE events:q SET n = 6; UPDATE events:u SET m = 1")
        await db.query("INSERT INTO events { id: events:gone, n: 7 }")
        await db.delete(RecordID("events", "gone"))
        await db.query_raw("BEGIN; CREATE events:t1 SET n = 8; CREATE events:t2 SET n = 9; COMMIT")
        await rep.flush(timeout=30)
        snapshot = rep.metrics.snapshot()
    primary_rows = await rows_by_id(primary, "events")
    replica = await secondary_rows(secondary_server.url, "events")
    # The deleted record stays on the secondary: deletes are not propagated.
    assert replica.pop("events:gone")["n"] == 7
    assert replica == primary_rows
    assert snapshot["applied"] >= len(primary_rows)


async def test_tables_not_selected_are_not_replicated(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    async with replicator(tmp_path, secondary_server.url, tables={"events": {}}) as rep:
        db = rep.wrap(primary)
        await db.create(RecordID("events", "a"), {"n": 1})
        await db.create(RecordID("private", "a"), {"n": 1})
        await rep.flush(timeout=30)
    assert list(await secondary_rows(secondary_server.url, "events")) == ["events:a"]
    assert await secondary_rows(secondary_server.url, "private") == {}


async def test_secondary_killed_and_restarted_mid_stream(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    async with replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        for i in range(900):
            await db.upsert(RecordID("events", i % 200), {"n": i})
            if i == 300:
                secondary_server.kill()
            if i == 600:
                # The outage lasts until syncd has seen it.
                await until(lambda: not rep.fanout.first.is_up, 30)
                secondary_server.start()
            if i % 50 == 0:
                await anyio.sleep(0.01)  # writes and drain interleave, as in an application
        await rep.flush(timeout=60)
        assert rep.metrics.snapshot()["reconnects"] >= 1
    assert await secondary_rows(secondary_server.url, "events") == await rows_by_id(
        primary, "events"
    )


async def test_frozen_secondary_neither_blocks_writes_nor_hangs_reads(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    async with replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        await db.create(RecordID("events", "before"), {"n": 0})
        await rep.flush(timeout=30)
        secondary_server.freeze()
        try:
            slowest = 0.0
            for i in range(300):
                started = time.perf_counter()
                await db.upsert(RecordID("events", i), {"n": i})
                slowest = max(slowest, time.perf_counter() - started)
            started = time.perf_counter()
            rows = await db.select("events")
            read_time = time.perf_counter() - started
        finally:
            secondary_server.thaw()
        assert slowest < 0.25, f"a write waited {slowest:.3f}s on a frozen secondary"
        query_timeout = rep.config.query_timeout
        assert read_time < query_timeout * 1.1 + 0.25, f"merged read took {read_time:.3f}s"
        assert len(rows) == 301  # the primary's rows came back alone
        await rep.flush(timeout=60)
    assert await secondary_rows(secondary_server.url, "events") == await rows_by_id(
        primary, "events"
    )


async def test_secondary_down_at_start_up(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    secondary_server.stop()
    async with replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        for i in range(50):
            await db.create(RecordID("events", i), {"n": i})
        assert not any(r.is_up for r in rep.fanout)
        rows = await db.select("events")
        assert len(rows) == 50
        assert rep.metrics.snapshot()["merged_reads"] == 1
        secondary_server.start()
        await rep.flush(timeout=60)
    assert len(await secondary_rows(secondary_server.url, "events")) == 50


async def test_backlog_larger_than_the_queue_spills_and_nothing_is_lost(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    secondary_server.stop()
    async with replicator(tmp_path, secondary_server.url, queue_size=100) as rep:
        db = rep.wrap(primary)
        for start in range(0, 3000, 500):
            await db.insert(
                "events", [{"id": RecordID("events", i), "n": i} for i in range(start, start + 500)]
            )
        assert rep.fanout.spool_depth > 2000
        # Memory holds at most the queue plus one batch in each worker's hands.
        config = rep.config
        assert (
            rep.fanout.queue_depth
            <= config.queue_size + config.sync_workers * config.sync_batch_size
        )
        secondary_server.start()
        await rep.flush(timeout=90)
        assert rep.fanout.spool_depth == 0
    replica = await secondary_rows(secondary_server.url, "events")
    assert replica == await rows_by_id(primary, "events")
    assert len(replica) == 3000


async def test_eight_workers_on_hot_records_keep_per_record_order(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    async with replicator(
        tmp_path, secondary_server.url, sync_workers=8, sync_batch_size=20
    ) as rep:
        db = rep.wrap(primary)
        for i in range(3000):
            await db.upsert(RecordID("hot", i % 50), {"version": i, "tag": f"v{i}"})
            if i % 300 == 0:
                await anyio.sleep(0.01)  # let workers interleave with the writes
        await rep.flush(timeout=60)
    primary_rows = await rows_by_id(primary, "hot")
    replica = await secondary_rows(secondary_server.url, "hot")
    assert len(primary_rows) == 50
    for key, row in primary_rows.items():
        assert replica[key] == row, f"{key}: secondary has a stale version"


async def test_a_rejected_record_is_dead_lettered_and_the_rest_applied(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    admin = await connect_secondary(secondary_server.url)
    await admin.query("DEFINE TABLE strict SCHEMAFULL; DEFINE FIELD n ON strict TYPE int")
    await admin.close()
    async with replicator(tmp_path, secondary_server.url, sync_max_retries=2) as rep:
        db = rep.wrap(primary)
        for i in range(20):
            value: Any = "not a number" if i == 7 else i
            await db.create(RecordID("strict", i), {"n": value})
        await rep.flush(timeout=30)
        snapshot = rep.metrics.snapshot()
    replica = await secondary_rows(secondary_server.url, "strict")
    assert sorted(replica) == sorted(f"strict:{i}" for i in range(20) if i != 7)
    assert snapshot["dead_lettered"] == 1
    assert snapshot["retried"] == 1
    lines = (tmp_path / "state" / "deadletters.jsonl").read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["record_id"] == "strict:7" and entry["attempts"] == 2
    # The secondary's own words, as each generation puts them.
    assert "`n`" in entry["error"] and "int" in entry["error"]
    assert (tmp_path / "state" / "deadletters.jsonl").stat().st_mode & 0o777 == 0o600


async def test_natural_key_table_follows_a_record_rewritten_under_a_new_id(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    admin = await connect_secondary(secondary_server.url)
    await admin.query("DEFINE INDEX uk ON kv_memories FIELDS user_id, key UNIQUE")
    await admin.close()
    tables = {"kv_memories": {"key": ["user_id", "key"]}}
    async with replicator(tmp_path, secondary_server.url, tables=tables) as rep:
        db = rep.wrap(primary)
        await db.create("kv_memories", {"user_id": "u1", "key": "k", "value": 1})
        await db.create("kv_memories", {"user_id": "u2", "key": "k", "value": 1})
        await rep.flush(timeout=30)
        for value in (2, 3):
            # The application's save: DELETE + CREATE, a new random id each time.
            await db.query("DELETE kv_memories WHERE user_id = 'u1' AND key = 'k'")
            await db.create("kv_memories", {"user_id": "u1", "key": "k", "value": value})
        await rep.flush(timeout=30)
        assert rep.metrics.snapshot()["dead_lettered"] == 0
        merged = await db.select("kv_memories")
    replica = await secondary_rows(secondary_server.url, "kv_memories")
    by_natural = {(r["user_id"], r["key"]): r["value"] for r in replica.values()}
    assert len(replica) == 2
    assert by_natural == {("u1", "k"): 3, ("u2", "k"): 1}
    assert sorted((r["user_id"], r["value"]) for r in merged) == [("u1", 3), ("u2", 1)]


async def test_merged_reads_overlap_conflicts_order_and_limit(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    admin = await connect_secondary(secondary_server.url)
    # The secondary holds an archived record the primary deleted, and a stale
    # version of one the primary still has.
    await admin.query("CREATE items:archived SET rank = 0, name = 'old'")
    await admin.query("CREATE items:b SET rank = 99, name = 'stale'")
    await admin.close()
    async with replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        for key, rank in (("a", 1), ("b", 2), ("c", 3)):
            await primary.create(RecordID("items", key), {"rank": rank, "name": key})
        rows = await db.select("items")
        by_id = {str(r["id"]): r for r in rows}
        assert set(by_id) == {"items:a", "items:b", "items:c", "items:archived"}
        assert by_id["items:b"]["name"] == "b"  # primary wins
        ordered = await db.query("SELECT * FROM items ORDER BY rank DESC LIMIT 3")
        assert [r["rank"] for r in ordered] == [3, 2, 1]
        ascending = await db.query("SELECT * FROM items ORDER BY rank LIMIT 2")
        assert [str(r["id"]) for r in ascending] == ["items:archived", "items:a"]
        grouped = await db.query("SELECT count() FROM items GROUP ALL")
        assert grouped == [{"count": 4}]  # over the union: a, b, c and the archived record
        assert rep.metrics.snapshot()["merged_reads"] == 4


async def test_clean_shutdown_persists_pending_work_for_the_next_start(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    secondary_server.stop()
    async with replicator(tmp_path, secondary_server.url, drain_timeout="1s") as rep:
        db = rep.wrap(primary)
        for i in range(120):
            await db.upsert(RecordID("events", i % 40), {"n": i})
    spool = Spool(tmp_path / "state" / "spool")
    spool.open()
    persisted = len(spool)
    spool.close()
    assert persisted == 120, "every pending operation reaches the disk"
    secondary_server.start()
    async with replicator(tmp_path, secondary_server.url) as rep:
        await rep.flush(timeout=60)
    assert await secondary_rows(secondary_server.url, "events") == await rows_by_id(
        primary, "events"
    )


async def test_graph_edges_replicate_as_edges(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    async with replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        await db.create(RecordID("entities", "a"), {"name": "a"})
        await db.create(RecordID("entities", "b"), {"name": "b"})
        await db.query("RELATE entities:a->relationships:r1->entities:b SET weight = 1")
        await db.insert_relation(
            "relationships",
            {
                "id": RecordID("relationships", "r2"),
                "in": RecordID("entities", "b"),
                "out": RecordID("entities", "a"),
                "weight": 2,
            },
        )
        await db.query("UPDATE relationships:r1 SET weight = 5")
        await rep.flush(timeout=30)
        assert rep.metrics.snapshot()["dead_lettered"] == 0
    replica = await connect_secondary(secondary_server.url)
    try:
        edges = await rows_by_id(replica, "relationships")
        walked = await replica.query("SELECT VALUE ->relationships->entities FROM ONLY entities:a")
    finally:
        await replica.close()
    assert edges == await rows_by_id(primary, "relationships")
    assert edges["relationships:r1"]["weight"] == 5
    assert walked == [RecordID("entities", "b")]


async def test_a_taken_metrics_port_does_not_stop_an_application(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with replicator(
            tmp_path, secondary_server.url, metrics_listen=f"127.0.0.1:{port}"
        ) as rep:
            assert rep.http is None
            await rep.wrap(primary).create(RecordID("events", 1), {"n": 1})
            await rep.flush(timeout=30)
    assert list(await secondary_rows(secondary_server.url, "events")) == ["events:1"]


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


async def test_two_openers_of_one_spool_lose_nothing_or_are_refused(tmp_path: Path) -> None:
    first = replicator(tmp_path, dead_url())
    second = replicator(tmp_path, dead_url())
    async with first:
        with pytest.raises(ConfigError, match="in use by another syncd process"):
            async with second:
                pass
    async with second:  # free again once the first has stopped
        pass


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
            rep.fanout.capture([secret, unencodable])
            text = ""
            with anyio.fail_after(20):  # a worker fails the batch and logs it
                while "batch_failed" not in text:
                    await anyio.sleep(0.05)
                    seen = capsys.readouterr()
                    text += seen.out + seen.err
            # The unencodable record cannot be spooled at shutdown either.
            rep.fanout.first.queue.persist = lambda: 0  # type: ignore[method-assign]
        out = capsys.readouterr()
    finally:
        structlog.configure(**saved)
    text += out.out + out.err
    assert "batch_failed" in text
    assert "hunter2-very-secret" not in text


@pytest.mark.parametrize("method", ["upsert", "query"])
async def test_concurrent_writers_on_hot_records_leave_the_secondary_equal(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess, method: str
) -> None:
    # Tasks racing on one record are captured in the order their answers
    # reach Python, which need not be the commit order: the wrapper reads a
    # raced record back, so the newest state is what reaches the secondary.
    async with replicator(tmp_path, secondary_server.url, sync_workers=4) as rep:
        db = rep.wrap(primary)

        async def write(w: int, n: int) -> None:
            if method == "upsert":
                await db.upsert(RecordID("hot", n % 50), {"writer": w, "n": n})
            else:
                await db.query(
                    "UPSERT hot CONTENT {id: $k, writer: $w, n: $n}",
                    {"k": n % 50, "w": w, "n": n},
                )

        async def writer(w: int) -> None:
            for i in range(150):
                while True:  # as an application does on a write conflict: retry
                    try:
                        await write(w, w * 1000 + i)
                        break
                    except Exception as exc:
                        if "can be retried" not in str(exc):
                            raise

        async with anyio.create_task_group() as tg:
            for w in range(16):
                tg.start_soon(writer, w)
        await rep.flush(timeout=120)
    primary_rows = await rows_by_id(primary, "hot")
    replica = await secondary_rows(secondary_server.url, "hot")
    assert len(primary_rows) == 50
    stale = [key for key, row in primary_rows.items() if replica.get(key) != row]
    assert not stale, f"{len(stale)} records stale on the secondary, e.g. {stale[:3]}"
