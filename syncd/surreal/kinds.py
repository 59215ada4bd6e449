"""Which SDK connections syncd can wrap, and how they are called.

Every supported SDK version (1.0.x, 2.0.x) has six connection classes, {Blocking,
Async} x {Ws, Http, Embedded}. An asynchronous one is wrapped by
``syncd.Replicator``, a blocking one by ``syncd.BlockingReplicator``; anything
else is refused with a :class:`TypeError` that names what is accepted, so an
application never gets a wrapper whose methods return un-awaited coroutines.
"""

from __future__ import annotations

from typing import Any, Literal

from surrealdb.connections import (
    async_embedded,
    async_http,
    async_ws,
    blocking_embedded,
    blocking_http,
    blocking_ws,
)

__all__ = ["Kind", "check_kind", "connection_kind"]

Kind = Literal["async", "blocking"]

_ASYNC: tuple[type, ...] = tuple(
    cls
    for cls in (
        getattr(async_ws, "AsyncWsSurrealConnection", None),
        getattr(async_http, "AsyncHttpSurrealConnection", None),
        getattr(async_embedded, "AsyncEmbeddedSurrealConnection", None),
    )
    if isinstance(cls, type)
)
_BLOCKING: tuple[type, ...] = tuple(
    cls
    for cls in (
        getattr(blocking_ws, "BlockingWsSurrealConnection", None),
        getattr(blocking_http, "BlockingHttpSurrealConnection", None),
        getattr(blocking_embedded, "BlockingEmbeddedSurrealConnection", None),
    )
    if isinstance(cls, type)
)

_USE = {"async": "syncd.Replicator", "blocking": "syncd.BlockingReplicator"}
_WHAT = {
    "async": "an asynchronous SurrealDB SDK connection (AsyncSurreal(url): "
    "AsyncWs/AsyncHttp/AsyncEmbeddedSurrealConnection)",
    "blocking": "a blocking SurrealDB SDK connection (Surreal(url): "
    "BlockingWs/BlockingHttp/BlockingEmbeddedSurrealConnection)",
}


def connection_kind(conn: Any) -> Kind | None:
    """``"async"`` or ``"blocking"`` for an SDK connection; ``None`` for anything else."""
    if isinstance(conn, _BLOCKING):  # before async: no class is both, but be explicit
        return "blocking"
    if isinstance(conn, _ASYNC):
        return "async"
    return None


def check_kind(conn: Any, wanted: Kind) -> None:
    """Raise :class:`TypeError` unless ``conn`` is an SDK connection of kind ``wanted``."""
    kind = connection_kind(conn)
    if kind == wanted:
        return
    told = f"{_USE[wanted]}.wrap() takes {_WHAT[wanted]}, not {type(conn).__qualname__}"
    if kind is not None:
        article = "an asynchronous" if kind == "async" else "a blocking"
        told += f": wrap {article} connection with {_USE[kind]}"
    raise TypeError(told)
