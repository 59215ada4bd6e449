"""Every secondary replicated on its own: one down or paused holds back only itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from surrealdb import RecordID

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.service.fanout import feed_room
from tests.support.replica import entry, replicator, secondary_rows, spooled_count


async def holds(url: str, count: int, within: float = 30) -> dict[str, Any]:
    """Until the secondary at ``url`` holds ``count`` records of ``t``; its rows."""
    deadline = time.monotonic() + within
    rows: dict[str, Any] = {}
    while time.monotonic() < deadline:
        rows = await secondary_rows(url, "t")
        if len(rows) >= count:
            return rows
        await anyio.sleep(0.1)
    raise AssertionError(f"{url} holds {len(rows)} of {count} records")


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_one_secondary_down_or_paused_holds_back_only_itself(
    tmp_path: Path, primary: Any, engine: int
) -> None:
    with ServerProcess(engine=engine) as a, ServerProcess(engine=engine) as b:
        b.kill()
        secondaries = [entry("a", a.url, 1), entry("b", b.url, 2)]
        async with replicator(tmp_path, None, secondaries=secondaries) as rep:
            db = rep.wrap(primary)
            for i in range(200):
                await db.upsert(RecordID("t", i), {"n": i})
            # b is down: a gets everything anyway, b's backlog waits in its own spool.
            got = await holds(a.url, 200)
            assert {row["n"] for row in got.values()} == set(range(200))
            status = {s["name"]: s for s in rep.status()["secondaries"]}  # type: ignore[attr-defined]
            assert status["a"]["up"] and not status["b"]["up"]
            assert status["b"]["queue_depth"] + status["b"]["spool_depth"] == 200

            b.restart()
            await rep.flush(timeout=30)
            assert len(await secondary_rows(b.url, "t")) == 200

            # a paused: flush waits for b only; a receives nothing until resumed.
            rep.pause("a")
            for i in range(200, 250):
                await db.upsert(RecordID("t", i), {"n": i})
            with anyio.fail_after(10):
                await rep.flush(timeout=10)
            assert len(await secondary_rows(b.url, "t")) == 250
            assert len(await secondary_rows(a.url, "t")) == 200
            rep.resume("a")
            await rep.flush(timeout=30)
            assert len(await secondary_rows(a.url, "t")) == 250
    # Each secondary kept its own spool, under its own directory, now empty.
    state = tmp_path / "state" / "secondaries"
    assert spooled_count(state / "a") == 0 and spooled_count(state / "b") == 0


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_a_spool_of_a_secondary_down_at_exit_is_its_own_next_time(
    tmp_path: Path, primary: Any, engine: int
) -> None:
    with ServerProcess(engine=engine) as a, ServerProcess(engine=engine) as b:
        b.kill()
        secondaries = [entry("a", a.url, 1), entry("b", b.url, 2)]
        overrides: dict[str, Any] = {"secondaries": secondaries, "drain_timeout": "1s"}
        async with replicator(tmp_path, None, **overrides) as rep:
            db = rep.wrap(primary)
            for i in range(30):
                await db.upsert(RecordID("t", i), {"n": i})
            await holds(a.url, 30)
        state = tmp_path / "state" / "secondaries"
        assert spooled_count(state / "a") == 0
        assert spooled_count(state / "b") == 30
        b.restart()
        async with replicator(tmp_path, None, **overrides) as rep:
            await rep.flush(timeout=30)
        assert len(await secondary_rows(b.url, "t")) == 30
        assert len(await secondary_rows(a.url, "t")) == 30


def room(*replicas: tuple[str, int] | tuple[str, int, bool]) -> int:
    """The feed's room for replicas given as ``(name, room[, writable])``."""
    return feed_room([(r[2] if len(r) == 3 else True, r[1]) for r in replicas])


def test_the_feed_goes_at_the_pace_of_the_replica_with_the_most_room() -> None:
    # One behind (its memory full, backlog spooled) holds no other back.
    assert room(("a", 900), ("b", 0)) == 900
    assert room(("a", 0), ("b", -50), ("c", 10)) == 10
    # Every one behind: the feed is the buffer.
    assert room(("a", 0), ("b", -3)) <= 0
    # One spool refusing writes (disk full): nothing is read, for anyone.
    assert room(("a", 900), ("b", 900, False)) == 0
