"""A test and demo SurrealDB endpoint: an embedded engine served over WebSocket.

This is a test and demo endpoint only; production runs the real ``surreal start``.
An in-process engine answers the CBOR RPC frames the SDK sends, so this
forwards frames from ``ws://127.0.0.1:PORT/rpc`` (subprotocol ``cbor``) to one
engine: ``--engine 2`` is surrealdb-core 2.3.10 from the ``surrealdb`` wheel
(its ``version`` answers ``surrealdb-2.0.0``, the wheel's version), ``--engine
3`` is 3.2.4 from ``surrealdb-embedded`` (``surrealdb-3.2.4``). The engine has
a single session: calls are serialised and each connection's ``use`` is
replayed when another connection changed it. Session variables and auth stay
shared (3.x enforces auth, so one client's ``invalidate`` signs every client
out); live queries and ``reset`` are refused.

Per frame, only the request's ``id`` and ``method`` are decoded (and ``use``'s
parameters), with compiled cbor2; the request bytes go to the engine and the
engine's answer bytes come back untouched. A 2,000-row batch costs microseconds
here instead of the 40-60 ms the SDK's pure-Python decoder took.

    python -m syncd.dev.devserver --port 0 --store mem:// --user root --pass root --engine 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import io
import logging
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from syncd.files import write_atomically

__all__ = ["ENGINES", "ERROR_CODE", "HOST", "DevServer", "DevServerError", "main", "serve"]

HOST = "127.0.0.1"  # the only address served: the 2.x engine does not enforce auth
ERROR_CODE = -32000  # the code `surreal start` puts on engine errors
ENGINES = (2, 3)  # server generations that can be served
_ENGINE_ENV = "SYNCD_DEVSERVER_ENGINE"  # the default for --engine (tests run both)

# `reset` panics the engine (cleanup_lqs unimplemented) and aborts the process;
# live queries would never deliver notifications through `execute`.
_REFUSED = frozenset({"reset", "live", "kill"})
# Methods that may change the session's namespace/database as a side effect.
_AUTH_METHODS = frozenset({"signin", "signup", "authenticate", "invalidate"})
_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NONE = cbor2.CBORTag(6, None)  # SurrealDB's NONE; the SDK sends None as this
_MAP_SIZES = {24: 1, 25: 2, 26: 4, 27: 8}  # CBOR additional info -> length bytes
# Below this size decoding the whole frame (~3 us) beats setting up a decoder
# to read its head (~10 us); above it, the params dominate (6 ms at 380 KB).
_SMALL_FRAME = 2048


class DevServerError(Exception):
    """The devserver cannot start: bad store, store locked, port taken, bad user."""


def _error_frame(request_id: Any, message: str) -> bytes:
    return cbor2.dumps({"id": request_id, "error": {"code": ERROR_CODE, "message": message}})


def _engine_class(engine: int) -> Any:
    """The ``AsyncEmbeddedDB`` of a server generation (imported on demand)."""
    if engine == 2:
        from surrealdb._surrealdb_ext import AsyncEmbeddedDB as V2

        return V2
    if engine == 3:
        try:
            from surrealdb_embedded import AsyncEmbeddedDB as V3
        except ImportError as exc:  # an optional wheel in some installs
            raise DevServerError(f"engine 3 needs surrealdb-embedded: {exc}") from None
        return V3
    raise DevServerError(f"engine must be one of {ENGINES}, not {engine!r}")


def _peek(raw: bytes) -> tuple[Any, Any, list[Any] | None]:
    """The request's id, method and, for ``use`` only, its params.

    Decodes no more of the frame than that: with the SDK's key order (id,
    method, params) the params of anything but ``use`` (a query and its
    rows) are never decoded. Unknown SurrealDB tags in what is decoded come
    back as ``cbor2.CBORTag``. Raises on a frame that is not a CBOR map.
    """
    if not raw or raw[0] >> 5 != 5:
        raise ValueError("not a CBOR map")
    info = raw[0] & 0x1F
    indefinite = info >= 24 and info not in _MAP_SIZES
    if len(raw) <= _SMALL_FRAME or indefinite:
        try:
            whole = cbor2.loads(raw)  # small, or of indefinite length: read it all
        except Exception:
            if indefinite:
                raise
            whole = None  # a param cbor2 cannot build (the engine may): read the head only
        if isinstance(whole, dict):
            method = whole.get("method")
            params = whole.get("params") if method == "use" else None
            return whole.get("id"), method, params if isinstance(params, list) else None
    stream = io.BytesIO(raw)
    stream.seek(1)
    size = _MAP_SIZES.get(info, 0)
    count = int.from_bytes(stream.read(size), "big") if size else info
    decoder = cbor2.CBORDecoder(stream)
    found: dict[Any, Any] = {}
    for _ in range(count):
        key = decoder.decode()
        if key == "params" and "method" in found and "id" in found and found["method"] != "use":
            break  # the rest is the query and its variables: the engine's business
        found[key] = decoder.decode()
        if "params" in found and "method" in found and "id" in found:
            break
    method = found.get("method")
    params = found.get("params") if method == "use" else None
    return found.get("id"), method, params if isinstance(params, list) else None


def _lock_store(store: str) -> int | None:
    """Take the store's exclusive lock; return its fd, or None for in-memory stores.

    Two engines on one path neither lock nor see each other's writes, so a second
    server on the same store would silently diverge; the lock turns that into an error.
    """
    scheme, sep, rest = store.partition("://")
    if scheme in ("mem", "memory"):
        return None
    if not sep or not rest.startswith("/"):
        raise DevServerError(f"store {store!r} must be mem:// or scheme:///absolute/path")
    lock_path = rest.rstrip("/") + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DevServerError(f"cannot create lock file {lock_path}: {exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        msg = f"store {store} is already served by another process (lock {lock_path} held)"
        raise DevServerError(msg) from None
    return fd


@dataclass
class _Conn:
    """What one WebSocket connection asked `use` for (None: not set)."""

    namespace: str | None = None
    database: str | None = None
    used: bool = False  # called `use` at least once: replay even (None, None)


class DevServer:
    """The embedded engine served on ws://127.0.0.1:PORT/rpc, usable in-process.

    ``async with DevServer("mem://") as srv: ... srv.url ...`` or ``start``/``stop``.
    ``engine`` picks the server generation served: 2 (2.3.10) or 3 (3.2.4).
    """

    def __init__(
        self,
        store: str = "mem://",
        port: int = 0,
        *,
        user: str | None = None,
        password: str | None = None,
        engine: int = 2,
    ) -> None:
        """Configure; nothing is opened until :meth:`start`."""
        if engine not in ENGINES:
            raise DevServerError(f"engine must be one of {ENGINES}, not {engine!r}")
        if (user is None) != (password is None):
            raise DevServerError("give both user and password, or neither")
        if user is not None and not _USER_RE.match(user):
            raise DevServerError(f"user name {user!r} must be a plain identifier")
        self.store, self.port, self.engine = store, port, engine
        self._user, self._password = user, password
        self._db: Any = None
        self._lock = asyncio.Lock()
        self._engine_use: tuple[str | None, str | None] | None = None
        self._lock_fd: int | None = None
        self._server: Server | None = None

    @property
    def url(self) -> str:
        """The SDK URL, ``ws://127.0.0.1:PORT`` (the SDK appends ``/rpc``)."""
        return f"ws://{HOST}:{self.port}"

    async def start(self) -> int:
        """Lock the store, open the engine, define the root user, listen; return the port."""
        self._lock_fd = _lock_store(self.store)
        try:
            self._db = _engine_class(self.engine)(self.store)
            try:
                await self._db.connect()
            except (RuntimeError, ValueError) as exc:
                self._db = None
                raise DevServerError(f"cannot open store {self.store}: {exc}") from exc
            if self._user is not None and self._password is not None:
                await self._define_user(self._user, self._password)
            try:
                self._server = await ws_serve(
                    self._handle,
                    HOST,
                    self.port,
                    subprotocols=[Subprotocol("cbor")],
                    max_size=None,  # the SDK sends unbounded frames too
                    close_timeout=1,  # shutdown must be fast, clients are local
                )
            except OSError as exc:
                raise DevServerError(f"cannot listen on {HOST}:{self.port}: {exc}") from exc
        except BaseException:
            await self.stop()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _define_user(self, user: str, password: str) -> None:
        # The engine starts with no users, so SDK signin fails until one exists.
        # DEFINE USER takes no $param for PASSWORD, hence the quoting.
        quoted = password.replace("\\", "\\\\").replace("'", "\\'")
        query = f"DEFINE USER IF NOT EXISTS {user} ON ROOT PASSWORD '{quoted}' ROLES OWNER"
        frame = cbor2.dumps({"id": "devserver-init", "method": "query", "params": [query, {}]})
        try:
            reply = cbor2.loads(await self._db.execute(frame))
        except (RuntimeError, ValueError) as exc:  # a parse error quotes the password
            raise DevServerError(
                f"cannot define user {user}: {exc}".replace(quoted, "***")
            ) from None
        # 3.x answers errors with a frame instead of raising.
        failure = reply.get("error") or reply.get("result")
        statuses = [s.get("status") for s in reply.get("result") or [] if isinstance(s, dict)]
        if statuses != ["OK"]:
            raise DevServerError(f"cannot define user {user}: {failure}".replace(quoted, "***"))

    async def stop(self) -> None:
        """Stop listening, close the engine, release the lock; safe to call twice."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._db is not None:
            async with self._lock:  # let an in-flight call finish first
                await self._db.close()
                self._db = None
            # close() returns before the engine's runtime settles; exiting at
            # once sometimes panics the process ("panic in a function that
            # cannot unwind", exit 134). A short pause avoided it in 80 runs.
            await asyncio.sleep(0.1)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def __aenter__(self) -> DevServer:
        """Start and return self."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop."""
        await self.stop()

    async def _handle(self, ws: ServerConnection) -> None:
        conn = _Conn()
        # A client that vanishes mid-frame raises ConnectionClosedError; that is
        # normal here and must not be logged as a handler failure.
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if isinstance(message, str):
                    reply = _error_frame(None, "devserver speaks CBOR only (subprotocol cbor)")
                else:
                    reply = await self._call(message, conn)
                await ws.send(reply)

    async def _call(self, raw: bytes, conn: _Conn) -> bytes:
        """Forward one request frame for ``conn``; engine exceptions become error frames."""
        try:
            request_id, method, params = _peek(raw)
        except Exception as exc:  # not CBOR, or not a map: there is no id to answer
            return _error_frame(None, f"undecodable request frame: {exc!r}")
        if isinstance(method, str) and method in _REFUSED:
            return _error_frame(request_id, f"method {method!r} is not supported by the devserver")
        async with self._lock:
            if self._db is None:
                return _error_frame(request_id, "devserver is shutting down")
            wanted = (conn.namespace, conn.database)
            try:
                if conn.used and wanted != self._engine_use:
                    # A null half unsets it on both engines: the replay is exact.
                    use = {"id": "devserver-use", "method": "use", "params": list(wanted)}
                    await self._db.execute(cbor2.dumps(use))
                    self._engine_use = wanted
                # Answer bytes go back as the engine wrote them (a bytes object).
                reply: bytes = await self._db.execute(raw)
            except Exception as exc:  # 2.x raises for every error, 3.x for undecodable ones
                return _error_frame(request_id, str(exc))
            if method == "use":
                # As both engines do: a NONE half (the SDK's None) or a missing
                # one keeps the current value, a null half unsets it.
                ns, db = [*(params or []), _NONE, _NONE][:2]
                conn.namespace = conn.namespace if ns == _NONE else ns
                conn.database = conn.database if db == _NONE else db
                conn.used = True
                self._engine_use = (conn.namespace, conn.database)
            elif method in _AUTH_METHODS:
                self._engine_use = None  # unknown now: replay `use` next time
        return reply


