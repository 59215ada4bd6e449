"""Every SDK connection kind an application may hold, on the SDK version installed here.

{blocking, async} x {WebSocket, HTTP, embedded}: writes replicate exactly
(nanoseconds, NULL and NONE), a merged read finds what only the secondary
holds, and a connection of the other kind is refused with TypeError.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry
from surrealdb import AsyncSurreal, RecordID, Surreal

from syncd import BlockingReplicator, Replicator
from syncd.dev.process import DevServerProcess
from syncd.surreal.tap import sdk_version
from tests.capture.test_exact_values import LITERAL, assert_exact, exact_rows
from tests.support.httprpc import http_rpc
from tests.support.replica import DATABASE, NAMESPACE, make_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TRANSPORTS = ("ws", "http", "embedded")


@contextmanager
def primary_url(transport: str) -> Iterator[str]:
    """Where the application's primary is: a served engine, or in-process."""
    if transport == "embedded":
        yield "mem://"
        return
    with ExitStack() as stack:
        server = DevServerProcess(store="mem://", engine=2)
        server.start()
        stack.callback(server.stop)
        yield stack.enter_context(http_rpc(server.url)) if transport == "http" else server.url


async def done(value: Any) -> Any:
    """``value``, awaited when it is awaitable (the same scenario for both kinds)."""
    return await value if inspect.isawaitable(value) else value


async def scenario(db: Any, rep: Any) -> None:
    """Writes of every shape through ``db``, a deleted record, a merged read."""
    await done(db.query(f"CREATE vals:1 CONTENT {LITERAL}"))
    await done(db.upsert(RecordID("vals", 2), {"n": 1}))
    await done(db.query(f"UPDATE vals:2 CONTENT {LITERAL}"))
    await done(db.query_raw(f"BEGIN; CREATE vals:3 CONTENT {LITERAL}; COMMIT"))
    await done(db.create(RecordID("events", "gone"), {"n": 1}))
    await done(db.upsert(RecordID("events", "kept"), {"n": 2}))
    await done(rep.flush(timeout=60))
    await done(db.delete(RecordID("events", "gone")))
    merged = await done(db.select("events"))
    assert sorted(str(r["id"]) for r in merged) == ["events:gone", "events:kept"]


async def open_async(url: str) -> Any:
    db: Any = AsyncSurreal(url)
    if not url.startswith("http"):  # an HTTP client has nothing to connect
        await db.connect()
    if url != "mem://":
        await db.signin({"username": "root", "password": "root"})
    await db.use("app", "main")
    return db


def open_blocking(url: str) -> Any:
    db: Any = Surreal(url)
    if url == "mem://" and hasattr(db, "connect"):
        db.connect()
    if url != "mem://":
        db.signin({"username": "root", "password": "root"})
    db.use("app", "main")
    return db


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_blocking_connections_replicate_exactly(
    transport: str, tmp_path: Path, served: DevServerProcess
) -> None:
    config = make_config(tmp_path, served.url)
    with primary_url(transport) as url:
        db = open_blocking(url)
        try:
            with BlockingReplicator(config, registry=CollectorRegistry()) as rep:
                anyio.run(scenario, rep.wrap(db), rep)
        finally:
            with suppress(NotImplementedError):  # the HTTP clients have nothing to close
                db.close()
            time.sleep(0.1)  # an embedded engine's threads wind down
    check_secondary(served.url)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_async_connections_replicate_exactly(
    transport: str, tmp_path: Path, served: DevServerProcess
) -> None:
    config = make_config(tmp_path, served.url)
    with primary_url(transport) as url:
        db = await open_async(url)
        try:
            async with Replicator(config, registry=CollectorRegistry()) as rep:
                await scenario(rep.wrap(db), rep)
        finally:
            with suppress(NotImplementedError):
                await db.close()
            await anyio.sleep(0.1)
    await anyio.to_thread.run_sync(check_secondary, served.url)


def check_secondary(url: str) -> None:
    replica = anyio.run(exact_rows, url, NAMESPACE, DATABASE, "vals")
    assert sorted(replica) == ["vals:1", "vals:2", "vals:3"], sdk_version()
    for row in replica.values():
        assert_exact(row)


@pytest.mark.parametrize("url", ["ws://127.0.0.1:9/rpc", "http://127.0.0.1:9", "mem://"])
def test_the_other_kind_is_refused(url: str, tmp_path: Path) -> None:
    config = make_config(tmp_path, "ws://127.0.0.1:9")
    with pytest.raises(TypeError, match=r"syncd\.BlockingReplicator"):
        Replicator(config, registry=CollectorRegistry()).wrap(Surreal(url))
    with pytest.raises(TypeError, match=r"syncd\.Replicator"):
        BlockingReplicator(config, registry=CollectorRegistry()).wrap(AsyncSurreal(url))
