"""How RPC frames travel: a WebSocket to a server, or the embedded engine in this process.

Rules of this file:
- a transport moves whole CBOR frames and knows nothing of their contents;
- the network transport speaks ``ws(s)://host:port/rpc`` with subprotocol
  ``cbor``, with keepalive pings so a frozen peer is noticed within
  ``2 * keepalive`` seconds even when no call is waiting;
- the embedded engine has one session and answers one frame at a time, so
  its calls are serialised; it raises (RuntimeError/ValueError) where a
  server sends an error frame, and those become :class:`EngineRefused`;
- errors are not translated here: :mod:`syncd.surreal.errors` does that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import anyio
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.typing import Subprotocol

from syncd.config import sdk_url

__all__ = [
    "EMBEDDED_SCHEMES",
    "EmbeddedTransport",
    "EngineRefused",
    "Transport",
    "TransportClosed",
    "WebSocketTransport",
    "is_embedded",
    "open_transport",
    "rpc_url",
]

#: Schemes served by an engine inside this process rather than over the network.
EMBEDDED_SCHEMES = ("mem", "memory", "surrealkv", "surrealkv+versioned", "file", "rocksdb")

# The embedded engine can abort the process at exit (a Rust panic) when it is
# torn down right after close(); measured here, a short pause avoids it.
_ENGINE_SETTLE = 0.1


class TransportClosed(Exception):
    """The transport is closed: by us, or the engine is gone."""


class EngineRefused(Exception):
    """The embedded engine raised on a request: its equivalent of an error frame."""


class Transport(Protocol):
    """Moves whole frames to and from one database session."""

    async def send(self, frame: bytes) -> None:
        """Send one request frame."""
        ...

    async def receive(self) -> bytes:
        """The next answer frame; raises when the transport is gone."""
        ...

    async def close(self) -> None:
        """Close politely (the caller bounds the wait)."""
        ...

    def abort(self) -> None:
        """Drop the connection at once (a frozen peer never finishes a close)."""
        ...


def is_embedded(url: str) -> bool:
    """Whether ``url`` names an engine in this process (``mem://``, ``surrealkv://...``)."""
    return urlsplit(url).scheme.lower() in EMBEDDED_SCHEMES


def rpc_url(url: str) -> str:
    """The WebSocket endpoint of a server URL: ``ws(s)://host:port/rpc``.

    Accepts the config's spellings: with or without ``/rpc``, and ``http(s)``
    (the same server; its RPC endpoint is the WebSocket one).
    """
    parts = urlsplit(sdk_url(url))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a server URL: {url}")
    return urlunsplit((scheme, parts.netloc, f"{parts.path}/rpc", parts.query, ""))


class WebSocketTransport:
    """Frames over one WebSocket (``websockets``' asyncio client)."""

    def __init__(self, ws: ClientConnection) -> None:
        """Wrap an open connection; :func:`open_transport` makes one."""
        self._ws = ws

    async def send(self, frame: bytes) -> None:
        """Send one binary frame (whole frames may be sent from several tasks at once)."""
        await self._ws.send(frame)

    async def receive(self) -> bytes:
        """The next frame; raises ``ConnectionClosed`` once the connection is gone."""
        frame = await self._ws.recv()
        if isinstance(frame, str):  # the cbor subprotocol is binary only
            raise TransportClosed("the server sent a text frame on a CBOR connection")
        return frame

    async def close(self) -> None:
        """Perform the closing handshake (websockets bounds it by ``close_timeout``)."""
        await self._ws.close()

    def abort(self) -> None:
        """Drop the TCP connection without a handshake."""
        self._ws.transport.abort()


class EmbeddedTransport:
    """Frames handed to an engine in this process (``AsyncEmbeddedDB.execute``)."""

    def __init__(self, db: Any) -> None:
        """Wrap a connected engine; :func:`open_transport` makes one."""
        self._db = db
        self._lock = asyncio.Lock()
        self._answers: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._closed = False

    async def send(self, frame: bytes) -> None:
        """Execute ``frame`` now; its answer is what :meth:`receive` returns next.

        Raises :class:`EngineRefused` when the engine raises instead of answering.
        """
        async with self._lock:  # one session: one frame at a time
            if self._closed:
                raise TransportClosed("the embedded engine is closed")
            try:
                answer = bytes(await self._db.execute(frame))
            except (RuntimeError, ValueError) as exc:
                raise EngineRefused(str(exc)) from None
        self._answers.put_nowait(answer)

    async def receive(self) -> bytes:
        """The answer of the last frame sent; raises once closed."""
        answer = await self._answers.get()
        if answer is None:
            raise TransportClosed("the embedded engine is closed")
        return answer

    async def close(self) -> None:
        """Close the engine (after a call in progress) and let its runtime settle."""
        if self._closed:
            return
        self._closed = True
        self._answers.put_nowait(None)
        async with self._lock:
            with contextlib.suppress(RuntimeError, ValueError):
                await self._db.close()
        await anyio.sleep(_ENGINE_SETTLE)

    def abort(self) -> None:
        """Stop answering (the engine itself is closed by :meth:`close`)."""
        self._closed = True
        self._answers.put_nowait(None)


def _embedded_engine() -> Callable[[str], Any]:
    # Imported here: only embedded URLs need the extension loaded.
    from surrealdb._surrealdb_ext import AsyncEmbeddedDB

    return AsyncEmbeddedDB


async def open_transport(
    url: str,
    *,
    open_timeout: float,
    keepalive: float,
    close_timeout: float,
    engine: Callable[[str], Any] | None = None,
) -> Transport:
    """Connect to ``url``: a server over WebSocket, or an embedded engine.

    ``engine`` builds the embedded engine for a URL (default: the SDK's 2.x
    ``AsyncEmbeddedDB``; ``surrealdb_embedded.AsyncEmbeddedDB`` is the 3.x one).
    Raises what the network or engine raises; the caller translates it.
    """
    if is_embedded(url):
        make = engine or _embedded_engine()
        try:
            db = make(url)
        except (RuntimeError, ValueError) as exc:
            raise EngineRefused(str(exc)) from None
        try:
            with anyio.fail_after(open_timeout):
                await db.connect()
        except (RuntimeError, ValueError) as exc:
            raise EngineRefused(str(exc)) from None
        return EmbeddedTransport(db)
    ws = await ws_connect(
        rpc_url(url),
        subprotocols=[Subprotocol("cbor")],
        open_timeout=open_timeout,
        max_size=None,  # a batch or a page may be megabytes
        compression=None,  # CBOR of records compresses little; deflate costs CPU
        ping_interval=keepalive,
        ping_timeout=keepalive,
        close_timeout=close_timeout,
    )
    return WebSocketTransport(ws)
