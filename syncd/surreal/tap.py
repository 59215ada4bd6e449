"""The exact bytes of an application's SDK answers: what the wrapper captures from.

The SDK decodes every answer with its own codec, which loses a datetime's
nanoseconds and cannot tell NULL from NONE; a record captured from what it
returns would reach the secondary changed. So a wrapped connection is
*tapped*: the answer's bytes are kept as they arrived, and the wrapper decodes
them with syncd's exact codec (the application still gets the SDK's values,
decoded by the SDK from the very same bytes).

How, per connection and never process-wide (the SDK versions syncd was tested
with, 1.0.8 and 2.0.0, share this shape; every one of the six connection
classes sends each request through its ``_send``):

- where ``_send`` decodes the answer itself (blocking WebSocket, HTTP and
  embedded; async HTTP and embedded), the instance gets its own copy of its
  class's ``_send`` whose ``decode`` keeps the bytes in a context variable of
  the calling thread or task before decoding them;
- the async WebSocket connection decodes in a receiving task of its own: the
  instance's ``_send`` marks its request id as wanted, the instance's socket's
  ``recv`` keeps a wanted answer's bytes by id, and ``_send`` puts them in the
  caller's context variable once answered.

:func:`take` hands the bytes of the last answer to the wrapper once. An SDK
version syncd was not tested with is not tapped (``sdk_untested`` is logged
once), nor is anything the tap does not recognise: the wrapper falls back to
the SDK's values.
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Callable
from importlib import metadata
from typing import Any

import structlog
from surrealdb.connections import async_ws
from surrealdb.request_message.message import RequestMessage
from surrealdb.request_message.methods import RequestMethod

__all__ = ["TESTED_SDK_VERSIONS", "sdk_tested", "sdk_version", "take", "tap"]

log = structlog.get_logger("syncd.surreal.tap")

#: The ``surrealdb`` SDK versions whose connections the tap was tested with.
TESTED_SDK_VERSIONS = frozenset({"1.0.8", "2.0.0"})

_last: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("syncd_tap", default=None)
_TAPPED = "_syncd_tapped"
_warned = False


def sdk_version() -> str:
    """The installed ``surrealdb`` SDK's version ("unknown" when it has no metadata)."""
    try:
        return metadata.version("surrealdb")
    except metadata.PackageNotFoundError:
        return "unknown"


def sdk_tested() -> bool:
    """Whether the installed SDK is one syncd was tested with; logs ``sdk_untested`` once."""
    global _warned
    version = sdk_version()
    if version in TESTED_SDK_VERSIONS:
        return True
    if not _warned:
        _warned = True
        log.warning(
            "sdk_untested",
            version=version,
            tested=sorted(TESTED_SDK_VERSIONS),
            capture="the SDK's values (datetimes to the microsecond, NULL and NONE alike)",
        )
    return False


def tap(conn: Any) -> bool:
    """Tap ``conn`` (an SDK connection) so its answers' bytes can be taken; False if not."""
    if getattr(conn, _TAPPED, False):
        return True
    if not sdk_tested():
        return False
    send = getattr(type(conn), "_send", None)
    if not isinstance(send, types.FunctionType):
        return False
    if "decode" in send.__code__.co_names:
        own = _with_own_decode(send, _keeping(send.__globals__.get("decode")))
        if own is None:
            return False
        setattr(conn, "_send", types.MethodType(own, conn))  # noqa: B010 - this instance only
    elif isinstance(conn, async_ws.AsyncWsSurrealConnection):
        setattr(conn, "_send", _send_keeping_by_id(conn, conn._send))  # noqa: B010
    else:
        return False
    setattr(conn, _TAPPED, True)
    return True


def take() -> bytes | None:
    """The bytes of the last answer a tapped connection received here, once."""
    data = _last.get()
    if data is not None:
        _last.set(None)
    return data


# -- where ``_send`` decodes ---------------------------------------------------


def _keeping(decode: Any) -> Callable[[bytes], Any] | None:
    if not callable(decode):
        return None

    def decode_and_keep(data: bytes) -> Any:
        response = decode(data)
        if isinstance(data, bytes | bytearray):
            _last.set(bytes(data))
        return response

    return decode_and_keep


def _with_own_decode(
    send: types.FunctionType, decode: Callable[[bytes], Any] | None
) -> types.FunctionType | None:
    """A copy of ``send`` whose global ``decode`` is ``decode`` (its module's stay as they are)."""
    if decode is None:
        return None
    own = types.FunctionType(
        send.__code__,
        {**send.__globals__, "decode": decode},
        send.__name__,
        send.__defaults__,
        send.__closure__,
    )
    own.__kwdefaults__ = send.__kwdefaults__
    own.__qualname__ = send.__qualname__
    return own


# -- async WebSocket: decoded in its receiving task ----------------------------


def _send_keeping_by_id(conn: Any, send: Callable[..., Any]) -> Callable[..., Any]:
    wanted: set[str] = set()
    kept: dict[str, bytes] = {}

    def keep(data: Any) -> None:
        if wanted and isinstance(data, bytes):
            for rid in wanted:
                if rid.encode() in data:  # the answer echoes its request's random id
                    kept[rid] = data
                    return

    async def send_and_keep(message: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(conn, "socket", None) is None:
            await conn.connect()  # so the first answer's bytes are kept too
        if _tap_socket(conn.socket, keep):
            # The receiving task is inside the untapped ``recv`` already: one
            # round trip of our own, and every later frame is received tapped.
            await send(RequestMessage(RequestMethod.VERSION), "syncd tapping", True)
        rid = getattr(message, "id", None)
        if not isinstance(rid, str):
            return await send(message, *args, **kwargs)
        wanted.add(rid)
        try:
            return await send(message, *args, **kwargs)
        finally:
            wanted.discard(rid)
            _last.set(kept.pop(rid, None))

    return send_and_keep


def _tap_socket(socket: Any, keep: Callable[[Any], None]) -> bool:
    """Keep the frames ``socket`` receives (a reconnect brings a new socket: tapped anew).

    The SDK's receiving task iterates the socket, whose iterator looks up
    ``recv`` on the instance for every frame: this instance's ``recv`` keeps.
    """
    if socket is None or getattr(socket, _TAPPED, False):
        return False
    recv = socket.recv

    async def recv_and_keep(*args: Any, **kwargs: Any) -> Any:
        data = await recv(*args, **kwargs)
        keep(data)
        return data

    socket.recv = recv_and_keep
    setattr(socket, _TAPPED, True)
    return True
