"""The exact bytes of an application's SDK answers: what the wrapper captures from.

The SDK decodes every answer with its own codec, which loses a datetime's
nanoseconds and cannot tell NULL from NONE; a record captured from what it
returns would reach the secondary changed. So a wrapped connection is
*tapped*: the answer's bytes are kept as they arrived, and the wrapper decodes
them with syncd's exact codec (the application still gets the SDK's values,
decoded by the SDK from the very same bytes).

How, for the SDK (2.0.0, pinned): both its WebSocket and its embedded
connection decode answers with their module's ``decode`` function, and send
every request through the connection's ``_send``. Tapping a connection wraps
that instance's ``_send`` (its request ids become *wanted*) and, once per
process, the two modules' ``decode`` (a wanted answer's bytes are kept by
id). After ``_send`` returns, its answer's bytes are in a context variable of
the calling task: :func:`take` hands them to the wrapper once. Anything the
tap does not recognise (another SDK version, another connection type) leaves
the connection untouched, and the wrapper falls back to the SDK's values.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

from surrealdb.connections import async_embedded, async_ws

__all__ = ["take", "tap"]

_last: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("syncd_tap", default=None)
_wanted: set[str] = set()
_kept: dict[str, bytes] = {}
_patched = False


def _keeping(decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode_and_keep(data: bytes) -> Any:
        response = decode(data)
        if _wanted and isinstance(response, dict):
            rid = response.get("id")
            if isinstance(rid, str) and rid in _wanted:
                _kept[rid] = bytes(data)
        return response

    decode_and_keep.__wrapped__ = decode  # type: ignore[attr-defined]
    return decode_and_keep


def _patch_modules() -> bool:
    global _patched
    if _patched:
        return True
    modules = (async_ws, async_embedded)
    if not all(callable(getattr(module, "decode", None)) for module in modules):
        return False
    for module in modules:
        module.decode = _keeping(module.decode)  # type: ignore[attr-defined]
    _patched = True
    return True


def tap(conn: Any) -> bool:
    """Tap ``conn`` (an SDK connection) so its answers' bytes can be taken; False if not."""
    send = getattr(conn, "_send", None)
    if getattr(send, "_syncd_tapped", False):
        return True
    if send is None or not isinstance(conn, async_ws.AsyncWsSurrealConnection | _embedded()):
        return False
    if not _patch_modules():
        return False

    async def send_and_keep(message: Any, *args: Any, **kwargs: Any) -> Any:
        rid = getattr(message, "id", None)
        if not isinstance(rid, str):
            return await send(message, *args, **kwargs)
        _wanted.add(rid)
        try:
            return await send(message, *args, **kwargs)
        finally:
            _wanted.discard(rid)
            _last.set(_kept.pop(rid, None))

    send_and_keep._syncd_tapped = True  # type: ignore[attr-defined]
    setattr(conn, "_send", send_and_keep)  # noqa: B010 - this instance only
    return True


def take() -> bytes | None:
    """The bytes of the last answer a tapped connection received in this task, once."""
    data = _last.get()
    _last.set(None)
    return data


def _embedded() -> type:
    cls = getattr(async_embedded, "AsyncEmbeddedSurrealConnection", None)
    return cls if isinstance(cls, type) else async_ws.AsyncWsSurrealConnection


Send = Callable[..., Awaitable[Any]]
