"""The library without an event loop: BlockingReplicator around blocking SDK connections.

A blocking embedded primary in the test's thread, a secondary in a real
process on 127.0.0.1; every test compares what the secondary holds with what
the primary holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry
from surrealdb import AsyncSurreal, RecordID, Surreal

from syncd import BlockingReplicator, Replicator
from syncd.dev.process import DevServerProcess as ServerProcess
from tests.capture.test_exact_values import LITERAL, assert_exact, exact_rows
from tests.support.replica import DATABASE, NAMESPACE, make_config, secondary_rows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

_URLS = ("ws://127.0.0.1:9/rpc", "http://127.0.0.1:9", "mem://")


def blocking_replicator(tmp_path: Path, url: str, **overrides: Any) -> BlockingReplicator:
    """A BlockingReplicator on the test config, with a registry of its own."""
    return BlockingReplicator(make_config(tmp_path, url, **overrides), registry=CollectorRegistry())


@contextmanager
def blocking_primary() -> Iterator[Any]:
    """A blocking embedded in-memory primary using app/main."""
    db: Any = Surreal("mem://")
    db.connect()
    db.use("app", "main")
    try:
        yield db
    finally:
        db.close()
        time.sleep(0.1)  # the engine's threads wind down (see embedded_primary)


def rows(db: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every row of ``table`` by record id (none when the table is not defined)."""
    try:
        found = db.query(f"SELECT * FROM {table}")
    except Exception as exc:
        if "does not exist" not in str(exc):
            raise
        found = []
    return {str(r["id"]): dict(r) for r in found}


def replica_rows(url: str, table: str) -> dict[str, dict[str, Any]]:
    """``table`` as the secondary holds it (read with the async SDK: its blocking
    WebSocket client warns under websockets 17.1)."""
    return anyio.run(secondary_rows, url, table)