async def serve(
    store: str,
    port: int = 0,
    *,
    user: str | None = None,
    password: str | None = None,
    port_file: Path | None = None,
    engine: int = 2,
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down cleanly.

    Prints ``listening ws://127.0.0.1:PORT/rpc`` once listening.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with DevServer(store, port, user=user, password=password, engine=engine) as srv:
        if port_file is not None:
            # Readers never see a partial port; nothing about it must survive a power cut.
            write_atomically(port_file, f"{srv.port}\n".encode(), mode=0o644, durable=False)
        print(f"listening ws://{HOST}:{srv.port}/rpc", flush=True)
        await stop.wait()


_HELP = """\
A SurrealDB endpoint for tests, demos and a first try of syncd: an embedded
engine (2.3.10 or 3.2.4) served on ws://127.0.0.1:PORT/rpc. Not for production
(run the real `surreal start` there): one session shared by every client, no
live queries. Prints "listening ws://127.0.0.1:PORT/rpc" once it listens;
stops on Ctrl-C or SIGTERM."""

_EXAMPLES = """\
examples:
  python -m syncd.dev.devserver --port 8000 --user root --pass root
  python -m syncd.dev.devserver --port 8001 --store surrealkv:///tmp/secondary --engine 3"""


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns 0 after a signal, 2 when the server cannot start."""
    parser = argparse.ArgumentParser(
        prog="python -m syncd.dev.devserver",
        description=_HELP,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store", default="mem://", help="mem://, surrealkv:///abs/path, ...")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default=HOST, help="must be 127.0.0.1")
    parser.add_argument("--user", help="root user to define at start")
    parser.add_argument(
        "--pass",
        dest="password",
        default=os.environ.get("SYNCD_DEVSERVER_PASS"),
        help="its password (or env SYNCD_DEVSERVER_PASS, which keeps it out of ps)",
    )
    parser.add_argument("--port-file", type=Path, help="write the port here, atomically")
    parser.add_argument(
        "--engine",
        type=int,
        choices=ENGINES,
        default=os.environ.get(_ENGINE_ENV, "2"),  # argparse converts a str default
        help=f"server generation: 2 (2.3.10) or 3 (3.2.4); default ${_ENGINE_ENV} or 2",
    )
    args = parser.parse_args(argv)
    if args.engine not in ENGINES:  # choices do not apply to a default from the env
        parser.error(f"${_ENGINE_ENV}={args.engine} is not one of {ENGINES}")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.host != HOST:
        print(f"devserver: refusing to bind {args.host}: only {HOST} is served", file=sys.stderr)
        return 2
    if args.user is None:
        args.password = None  # an env password alone defines nobody
    auth = {"user": args.user, "password": args.password}
    try:
        asyncio.run(
            serve(args.store, args.port, port_file=args.port_file, engine=args.engine, **auth)
        )
    except DevServerError as exc:
        print(f"devserver: {exc}", file=sys.stderr)
        return 2
    return 0


def run_and_exit() -> None:
    """Run :func:`main` and end the process with its status (``python -m``)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    # Skip interpreter finalisation: the engine's Rust threads can still touch
    # Python during it and abort the process (exit 134) even after close().
    os._exit(code)


if __name__ == "__main__":
    run_and_exit()
