"""The devserver as the SDK and tests see it: a real process on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from surrealdb import AsyncSurreal, RecordID
from surrealdb.data.cbor import decode, encode
from surrealdb.errors import SurrealError
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.dev.process import DevServerStartError as ServerStartError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    """A fresh in-memory devserver process."""
    with ServerProcess() as srv:
        yield srv


@pytest.fixture
def kv_store(tmp_path: Path) -> str:
    """A surrealkv store path that survives server restarts."""
    return f"surrealkv://{tmp_path / 'store'}"


@asynccontextmanager
async def client(url: str, namespace: str = "ns", database: str = "db") -> AsyncIterator[Any]:
    """An SDK connection, signed in as root and using ``namespace``/``database``."""
    db = AsyncSurreal(url)
    try:
        await db.signin({"username": "root", "password": "root"})
        await db.use(namespace, database)
        yield db
    finally:
        await db.close()


def assert_gone(pid: int | None) -> None:
    """The process no longer exists (it was reaped, not left behind)."""
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_sdk_round_trip(server: ServerProcess) -> None:
    async with client(server.url) as db:
        created = await db.create(RecordID("person", "alice"), {"name": "Alice"})
        assert created == {"id": RecordID("person", "alice"), "name": "Alice"}
        # This SDK's select() of one record id returns a one-element list.
        assert await db.select(RecordID("person", "alice")) == [created]
        assert await db.query("RETURN [$session.ns, $session.db]") == ["ns", "db"]


async def test_clients_keep_their_own_namespace(server: ServerProcess) -> None:
    async with client(server.url, "ns_a") as a, client(server.url, "ns_b") as b:
        # Same record id in both: a shared namespace would make the second create fail.
        await a.create(RecordID("item", 1), {"who": "a"})
        await b.create(RecordID("item", 1), {"who": "b"})
        assert await a.select("item") == [{"id": RecordID("item", 1), "who": "a"}]
        assert await b.select("item") == [{"id": RecordID("item", 1), "who": "b"}]
        assert await a.query("RETURN $session.ns") == "ns_a"


async def test_engine_error_is_an_sdk_exception_and_server_survives(
    server: ServerProcess,
) -> None:
    async with client(server.url) as db:
        with pytest.raises(SurrealError, match="Parse error"):
            await db.query("SELEC * FROM nowhere")
        with pytest.raises(SurrealError, match="authentication"):
            await db.signin({"username": "root", "password": "wrong"})
        assert await db.query("RETURN 1") == 1
    async with client(server.url) as db:
        assert await db.query("RETURN 2") == 2


async def test_raw_frames_get_error_replies(server: ServerProcess) -> None:
    url = f"{server.url}/rpc"
    async with connect(url, subprotocols=[Subprotocol("cbor")]) as ws:
        await ws.send(b"\xff\x00 not cbor")
        assert decode(await ws.recv(decode=False))["id"] is None
        # `reset` would abort the engine process; the server refuses it instead.
        await ws.send(encode({"id": "r1", "method": "reset", "params": []}))
        reply = decode(await ws.recv(decode=False))
        assert reply["id"] == "r1"
        assert reply["error"]["code"] == -32000
        await ws.send(encode({"id": "v1", "method": "version", "params": []}))
        version = decode(await ws.recv(decode=False))
        assert version == {"id": "v1", "result": "surrealdb-2.0.0"}


async def test_kill_and_restart_keeps_data_and_port(kv_store: str) -> None:
    with ServerProcess(kv_store) as srv:
        async with client(srv.url) as db:
            await db.create(RecordID("person", "bob"), {"age": 42})
        port, pid = srv.port, srv.pid
        srv.kill()
        assert_gone(pid)
        srv.restart()
        assert srv.port == port
        async with client(srv.url) as db:
            bob = await db.select(RecordID("person", "bob"))
            assert bob == [{"id": RecordID("person", "bob"), "age": 42}]


async def test_freeze_hangs_calls_and_thaw_recovers(server: ServerProcess) -> None:
    async with client(server.url) as db:
        server.freeze()
        with pytest.raises(TimeoutError), anyio.fail_after(1):
            await db.query("RETURN 1")
        server.thaw()
        async with client(server.url) as fresh:
            assert await fresh.query("RETURN 3") == 3


async def test_sigterm_exits_cleanly(server: ServerProcess) -> None:
    pid = server.pid
    async with client(server.url) as db:
        assert await db.query("RETURN 1") == 1
        # In a thread: the open connection's close handshake needs our event loop.
        await anyio.to_thread.run_sync(server.terminate)
    assert_gone(pid)
    assert "panic" not in server.stderr


def test_store_lock_refuses_a_second_server(kv_store: str) -> None:
    with ServerProcess(kv_store):
        second = ServerProcess(kv_store)
        with pytest.raises(ServerStartError) as caught:
            second.start()
        assert caught.value.returncode == 2
        message = caught.value.stderr.strip()
        assert "\n" not in message
        assert "already served by another process" in message
        assert second.pid is None


# -- --engine 3: the 3.2.4 engine from surrealdb-embedded ----------------------


@pytest.fixture
def engine3(monkeypatch: pytest.MonkeyPatch) -> None:
    """Devserver processes started in this test serve the 3.x engine (env default)."""
    monkeypatch.setenv("SYNCD_DEVSERVER_ENGINE", "3")


@pytest.mark.usefixtures("engine3")
async def test_engine3_serves_the_sdk() -> None:
    with ServerProcess() as srv:
        async with client(srv.url, "ns_a") as a, client(srv.url, "ns_b") as b:
            assert await a.version() == "surrealdb-3.2.4"
            await a.create(RecordID("item", 1), {"who": "a"})
            await b.create(RecordID("item", 1), {"who": "b"})
            assert await a.select("item") == [{"id": RecordID("item", 1), "who": "a"}]
            assert await b.query("RETURN $session.ns") == "ns_b"
            with pytest.raises(SurrealError, match="Parse error"):
                await a.query("SELEC * FROM nowhere")
            # 3.x refuses reads of a table that was never written; 2.x returns [].
            with pytest.raises(SurrealError, match="does not exist"):
                await a.query("SELECT * FROM nowhere")
        pid = srv.pid
        await anyio.to_thread.run_sync(srv.terminate)  # asserts exit 0, no panic
    assert_gone(pid)


@pytest.mark.usefixtures("engine3")
async def test_engine3_kill_and_restart_keeps_data(kv_store: str) -> None:
    with ServerProcess(kv_store) as srv:
        async with client(srv.url) as db:
            await db.create(RecordID("person", "bob"), {"age": 42})
        srv.kill()
        srv.restart()
        async with client(srv.url) as db:
            assert await db.version() == "surrealdb-3.2.4"
            bob = await db.select(RecordID("person", "bob"))
            assert bob == [{"id": RecordID("person", "bob"), "age": 42}]


@pytest.mark.parametrize(("args", "env"), [(["--engine", "4"], "2"), ([], "7"), ([], "three")])
def test_unknown_engine_is_refused(args: list[str], env: str) -> None:
    cmd = [sys.executable, "-m", "syncd.dev.devserver", "--port", "0", *args]
    environ = dict(os.environ, SYNCD_DEVSERVER_ENGINE=env)
    done = subprocess.run(cmd, capture_output=True, text=True, env=environ, timeout=30)
    assert done.returncode == 2
    assert "engine" in done.stderr.lower() or "invalid int" in done.stderr


def test_help_says_what_it_is_under_its_own_name() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "syncd.dev.devserver", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m syncd.dev.devserver ")
    assert "Not for production" in result.stdout
    assert "python -m syncd.dev.devserver --port 8000 --user root --pass root" in result.stdout
    assert "cbor2" not in result.stdout  # the module's notes are for its readers, not its users
