"""Pause and resume in the library: an embedded primary, a secondary in a real process.

While paused, writes go on and nothing reaches the secondary (its rows are
counted during the pause); a resume drains the backlog until the secondary
equals the primary record by record; a pause survives a restart.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from surrealdb import RecordID

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.errors import ConfigError
from syncd.pipeline.pause import PauseFile
from syncd.service.replicator import Replicator
from tests.support.control import post
from tests.support.replica import dead_url, replicator, rows_by_id, secondary_rows

pytestmark = pytest.mark.timeout(180)
integration = pytest.mark.integration


def secondary_status(rep: Replicator) -> Any:
    """``rep.status()["secondary"]``: up, since, ..., paused, paused_since."""
    status: Any = rep.status()
    return status["secondary"]


async def write_events(db: Any, start: int, stop: int) -> None:
    for i in range(start, stop):
        await db.upsert(RecordID("events", i % 400), {"n": i})
        if i % 100 == 0:
            await anyio.lowlevel.checkpoint()  # let the workers run, as in an application


async def assert_untouched(url: str, expected: dict[str, Any], seconds: float = 1.5) -> None:
    """The secondary keeps exactly ``expected`` for ``seconds`` (looked at several times)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await secondary_rows(url, "events") == expected
        await anyio.sleep(0.3)


@integration
async def test_paused_nothing_is_applied_then_resume_converges(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    url = secondary_server.url
    # A small queue: the backlog of the pause overflows to the spool, as in any outage.
    async with replicator(tmp_path, url, queue_size=100) as rep:
        db = rep.wrap(primary)
        await write_events(db, 0, 50)
        await rep.flush(timeout=30)
        before = await secondary_rows(url, "events")
        assert len(before) == 50

        rep.pause()
        rep.pause()  # idempotent
        assert rep.is_paused() and rep.is_paused("secondary")
        since = secondary_status(rep)["paused_since"]
        await write_events(db, 50, 1500)  # updates of the first 50 too
        assert rep.fanout.queue_depth + rep.fanout.spool_depth == 1450  # captured, nothing dropped
        assert rep.fanout.spool_depth > 0
        await assert_untouched(url, before)

        started = time.monotonic()
        await rep.flush(timeout=30)  # the only secondary is paused: returns at once
        assert time.monotonic() - started < 0.5

        assert secondary_status(rep)["paused"] is True
        assert secondary_status(rep)["paused_since"] == since
        sample = rep.metrics.registry.get_sample_value
        assert sample("syncd_paused", {"secondary": "secondary"}) == 1.0
        assert sample("syncd_paused_since_seconds", {"secondary": "secondary"}) == since

        rep.resume()
        rep.resume()  # idempotent
        await write_events(db, 1500, 1600)  # writes go on through the resume
        await rep.flush(timeout=60)
        assert rep.fanout.queue_depth == rep.fanout.spool_depth == 0
        assert sample("syncd_paused", {"secondary": "secondary"}) == 0.0
        assert secondary_status(rep)["paused"] is False
    assert await secondary_rows(url, "events") == await rows_by_id(primary, "events")


@integration
async def test_a_pause_survives_a_restart_on_the_same_state_dir(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    url = secondary_server.url
    async with replicator(tmp_path, url) as rep:
        db = rep.wrap(primary)
        rep.pause("secondary")
        since = secondary_status(rep)["paused_since"]
        await write_events(db, 0, 300)
        started = time.monotonic()
    # Nothing drains while paused: leaving does not wait out drain_timeout (10s here).
    assert time.monotonic() - started < 5
    paused_file = tmp_path / "state" / "paused.json"
    assert json.loads(paused_file.read_text())["paused"] == {"secondary": {"since": since}}
    assert paused_file.stat().st_mode & 0o777 == 0o600
    assert await secondary_rows(url, "events") == {}

    async with replicator(tmp_path, url) as rep:
        assert rep.is_paused()
        assert secondary_status(rep)["paused_since"] == since
        assert rep.metrics.registry.get_sample_value("syncd_paused", {"secondary": "secondary"})
        assert rep.fanout.spool_depth + rep.fanout.queue_depth == 300  # left by the first run
        await assert_untouched(url, {})
        rep.resume()
        await rep.flush(timeout=60)
    assert not paused_file.exists()
    assert await secondary_rows(url, "events") == await rows_by_id(primary, "events")


@integration
async def test_flush_returns_as_soon_as_the_only_secondary_is_paused(
    tmp_path: Path, primary: Any
) -> None:
    # A secondary that is down: flush would wait for it until the timeout.
    async with replicator(tmp_path, dead_url()) as rep:
        await rep.wrap(primary).create(RecordID("events", 1), {"n": 1})
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(rep.flush, 60)
                await anyio.sleep(0.3)
                rep.pause()
        await rep.flush(timeout=None)  # no deadline, and still at once


@integration
async def test_pause_over_http_reaches_the_event_loop(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    url = secondary_server.url
    async with replicator(tmp_path, url, metrics_listen="127.0.0.1:0") as rep:
        assert rep.http is not None
        base = rep.http.url
        status, body = await anyio.to_thread.run_sync(post, base + "/pause")
        assert status == 200 and body["secondary"] == "secondary" and body["paused"] is True
        assert rep.is_paused()
        await write_events(rep.wrap(primary), 0, 20)
        await assert_untouched(url, {}, seconds=0.6)
        status, body = await anyio.to_thread.run_sync(post, base + "/status", None, "GET")
        assert body["secondary"]["paused"] is True
        assert body["secondary"]["paused_since"] == secondary_status(rep)["paused_since"]
        status, _ = await anyio.to_thread.run_sync(post, base + "/pause?secondary=nope")
        assert status == 404
        status, body = await anyio.to_thread.run_sync(post, base + "/resume")
        assert status == 200 and body == {"secondary": "secondary", "paused": False, "since": None}
        await rep.flush(timeout=30)
    assert len(await secondary_rows(url, "events")) == 20


async def test_an_unknown_secondary_is_a_config_error_naming_it(tmp_path: Path) -> None:
    rep = replicator(tmp_path, dead_url())
    with pytest.raises(ConfigError, match="unknown secondary 'archive'"):
        rep.pause("archive")
    with pytest.raises(ConfigError, match="unknown secondary 'archive'"):
        rep.resume("archive")
    assert not rep.is_paused()


async def test_a_malformed_pause_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "paused.json").write_text('{"paused": {"secondary": {"since": "yesterday"}}}')
    with pytest.raises(ConfigError) as info:
        async with replicator(tmp_path, dead_url(), drain_timeout="100ms"):
            pass
    assert str(info.value).startswith(f"pause file {state / 'paused.json'}: malformed")
    assert "\n" not in str(info.value)
    # The start failed cleanly: the state dir is not left locked.
    (state / "paused.json").unlink()
    async with replicator(
        tmp_path, dead_url(), connect_timeout="200ms", drain_timeout="100ms"
    ) as rep:
        assert not rep.is_paused()


async def test_a_pause_before_the_start_is_kept(tmp_path: Path) -> None:
    rep = replicator(tmp_path, dead_url(), connect_timeout="200ms")
    rep.pause()
    assert PauseFile(tmp_path / "state").load().keys() == {"secondary"}
    async with rep:
        assert rep.is_paused()
