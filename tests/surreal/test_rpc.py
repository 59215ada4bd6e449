"""RpcClient against a real devserver process: shapes, deadlines, a dying or frozen server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from surrealdb import AsyncSurreal
from surrealdb import RecordID as SdkRecordID

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.errors import AuthenticationFailed, SecondaryUnavailable, ServerError
from syncd.surreal.codec import NONE, RecordID
from syncd.surreal.connection import ManagedConnection
from syncd.surreal.endpoints import open_connection
from syncd.surreal.rpc import RpcClient
from syncd.surreal.sdkvalues import from_sdk
from tests.support.replica import make_config
from tests.support.tools import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NS, DB = "rpc", "main"


@pytest.fixture
def server(tmp_path: Path, engine: int) -> Iterator[ServerProcess]:
    """A devserver whose store survives a restart, of this test's engine generation."""
    with ServerProcess(store=f"surrealkv://{tmp_path / 'store'}", engine=engine) as srv:
        yield srv


@asynccontextmanager
async def rpc(url: str, **options: Any) -> AsyncIterator[RpcClient]:
    """An RpcClient signed in as root and using rpc/main."""
    client = await RpcClient.connect(url, role="secondary", **options)
    try:
        with anyio.fail_after(10):
            await client.signin("root", "root")
            await client.use(NS, DB)
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def sdk(url: str) -> AsyncIterator[Any]:
    """The SDK's WebSocket client, signed in the same way."""
    db: Any = AsyncSurreal(url)
    with anyio.fail_after(10):
        await db.connect()
        await db.signin({"username": "root", "password": "root"})
        await db.use(NS, DB)
    try:
        yield db
    finally:
        with anyio.move_on_after(5):
            await db.close()


