"""RpcClient: SurrealDB's CBOR RPC over one WebSocket (or an engine in-process), with deadlines.

Rules of this file:
- every call has a request id, a deadline (``call_timeout``; a caller
  wanting less wraps the call in ``anyio.fail_after``) and one future; a
  single reader task hands each answer to the future of its id;
- when the transport drops, every waiting call fails at once with the role's
  ``*Unavailable``, and every later call fails fast: a client is never
  revived, the connection manager opens a new one;
- an error answer is a :class:`~syncd.errors.ServerError` (``query_raw``
  returns it in the answer, as the SDK's does); a refused sign-in is
  :class:`~syncd.errors.AuthenticationFailed`;
- frames are encoded and decoded only through the module names below, so the
  codec is swapped in one line. Merged reads return secondary rows next to the
  SDK's primary rows: their calls pass ``sdk_values=True`` and get the SDK's
  own types (today both pairs are the SDK's codec, fast path).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from syncd.errors import AuthenticationFailed, ServerError
from syncd.surreal import codec, sdkcodec
from syncd.surreal.errors import (
    ENGINE_ERROR_CODE,
    describe,
    server_error,
    statement_error,
    translated,
    unavailable,
)
from syncd.surreal.frames import Answer, query_frame, split_answer
from syncd.surreal.transport import EngineRefused, Transport, open_transport

__all__ = ["RpcClient"]

_encode: Callable[[Any], bytes] = codec.encode
_decode: Callable[[bytes], Any] = codec.decode
# The SDK's values, exactly (surrealdb.data.cbor, fast path): for merged reads.
_encode_sdk: Callable[[Any], bytes] = sdkcodec.fast_encode
_decode_sdk: Callable[[bytes], Any] = sdkcodec.fast_decode

#: Default deadline of one call when the caller gives none.
DEFAULT_TIMEOUT = 30.0


class RpcClient:
    """One session with a SurrealDB server or embedded engine; see the module rules."""

    def __init__(
        self,
        transport: Transport,
        *,
        role: str = "database",
        call_timeout: float = DEFAULT_TIMEOUT,
        close_timeout: float = 1.0,
        sdk_values: bool = False,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        """Serve calls over an open ``transport``; :meth:`connect` is the usual way in."""
        self.role = role
        #: Called with the reason when the connection fails (not on :meth:`close`).
        self.on_lost = on_lost
        self._transport = transport
        self._call_timeout = call_timeout
        self._close_timeout = close_timeout
        self._sdk_values = sdk_values
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Answer]] = {}
        self._lost: str | None = None
        self._closed = False
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        role: str = "database",
        call_timeout: float = DEFAULT_TIMEOUT,
        open_timeout: float = 5.0,
        keepalive: float = 3.0,
        close_timeout: float = 1.0,
        sdk_values: bool = False,
        on_lost: Callable[[str], None] | None = None,
        engine: Callable[[str], Any] | None = None,
    ) -> RpcClient:
        """Open a client to ``url`` (``ws(s)://``, ``http(s)://``, or an embedded engine URL).

        ``keepalive``: seconds between pings; a peer that misses one for as long
        is dropped. ``sdk_values``: the default of every call's ``sdk_values``.
        ``on_lost(reason)``: told when the connection fails, even with no call
        waiting (a keepalive timeout). Raises the role's ``*Unavailable`` (or
        :class:`ServerError` from an engine).
        """
        with translated(role):
            transport = await open_transport(
                url,
                open_timeout=open_timeout,
                keepalive=keepalive,
                close_timeout=close_timeout,
                engine=engine,
            )
        return cls(
            transport,
            role=role,
            call_timeout=call_timeout,
            close_timeout=close_timeout,
            sdk_values=sdk_values,
            on_lost=on_lost,
        )

    @property
    def is_open(self) -> bool:
        """Whether calls can still succeed (not closed, connection not lost)."""
        return self._lost is None

    # -- the RPC methods -----------------------------------------------------

    async def call(
        self,
        method: str,
        params: list[Any] | None = None,
        *,
        sdk_values: bool | None = None,
    ) -> Any:
        """The decoded result of ``method(params)``; an error answer raises :class:`ServerError`."""
        ok, value = await self._request(method, params, sdk_values)
        if not ok:
            raise server_error(value)
        return value

    async def signin(self, user: str, password: str, *, who: str | None = None) -> None:
        """Sign in as a root user; a refusal raises :class:`AuthenticationFailed`.

        ``who`` names the database in that message when the role alone does
        not (one of several secondaries).
        """
        params = [{"user": user, "pass": password}]  # the SDK's username/password on the wire
        ok, _ = await self._request("signin", params, False)
        if not ok:
            keys = f"{self.role}_user and {self.role}_pass"
            if who is not None:
                keys = f"user and pass of {who} under secondaries"
            raise AuthenticationFailed(
                f"{who or self.role} refused the credentials of user {user!r} (check {keys})"
            )

    async def use(self, namespace: str, database: str) -> None:
        """Select the namespace and database of this session."""
        await self.call("use", [namespace, database])

    async def version(self) -> str:
        """The server's version, e.g. ``surrealdb-2.3.10``."""
        return str(await self.call("version"))

    async def ping(self) -> None:
        """One round trip that proves the session is alive."""
        await self.call("ping")

    async def query_raw(
        self,
        sql: str,
        vars: Mapping[str, Any] | None = None,
        *,
        sdk_values: bool | None = None,
    ) -> dict[str, Any]:
        """The whole answer, as the SDK's ``query_raw`` returns it.

        ``{"id", "result": [{"status", "result", "time"}, ...]}`` with one entry
        per statement, or ``{"id", "error": {"code", "message"}}``: errors are
        in the answer, not raised (transport failures are raised).
        """
        request_id, ok, value = await self._exchange("query", [sql, dict(vars or {})], sdk_values)
        return {"id": request_id, "result" if ok else "error": value}

    async def query_encoded(self, sql: str, vars: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`query_raw` (syncd's values), where a variable may be an
        :class:`~syncd.surreal.frames.EncodedArray`: an array whose items' CBOR
        was made earlier (a captured record's, kept on its operation) and is
        spliced into the request, not encoded again. Same frame, same answer.
        """
        request_id, ok, value = await self._exchange(
            "query", None, False, frame_of=lambda rid: query_frame(rid, sql, vars, _encode)
        )
        return {"id": request_id, "result" if ok else "error": value}

    async def query(
        self,
        sql: str,
        vars: Mapping[str, Any] | None = None,
        *,
        sdk_values: bool | None = None,
    ) -> Any:
        """The first statement's result, as the SDK's ``query`` returns it.

        Raises :class:`ServerError` on an error answer or a failed statement:
        stricter than the SDK, which only looks at the first statement.
        """
        results = await self.call("query", [sql, dict(vars or {})], sdk_values=sdk_values)
        if not isinstance(results, list) or not results:
            raise ServerError(0, f"unexpected answer to a query: {type(results).__name__}")
        for statement in results:
            if isinstance(statement, Mapping) and statement.get("status") == "ERR":
                raise statement_error(statement)
        first = results[0]
        return first.get("result") if isinstance(first, Mapping) else None

    async def select(self, thing: Any, *, sdk_values: bool | None = None) -> Any:
        """``SELECT * FROM thing``, built as the SDK's ``select`` builds it (same answer).

        ``thing``: a table name, a ``Table``, a record id, or a ``table:id`` text.
        """
        vars: dict[str, Any] = {}
        name = getattr(thing, "table_name", None)
        if isinstance(thing, str):
            target = thing  # spliced, as the SDK does: ranges and ``t:id`` work
        elif isinstance(name, str) and not hasattr(thing, "id"):
            target = name  # the SDK's Table
        else:
            vars["_resource"] = thing
            target = "$_resource"
        return await self.query(f"SELECT * FROM {target}", vars, sdk_values=sdk_values)

    async def close(self) -> None:
        """Close the session; bounded, and the transport is aborted if the peer is frozen."""
        if self._closed:
            return
        self._closed = True
        self._lose("closed")
        self._reader.cancel()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._close_timeout):
                # Closing a broken transport: nothing to save.
                with contextlib.suppress(Exception):
                    await self._transport.close()
            self._transport.abort()
            await asyncio.wait({self._reader}, timeout=self._close_timeout)

    # -- requests and answers ------------------------------------------------

    async def _request(
        self, method: str, params: list[Any] | None, sdk: bool | None
    ) -> tuple[bool, Any]:
        _, ok, value = await self._exchange(method, params, sdk)
        return ok, value

    async def _exchange(
        self,
        method: str,
        params: list[Any] | None,
        sdk: bool | None,
        *,
        frame_of: Callable[[int], bytes] | None = None,
    ) -> tuple[int, bool, Any]:
        """``(request_id, ok, result_or_error)`` of one call; transport failures raise.

        ``frame_of(request_id)``: the request's frame, built by the caller
        (``method`` and ``params`` are then not encoded).
        """
        if self._lost is not None:
            raise unavailable(self.role)(f"{self.role} unavailable: connection lost ({self._lost})")
        sdk = self._sdk_values if sdk is None else sdk
        request_id = next(self._ids)
        if frame_of is not None:
            frame = frame_of(request_id)
        else:
            request: dict[str, Any] = {"id": request_id, "method": method}
            if params is not None:
                request["params"] = params
            frame = (_encode_sdk if sdk else _encode)(request)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            with translated(self.role), anyio.fail_after(self._call_timeout):
                try:
                    await self._transport.send(frame)
                except EngineRefused as exc:  # the embedded engine's error answer
                    return request_id, False, {"code": ENGINE_ERROR_CODE, "message": str(exc)}
                except Exception as exc:
                    self._lose(describe(exc))
                    raise
                answer = await future
        finally:
            self._pending.pop(request_id, None)
        return request_id, answer.ok, answer.value(_decode_sdk if sdk else _decode)

    async def _read(self) -> None:
        """Hand every answer to its call until the transport fails or is closed."""
        try:
            while True:
                frame = await self._transport.receive()
                request_id, answer = split_answer(frame, _decode)
                future = self._pending.get(request_id) if isinstance(request_id, int) else None
                if future is not None and not future.done():
                    future.set_result(answer)
                # Else: a call that gave up (deadline), or a live-query notice.
        except asyncio.CancelledError:
            self._lose("closed")
            raise
        except Exception as exc:
            self._lose(describe(exc))

    def _lose(self, reason: str) -> None:
        """Mark the session lost; every waiting call fails now with one error."""
        if self._lost is not None:
            return
        self._lost = reason
        error = unavailable(self.role)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error(f"{self.role} unavailable: connection lost ({reason})"))
                # Marks it retrieved: a caller cancelled at this very moment
                # must not leave "exception was never retrieved" in the logs.
                future.exception()
        self._pending.clear()
        if not self._closed and self.on_lost is not None:
            self.on_lost(reason)
