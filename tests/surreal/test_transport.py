"""Transports: whole frames to an engine in this process, or over a WebSocket.

The embedded engine is the real one (both generations); the WebSocket side
is a small websockets server in this process (a transport knows nothing of
the frames' contents, so it need not be SurrealDB).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from surrealdb.data.cbor import decode, encode
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from syncd.surreal.transport import (
    EmbeddedTransport,
    EngineRefused,
    TransportClosed,
    WebSocketTransport,
    is_embedded,
    open_transport,
    rpc_url,
)


@pytest.mark.parametrize(
    ("url", "embedded"),
    [("mem://", True), ("memory", False), ("MEM://", True), ("surrealkv://data", True),
     ("surrealkv+versioned://d", True), ("file://x", True), ("rocksdb://x", True),
     ("ws://h:8000", False), ("https://h", False)],
)  # fmt: skip
def test_is_embedded(url: str, embedded: bool) -> None:
    assert is_embedded(url) is embedded


@pytest.mark.parametrize(
    ("url", "rpc"),
    [
        ("ws://h:8000", "ws://h:8000/rpc"),
        ("ws://h:8000/rpc", "ws://h:8000/rpc"),
        ("wss://h/rpc/", "wss://h/rpc"),
        ("http://h:8000", "ws://h:8000/rpc"),
        ("HTTPS://h:8000/rpc", "wss://h:8000/rpc"),
        ("ws://h:8000/base", "ws://h:8000/base/rpc"),
    ],
)
def test_rpc_url(url: str, rpc: str) -> None:
    assert rpc_url(url) == rpc


def test_rpc_url_of_an_embedded_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not a server URL: mem://"):
        rpc_url("mem://")


def frame(method: str, params: list[Any], rid: str = "1") -> bytes:
    return bytes(encode({"id": rid, "method": method, "params": params}))


def engine_of(generation: int) -> Any:
    if generation == 2:
        from surrealdb._surrealdb_ext import AsyncEmbeddedDB
    else:
        from surrealdb_embedded import AsyncEmbeddedDB
    return AsyncEmbeddedDB


@pytest.fixture
async def embedded(engine: int) -> AsyncIterator[Any]:
    transport = await open_transport(
        "mem://", open_timeout=30, keepalive=5, close_timeout=5, engine=engine_of(engine)
    )
    try:
        yield transport
    finally:
        with anyio.fail_after(30):
            await transport.close()


@pytest.mark.integration
async def test_an_embedded_engine_answers_each_frame_in_turn(embedded: Any) -> None:
    assert isinstance(embedded, EmbeddedTransport)
    with anyio.fail_after(30):
        await embedded.send(frame("use", ["t", "t"], "a"))
        await embedded.send(frame("query", ["RETURN 7", {}], "b"))
        first, second = decode(await embedded.receive()), decode(await embedded.receive())
    assert first["id"] == "a"
    assert second["id"] == "b" and second["result"][0]["result"] == 7


@pytest.mark.integration
async def test_concurrent_sends_are_serialised(embedded: Any) -> None:
    with anyio.fail_after(60):
        await embedded.send(frame("use", ["t", "t"], "u"))
        await embedded.receive()
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(embedded.send, frame("query", [f"RETURN {i}", {}], str(i)))
        answers = [decode(await embedded.receive()) for _ in range(10)]
    assert sorted(int(a["result"][0]["result"]) for a in answers) == list(range(10))


@pytest.mark.integration
async def test_a_frame_the_engine_cannot_read_is_refused(embedded: Any) -> None:
    with anyio.fail_after(30), pytest.raises(EngineRefused):
        await embedded.send(b"\xff\x00 not cbor")


@pytest.mark.integration
async def test_after_close_nothing_is_sent_or_received(embedded: Any) -> None:
    with anyio.fail_after(30):
        await embedded.close()
        await embedded.close()  # twice is harmless
        with pytest.raises(TransportClosed):
            await embedded.send(frame("ping", []))
        with pytest.raises(TransportClosed):
            await embedded.receive()


@pytest.mark.integration
async def test_abort_wakes_a_waiting_receiver(embedded: Any) -> None:
    failures: list[BaseException] = []

    async def waiting() -> None:
        try:
            await embedded.receive()
        except TransportClosed as exc:
            failures.append(exc)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiting)
            await anyio.wait_all_tasks_blocked()
            embedded.abort()
    assert len(failures) == 1


@pytest.mark.integration
async def test_an_engine_that_cannot_open_is_refused() -> None:
    def broken(url: str) -> Any:
        raise RuntimeError(f"cannot open {url}")

    with anyio.fail_after(30), pytest.raises(EngineRefused, match="cannot open mem://"):
        await open_transport("mem://", open_timeout=5, keepalive=5, close_timeout=5, engine=broken)


# -- over a WebSocket --------------------------------------------------------


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[str, list[Any]]]:
    seen: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append((ws.request.path if ws.request else None, ws.subprotocol))
        try:
            async for message in ws:
                if message == b"text please":
                    await ws.send("a text frame")
                else:
                    await ws.send(message)
        except ConnectionClosed:
            pass

    async with serve(handler, "127.0.0.1", 0, subprotocols=["cbor"]) as server:  # type: ignore[list-item]
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", seen


async def test_a_websocket_carries_binary_frames_to_rpc(
    echo_server: tuple[str, list[Any]],
) -> None:
    url, seen = echo_server
    with anyio.fail_after(30):
        transport = await open_transport(url, open_timeout=10, keepalive=5, close_timeout=5)
        assert isinstance(transport, WebSocketTransport)
        await transport.send(b"\x01\x02")
        assert await transport.receive() == b"\x01\x02"
        await transport.close()
    assert seen == [("/rpc", "cbor")]


async def test_a_text_frame_closes_the_transport(echo_server: tuple[str, list[Any]]) -> None:
    url, _ = echo_server
    with anyio.fail_after(30):
        transport = await open_transport(url, open_timeout=10, keepalive=5, close_timeout=5)
        await transport.send(b"text please")
        with pytest.raises(TransportClosed, match="text frame"):
            await transport.receive()
        await transport.close()


async def test_an_aborted_websocket_receives_nothing_more(
    echo_server: tuple[str, list[Any]],
) -> None:
    url, _ = echo_server
    with anyio.fail_after(30):
        transport = await open_transport(url, open_timeout=10, keepalive=5, close_timeout=5)
        transport.abort()
        with pytest.raises(ConnectionClosed):
            await transport.receive()