def without_times(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer with its request id and statement timings dropped (they always differ)."""
    out = {k: v for k, v in answer.items() if k != "id"}
    if isinstance(out.get("result"), list):
        out["result"] = [{k: v for k, v in s.items() if k != "time"} for s in out["result"]]
    return out


async def test_version_and_round_trip(server: ServerProcess) -> None:
    async with rpc(server.url) as client:
        assert (await client.version()).startswith("surrealdb-")
        await client.ping()
        created = await client.query("CREATE t:1 SET n = 1")
        assert created == [{"id": RecordID("t", 1), "n": 1}]


def as_sdk_would(value: Any) -> Any:
    """``value`` with NONE as None: what the SDK's decoder makes of both."""
    if value is NONE:
        return None
    if isinstance(value, dict):
        return {k: as_sdk_would(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_sdk_would(v) for v in value]
    return value


@pytest.mark.parametrize(
    "sql",
    [
        "UPSERT person:a SET name = 'A', tags = ['x'], at = 1.5; SELECT * FROM person",
        "SELECT * FROM person WHERE name = $name",
        "RETURN 1; THROW 'boom'; RETURN 2",
        "SELEC nonsense",  # a parse error: an error answer, not a statement
        "UPSERT person:b CONTENT $row RETURN NONE",
    ],
)
async def test_query_raw_is_the_sdk_shape(server: ServerProcess, sql: str) -> None:
    params = {"name": "A", "row": {"name": "B", "id": SdkRecordID("person", "b")}}
    async with sdk(server.url) as db, rpc(server.url) as client:
        await db.query("UPSERT person:z SET name = 'Z'")
        theirs = await db.query_raw(sql, params)
        ours = await client.query_raw(sql, params)
        ours_as_sdk = await client.query_raw(sql, params, sdk_values=True)
    assert set(ours) == set(theirs)
    # The same answer: as syncd's exact values (NONE kept apart from NULL, which
    # the SDK's decoder cannot do), and as the SDK's own.
    assert as_sdk_would(without_times(ours)) == without_times(from_sdk(theirs))
    assert without_times(ours_as_sdk) == without_times(theirs)


async def test_query_and_select_return_what_the_sdk_returns(server: ServerProcess) -> None:
    async with sdk(server.url) as db, rpc(server.url) as client:
        await db.query("CREATE person:a SET name = 'A'; CREATE person:b SET name = 'B'")
        for sql in ("SELECT * FROM person ORDER BY id", "RETURN [1, 'two']", "INFO FOR DB"):
            assert await client.query(sql) == from_sdk(await db.query(sql))
            assert await client.query(sql, sdk_values=True) == await db.query(sql)
        for thing in ("person", SdkRecordID("person", "a"), "person:b"):
            assert await client.select(thing, sdk_values=True) == await db.select(thing)


async def test_refusals_raise_server_error(server: ServerProcess) -> None:
    async with rpc(server.url) as client:
        with pytest.raises(ServerError, match="boom"):
            await client.query("THROW 'boom'")
        with pytest.raises(ServerError) as parse:
            await client.query("SELEC nonsense")
        assert parse.value.code != 0  # an error answer, not a failed statement
        with pytest.raises(ServerError):
            await client.call("no_such_method", [])
        assert await client.query("RETURN 7") == 7  # the session is unharmed


async def test_wrong_password_is_an_authentication_failure(server: ServerProcess) -> None:
    client = await RpcClient.connect(server.url, role="secondary")
    try:
        with pytest.raises(AuthenticationFailed, match="'root'"):
            await client.signin("root", "wrong")
    finally:
        await client.close()


async def test_server_killed_mid_request_fails_the_call_fast(server: ServerProcess) -> None:
    async with rpc(server.url) as client:
        killed_at: list[float] = []

        async def kill_soon() -> None:
            await anyio.sleep(0.3)
            killed_at.append(time.monotonic())
            await anyio.to_thread.run_sync(server.kill)

        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_soon)
            with pytest.raises(SecondaryUnavailable, match="connection lost"):
                await client.query("RETURN sleep(10s)")
        assert time.monotonic() - killed_at[0] < 1.0
        assert not client.is_open
        started = time.monotonic()
        with pytest.raises(SecondaryUnavailable):
            await client.ping()  # later calls fail fast, not after a deadline
        assert time.monotonic() - started < 0.1


async def test_frozen_server_hits_the_deadline(server: ServerProcess) -> None:
    async with rpc(server.url, call_timeout=0.5) as client:
        server.freeze()
        try:
            started = time.monotonic()
            with pytest.raises(SecondaryUnavailable) as caught:
                await client.query("RETURN 1")
            assert isinstance(caught.value.__cause__, TimeoutError)
            assert 0.4 < time.monotonic() - started < 1.5
            close_started = time.monotonic()
            await client.close()  # bounded: the peer never answers the close
            assert time.monotonic() - close_started < 2.5
        finally:
            server.thaw()


async def test_keepalive_notices_a_frozen_idle_server(server: ServerProcess) -> None:
    lost = anyio.Event()
    async with rpc(server.url, keepalive=0.3, on_lost=lambda reason: lost.set()) as client:
        server.freeze()
        try:
            with anyio.fail_after(3):  # two keepalive periods, plus slack
                await lost.wait()
            assert not client.is_open
        finally:
            server.thaw()


def managed(server: ServerProcess, on_state: Any) -> ManagedConnection:
    """A managed connection to ``server`` with short intervals."""
    return ManagedConnection(
        role="secondary",
        url=f"{server.url}/rpc",
        user="root",
        password="root",
        namespace=NS,
        database=DB,
        connect_timeout=2.0,
        health_check_interval=30.0,
        reconnect_backoff=0.3,
        on_state=on_state,
    )


async def test_managed_connection_reconnects_after_a_restart(server: ServerProcess) -> None:
    states: list[bool] = []
    conn = managed(server, states.append)
    async with anyio.create_task_group() as tg:
        await tg.start(conn.run)
        with anyio.fail_after(10):
            await conn.wait_up()
        assert conn.server_version is not None
        assert conn.server_version.startswith("surrealdb-")
        await conn.call(lambda c: c.query("CREATE t:1 SET n = 1"), 5)
        server.freeze()
        with pytest.raises(SecondaryUnavailable, match="timeout"):
            await conn.call(lambda c: c.query("RETURN 1"), 0.5)
        assert not conn.is_up
        await anyio.to_thread.run_sync(server.restart)
        with anyio.fail_after(15):
            await conn.wait_up()
        rows = await conn.call(lambda c: c.query("SELECT * FROM t"), 5)
        assert rows == [{"id": RecordID("t", 1), "n": 1}]
        tg.cancel_scope.cancel()
    assert states[:3] == [True, False, True]


async def test_a_server_dying_while_idle_marks_the_connection_down(server: ServerProcess) -> None:
    down = anyio.Event()
    conn = managed(server, lambda up: None if up else down.set())
    async with anyio.create_task_group() as tg:
        await tg.start(conn.run)
        with anyio.fail_after(10):
            await conn.wait_up()
        killed_at = time.monotonic()
        await anyio.to_thread.run_sync(server.kill)
        with anyio.fail_after(2):
            await down.wait()  # no call was waiting: the reader noticed
        assert time.monotonic() - killed_at < 1.0
        await anyio.to_thread.run_sync(server.start)
        with anyio.fail_after(15):
            await conn.wait_up()
        tg.cancel_scope.cancel()


async def test_embedded_engine_in_process() -> None:
    client = await RpcClient.connect("mem://", role="secondary")
    try:
        assert (await client.version()).startswith("surrealdb-")
        await client.use(NS, DB)
        await client.query("CREATE t:1 SET n = 1")
        raw = await client.query_raw("SELECT * FROM t; SELEC x")
        assert "error" in raw and raw["error"]["code"] == -32000  # the engine raised
        assert await client.select("t") == [{"id": RecordID("t", 1), "n": 1}]
        with pytest.raises(AuthenticationFailed):
            await client.signin("root", "root")  # no root user defined
    finally:
        await client.close()


async def test_open_connection_fails_fast_on_a_wrong_password(
    server: ServerProcess, tmp_path: Path
) -> None:
    config = make_config(tmp_path, f"{server.url}/rpc", secondary_pass="hunter2-nope")
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed, match="cannot sign in to the secondary") as caught:
        async with open_connection(config, "secondary"):
            pass
    assert time.monotonic() - started < 1.5
    assert "hunter2" not in str(caught.value)  # never the password


async def test_open_connection_names_an_unreachable_database(tmp_path: Path) -> None:
    config = make_config(tmp_path, f"ws://127.0.0.1:{free_port()}/rpc")
    with pytest.raises(SecondaryUnavailable, match="cannot connect to the secondary at ws://"):
        async with open_connection(config, "secondary"):
            pass


async def test_query_encoded_answers_as_query_raw(server: ServerProcess) -> None:
    from syncd.surreal.codec import encode
    from syncd.surreal.frames import EncodedArray

    rows = [{"id": RecordID("spliced", n), "n": n, "none": NONE, "null": None} for n in range(50)]
    sql = "FOR $r IN $b0 { UPSERT $r.id CONTENT $r RETURN NONE }; SELECT * FROM spliced ORDER BY id"
    async with rpc(server.url) as client:
        encoded = EncodedArray(tuple(encode(row) for row in rows))
        ours = await client.query_encoded(sql, {"b0": encoded, "t0": "spliced"})
        plain = await client.query_raw(sql, {"b0": rows, "t0": "spliced"})
    assert without_times(ours) == without_times(plain)
    assert [row["n"] for row in ours["result"][1]["result"]] == list(range(50))