def wait_until(condition: Callable[[], object], seconds: float = 20.0) -> None:
    """Return once ``condition()`` is true; fail after ``seconds`` (threads, no loop)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_blocking_writes_replicate_and_reads_merge(
    tmp_path: Path, secondary_server: ServerProcess
) -> None:
    with blocking_primary() as primary, blocking_replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        db.create(RecordID("events", "c"), {"n": 1})
        db.upsert(RecordID("events", "u"), {"n": 2})
        db.merge(RecordID("events", "c"), {"extra": True})
        db.insert("events", [{"id": RecordID("events", "i1"), "n": 4}])
        db.query("CREATE events:q SET n = 6; UPDATE events:u SET m = 1")
        db.query_raw("BEGIN; CREATE events:gone SET n = 8; COMMIT")
        db.delete(RecordID("events", "gone"))
        rep.flush(timeout=30)
        assert rep.status()["ready"] == {"ok": True, "reason": "ready"}
        # The secondary keeps what the primary deleted: a merged read finds it.
        merged = {str(r["id"]) for r in db.select("events")}
        assert "events:gone" in merged
        assert len(db.query("SELECT * FROM events WHERE n = 8")) == 1
        expected = rows(primary, "events")
    replica = replica_rows(secondary_server.url, "events")
    assert replica.pop("events:gone")["n"] == 8
    assert replica == expected


def test_pause_resume_and_flush_from_plain_calls(
    tmp_path: Path, secondary_server: ServerProcess
) -> None:
    with blocking_primary() as primary, blocking_replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        rep.pause()
        assert rep.is_paused()
        db.upsert(RecordID("events", "p"), {"n": 1})
        rep.flush(timeout=5)  # a paused secondary is not waited for
        assert replica_rows(secondary_server.url, "events") == {}
        rep.resume()
        assert not rep.is_paused()
        rep.flush(timeout=30)
        assert list(replica_rows(secondary_server.url, "events")) == ["events:p"]


@pytest.mark.parametrize("url", _URLS)
def test_each_replicator_refuses_the_other_kind(url: str, tmp_path: Path) -> None:
    async_rep = Replicator(make_config(tmp_path, "ws://127.0.0.1:9"), registry=CollectorRegistry())
    with pytest.raises(TypeError, match=r"syncd\.BlockingReplicator"):
        async_rep.wrap(Surreal(url))
    blocking_rep = blocking_replicator(tmp_path, "ws://127.0.0.1:9")
    with pytest.raises(TypeError, match=r"wrap an asynchronous connection with syncd\.Replicator"):
        blocking_rep.wrap(AsyncSurreal(url))


def test_unknown_objects_are_refused(tmp_path: Path) -> None:
    rep = Replicator(make_config(tmp_path, "ws://127.0.0.1:9"), registry=CollectorRegistry())
    with pytest.raises(TypeError, match="takes an asynchronous SurrealDB SDK connection"):
        rep.wrap(object())
    with pytest.raises(TypeError, match="takes a blocking SurrealDB SDK connection"):
        blocking_replicator(tmp_path, "ws://127.0.0.1:9").wrap({"not": "a connection"})


def test_eight_threads_through_a_secondary_killed_and_frozen(
    tmp_path: Path, secondary_server: ServerProcess
) -> None:
    threads, per_thread = 8, 150
    with blocking_primary() as primary, blocking_replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        written = [0] * threads
        errors: list[BaseException] = []

        def writer(t: int) -> None:
            try:
                for i in range(per_thread):
                    # Records shared across threads too: the newest state must win.
                    db.upsert(RecordID("events", f"r{(t * 7 + i) % 200}"), {"t": t, "i": i})
                    db.upsert(RecordID("events", f"own{t}"), {"i": i})
                    written[t] = i + 1
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        wait_until(lambda: sum(written) > threads * per_thread // 4)
        secondary_server.kill()
        wait_until(lambda: sum(written) > threads * per_thread // 2)
        secondary_server.restart()
        wait_until(lambda: sum(written) > threads * per_thread * 3 // 4)
        secondary_server.freeze()
        for w in workers:
            w.join(timeout=120)
        secondary_server.thaw()
        assert not errors
        assert written == [per_thread] * threads
        rep.flush(timeout=60)
        expected = rows(primary, "events")
    assert replica_rows(secondary_server.url, "events") == expected


def test_blocking_capture_is_exact(tmp_path: Path, secondary_server: ServerProcess) -> None:
    with blocking_primary() as primary, blocking_replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        db.query(f"CREATE vals:1 CONTENT {LITERAL}")
        db.upsert(RecordID("vals", 2), {"n": 1})
        db.query(f"UPDATE vals:2 CONTENT {LITERAL}")
        db.query_raw(f"BEGIN; CREATE vals:3 CONTENT {LITERAL}; COMMIT")
        rep.flush(timeout=60)
    replica = anyio.run(exact_rows, secondary_server.url, NAMESPACE, DATABASE, "vals")
    assert sorted(replica) == ["vals:1", "vals:2", "vals:3"]
    for row in replica.values():
        assert_exact(row)


def test_writes_after_the_replicator_stopped_still_reach_the_primary(
    tmp_path: Path, secondary_server: ServerProcess
) -> None:
    with blocking_primary() as primary:
        with blocking_replicator(tmp_path, secondary_server.url) as rep:
            db = rep.wrap(primary)
            db.upsert(RecordID("events", "before"), {"n": 1})
        db.upsert(RecordID("events", "after"), {"n": 2})  # counted as not captured, not raised
        assert sorted(rows(primary, "events")) == ["events:after", "events:before"]
        assert sorted(str(r["id"]) for r in db.select("events")) == sorted(rows(primary, "events"))
        registry = rep.metrics.registry
    name = "syncd_uncaptured_writes_total"
    assert registry.get_sample_value(name, {"reason": "replicator_closed"}) == 1


def test_a_merged_read_with_a_frozen_secondary_is_bounded_by_query_timeout(
    tmp_path: Path, secondary_server: ServerProcess
) -> None:
    with blocking_primary() as primary, blocking_replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        db.upsert(RecordID("events", "a"), {"n": 1})
        rep.flush(timeout=30)
        secondary_server.freeze()
        try:
            start = time.monotonic()
            assert [str(r["id"]) for r in db.select("events")] == ["events:a"]
            took = time.monotonic() - start
        finally:
            secondary_server.thaw()
    # query_timeout is 500 ms in the test config; the primary's read is the rest.
    assert took < 0.5 * 1.1 + 0.5, took
