"""Connections for the one-shot operator tools (verify, dlq replay, demo).

The tools talk to the primary and the secondary the way the pipeline does:
through a :class:`~syncd.surreal.connection.ManagedConnection`, so every call has a
deadline and errors are translated in one place. What differs is the
start: a tool cannot wait forever for a database that is not there, so
:func:`open_connection` gives up after its first attempt (at most
``connect_timeout``) with one line naming the database and why (the CLI
prints it and exits 2); a refused sign-in says so in its own words.

Verify and replay take anything with the :class:`Caller` shape, so the demo
can hand them its in-process embedded primary (:class:`DirectCaller`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, Protocol, TypeVar

import anyio

from syncd.config import Config, redact_url
from syncd.errors import AuthenticationFailed
from syncd.surreal.connection import ManagedConnection, managed_connection
from syncd.surreal.errors import cause, translated, unavailable
from syncd.surreal.sdkvalues import SdkSession

__all__ = ["CALL_TIMEOUT", "Caller", "DirectCaller", "open_connection"]

T = TypeVar("T")

#: Deadline of one tool call (a page read, a batch of lookups, an apply). A
#: page of a few hundred records takes milliseconds; longer means trouble.
CALL_TIMEOUT = 30.0

Role = Literal["primary", "secondary"]


class Caller(Protocol):
    """Runs ``fn(client)`` under a deadline (what ManagedConnection.call does)."""

    async def call(self, fn: Callable[[Any], Awaitable[T]], seconds: float) -> T:
        """Run ``fn`` on the connection within ``seconds``."""
        ...


class DirectCaller:
    """A :class:`Caller` over an already connected SDK connection (the demo's embedded primary)."""

    def __init__(self, conn: Any, role: Role = "primary") -> None:
        """Wrap ``conn``; its owner connects and closes it. Values cross as syncd's own."""
        self._conn = SdkSession(conn)
        self.role = role
        #: The server's version, once asked (:func:`server_version`).
        self.server_version: str | None = None

    async def call(self, fn: Callable[[Any], Awaitable[T]], seconds: float) -> T:
        """Run ``fn(conn)`` within ``seconds``; errors are translated as a managed call's are."""
        with translated(self.role), anyio.fail_after(seconds):
            return await fn(self._conn)


@asynccontextmanager
async def open_connection(
    config: Config, role: Role, *, secondary: str | None = None
) -> AsyncIterator[ManagedConnection]:
    """Connect to the ``role`` database and keep the connection managed while in use.

    ``secondary`` names which secondary (default: the first).

    Raises:
        AuthenticationFailed: the database refused the configured credentials.
        PrimaryUnavailable, SecondaryUnavailable: the first attempt failed, or took
            longer than ``connect_timeout`` (plus a second to be sure); the
            message names the URL (password masked) and the error.
        AuthenticationFailed: the database refused the user or password.
    """
    conn = managed_connection(config, role, secondary=secondary)
    url = redact_url(conn.url)
    # Entered by hand, as the Replicator does: the body's exception must reach
    # the caller as itself, not wrapped in an ExceptionGroup by the task group.
    tg = anyio.create_task_group()
    await tg.__aenter__()
    try:
        await tg.start(conn.run)
        # One attempt, as a command-line client does: a refused connection is
        # reported at once rather than retried while the operator waits.
        with anyio.move_on_after(config.connect_timeout + 1.0):
            await conn.wait_first_attempt()
        if not conn.is_up:
            if isinstance(conn.failure, AuthenticationFailed):
                raise AuthenticationFailed(f"cannot sign in to the {role} at {url}: {conn.failure}")
            error = unavailable(role)
            why = cause(conn.failure) if conn.failure is not None else "no answer in time"
            raise error(f"cannot connect to the {role} at {url}: {why}")
        yield conn
    finally:
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)


async def server_version(caller: Any, seconds: float = 10.0) -> str:
    """The version of the server behind ``caller`` (asked once, then remembered).

    A managed connection reads it at connect; a connection an application
    handed over is asked through its SDK, whose embedded engine is 2.x.
    """
    known = getattr(caller, "server_version", None)
    if isinstance(known, str):
        return known
    version = str(await caller.call(lambda c: c.version(), seconds))
    if hasattr(caller, "server_version"):
        caller.server_version = version
    return version
