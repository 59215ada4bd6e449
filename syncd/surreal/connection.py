"""Connection manager: one client session, kept alive, every call under a deadline.

Rules of this file:
- every call runs under ``anyio.fail_after``; a timeout or a transport error
  marks the connection *down* and is raised as the role's ``*Unavailable``
  (translation lives in :mod:`syncd.surreal.errors`); a server's refusal is
  raised as it is and says nothing about the connection;
- a failure of a client that has since been replaced is ignored;
- while down, a background task closes the broken client (bounded: close can
  hang on a frozen peer), then connects anew (connect, sign in, ``use``,
  ``version``) with exponential backoff and jitter capped at
  ``reconnect_backoff``; a refused sign-in is retried too (an operator may
  fix it) but is kept in :attr:`ManagedConnection.failure`;
- while up, it pings every ``health_check_interval``;
- every transition is logged (``connection_up`` / ``connection_down``) and
  reported to ``on_state``; callers wait for *up* with :meth:`wait_up`.

How to connect and how to sleep are injected (httpcore's backend idea), so
tests drive reconnects with a scripted client and no waiting.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import anyio
import structlog
from anyio.abc import TaskStatus

from syncd.backoff import exponential_backoff, with_jitter
from syncd.config import Config, Endpoint
from syncd.config.secondaries import FLAT_NAME
from syncd.errors import DatabaseUnavailable, SyncdError
from syncd.surreal.dialect import tested
from syncd.surreal.errors import (
    describe,
    is_transport_error,
    is_unavailable_timeout,
    translate,
    unavailable,
)
from syncd.surreal.rpc import RpcClient

__all__ = ["Client", "Connect", "ManagedConnection", "managed_connection"]

T = TypeVar("T")
log = structlog.get_logger("syncd.surreal.connection")

_CLOSE_TIMEOUT = 1.0


class Client(Protocol):
    """What the connection manager and its callers use of a session (RpcClient, test fakes)."""

    async def query(
        self, sql: str, vars: Mapping[str, Any] | None = None, *, sdk_values: bool | None = None
    ) -> Any:
        """The first statement's result; raises ``ServerError`` on a failed statement."""
        ...

    async def query_raw(
        self, sql: str, vars: Mapping[str, Any] | None = None, *, sdk_values: bool | None = None
    ) -> dict[str, Any]:
        """The whole answer: ``{"result": [...]}`` per statement, or ``{"error": ...}``."""
        ...

    async def select(self, thing: Any, *, sdk_values: bool | None = None) -> Any:
        """``SELECT * FROM thing``, as the SDK's ``select``."""
        ...

    async def version(self) -> str:
        """The server's version."""
        ...

    async def ping(self) -> None:
        """One round trip."""
        ...

    async def close(self) -> None:
        """Close the session (bounded)."""
        ...


#: Opens a signed-in session using the database (RpcClient by default; a fake in tests).
Connect = Callable[[], Awaitable[Client]]


class ManagedConnection:
    """A SurrealDB session that reconnects itself and puts a deadline on every call."""

    def __init__(
        self,
        *,
        role: str,
        url: str,
        user: str,
        password: str,
        namespace: str,
        database: str,
        connect_timeout: float,
        health_check_interval: float,
        reconnect_backoff: float,
        on_state: Callable[[bool], None] | None = None,
        on_reconnect: Callable[[], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        rng: random.Random | None = None,
        connect: Connect | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        name: str | None = None,
    ) -> None:
        """Configure; nothing is opened until :meth:`run`.

        ``name``: which of several secondaries this is (named when its
        credentials are refused; its events are named by the replica's
        logging context).

        ``connect`` opens a signed-in session using the database (default: an
        :class:`RpcClient` to ``url``); ``sleep`` waits between attempts.
        """
        self.role = role
        self.name = name
        self.url = url
        self.user = user
        self._password = password
        self._namespace = namespace
        self._database = database
        self._connect_timeout = connect_timeout
        self._health_interval = health_check_interval
        self._backoff_cap = reconnect_backoff
        self.on_state = on_state
        self._on_reconnect = on_reconnect
        self.on_failure = on_failure
        #: Why the last connect attempt failed; None once up. An
        #: AuthenticationFailed here is the operator's to fix, not an outage.
        self.failure: BaseException | None = None
        self._rng = rng or random.Random()
        self._connect: Connect = connect or self._open_client
        self._sleep = sleep
        self._conn: Client | None = None
        self._connected_before = False
        self._first_attempt = anyio.Event()
        self._up = anyio.Event()
        self._down = anyio.Event()
        self._error_type = unavailable(role)
        #: When the connection last went up or down (``time.time()``).
        self.since = time.time()
        #: One line on why the connection is down ("" while up).
        self.last_error = "not connected yet"
        #: The server's version (the ``version`` RPC), once connected.
        self.server_version: str | None = None

    @property
    def label(self) -> str:
        """How messages name this database: its role, or ``secondary 'archive'`` for one
        of several (the flat config's one secondary is just ``secondary``)."""
        if self.name is None or self.name == FLAT_NAME:
            return self.role
        return f"{self.role} {self.name!r}"

    @property
    def is_up(self) -> bool:
        """Whether the last call or health check succeeded."""
        return self._up.is_set()

    async def wait_first_attempt(self) -> None:
        """Block until the first connection attempt has succeeded or failed."""
        await self._first_attempt.wait()

    async def wait_up(self) -> None:
        """Block until the connection is up."""
        await self._up.wait()

    async def call(
        self,
        fn: Callable[[Any], Awaitable[T]],
        seconds: float,
        *,
        timeout_marks_down: bool = True,
    ) -> T:
        """Run ``fn(client)`` within ``seconds``; translate transport failures.

        A transport failure marks the connection down. A timeout does too,
        unless ``timeout_marks_down`` is false (a slow read proves little).
        """
        conn = self._conn
        if not self._up.is_set() or conn is None:
            raise self._error_type(f"{self.role} is down: {self.last_error}")
        try:
            with anyio.fail_after(seconds):
                return await fn(conn)
        except Exception as exc:
            error = translate(exc, self.role)
            if not is_transport_error(error):
                if error is exc:
                    raise
                raise error from exc
            timed_out = is_unavailable_timeout(exc)
            reason = "timeout" if timed_out else describe(exc)
            if timeout_marks_down or not timed_out:
                self.mark_down(reason, conn)
            if isinstance(exc, self._error_type) and not timed_out:
                raise  # the client's own words ("connection lost (...)")
            raise self._error_type(f"{self.role} unavailable: {reason}") from exc

    def mark_down(self, reason: str, conn: Any = None) -> None:
        """Record that the connection failed; the run loop reconnects.

        ``conn`` is the client that failed: a failure of one already replaced
        says nothing about the current one and is ignored.
        """
        if conn is not None and conn is not self._conn:
            return
        self.last_error = reason
        if self._up.is_set():
            self._up = anyio.Event()
            self.since = time.time()
            log.warning("connection_down", role=self.role, reason=reason)
            if self.on_state is not None:
                self.on_state(False)
        self._down.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep the connection up until cancelled. Starts at once, even if down."""
        task_status.started()
        try:
            while True:
                await self._connect_with_backoff()
                await self._watch_health()
        finally:
            await self._discard()

    async def _connect_with_backoff(self) -> None:
        delays = with_jitter(
            exponential_backoff(min(0.2, self._backoff_cap), self._backoff_cap), self._rng
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._connect_once()
                return
            except Exception as exc:
                error = translate(exc, self.role)
                if not isinstance(error, SyncdError):
                    # Unexpected, but retried rather than ending the process.
                    # No traceback: its frames hold the password being sent.
                    # (A refused sign-in is the on_failure hook's to report.)
                    log.error("connection_error", role=self.role, error=describe(error))
                self.last_error = describe(error)
                self.failure = error
                if self.on_failure is not None:
                    self.on_failure(error)
                self._first_attempt.set()
                delay = next(delays)
                log.info(
                    "connection_retry",
                    role=self.role,
                    attempt=attempt,
                    error=self.last_error,
                    retry_in=round(delay, 3),
                )
                await self._sleep(delay)

    async def _connect_once(self) -> None:
        await self._discard()
        with anyio.fail_after(self._connect_timeout):
            conn = await self._connect()
            try:
                version = await conn.version()
            except BaseException:
                await _close(conn, self.role)
                raise
        self._conn = conn
        if version != self.server_version and tested(version) is False:
            # 4.x and later: no engine of them could be tested; the 3.x rules apply.
            log.warning("server_untested", role=self.role, version=version)
        self.server_version = version
        self._down = anyio.Event()
        self.since = time.time()
        self.last_error = ""
        self.failure = None
        self._up.set()
        self._first_attempt.set()
        log.info("connection_up", role=self.role, version=version)
        if self.on_state is not None:
            self.on_state(True)
        if self._connected_before and self._on_reconnect is not None:
            self._on_reconnect()
        self._connected_before = True

    async def _open_client(self) -> Client:
        """The default ``connect``: an :class:`RpcClient` signed in and using the database."""
        opened: list[RpcClient] = []

        def lost(reason: str) -> None:
            # Noticed with no call waiting (keepalive): down now, not at the
            # next call. Before the client is known, connect itself fails.
            if opened:
                self.mark_down(f"connection lost ({reason})", opened[0])

        client = await RpcClient.connect(
            self.url, role=self.role, open_timeout=self._connect_timeout, on_lost=lost
        )
        opened.append(client)
        try:
            if self.user:
                who = None if self.label == self.role else self.label
                await client.signin(self.user, self._password, who=who)
            await client.use(self._namespace, self._database)
        except BaseException:
            # Shielded: a cancelled connect (shutdown mid-attempt) must still
            # close its socket; close() is bounded on its own.
            with anyio.CancelScope(shield=True):
                await client.close()
            raise
        return client

    async def _watch_health(self) -> None:
        while True:
            with anyio.move_on_after(self._health_interval):
                await self._down.wait()
            if self._down.is_set():
                return
            try:
                await self.call(_ping, self._connect_timeout)
            except DatabaseUnavailable:
                return
            except Exception as exc:
                # The server answered with an error: it is alive.
                log.debug("health_check_error", role=self.role, error=describe(exc))

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close(conn, self.role)


async def _ping(conn: Client) -> None:
    await conn.ping()


async def _close(conn: Client, role: str) -> None:
    # Shielded so a cancelled caller still frees the socket, bounded so a
    # frozen peer cannot hold it (RpcClient.close aborts the transport too).
    with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
        try:
            await conn.close()
        except Exception as exc:
            log.debug("connection_close_error", role=role, error=describe(exc))


def managed_connection(
    config: Config,
    role: str,
    *,
    secondary: str | None = None,
    name: str | None = None,
    on_state: Callable[[bool], None] | None = None,
    on_reconnect: Callable[[], None] | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
) -> ManagedConnection:
    """A (not yet running) managed connection to the ``role`` database of ``config``.

    ``role`` is ``"primary"`` or ``"secondary"``; ``secondary`` names which one
    (default: the first). The endpoint's settings are its own, the timings
    shared. An empty password means "do not sign in", as the config documents.
    """
    prefix = "primary" if role == "primary" else "secondary"
    if prefix == "primary":
        endpoint: Endpoint = config.primary
    else:
        endpoint = config.secondary(secondary or config.secondary_names()[0])
    password = endpoint.password.get_secret_value()
    return ManagedConnection(
        role=prefix,
        url=endpoint.url,
        user=endpoint.user if password else "",
        password=password,
        namespace=endpoint.namespace,
        database=endpoint.database,
        connect_timeout=config.connect_timeout,
        health_check_interval=config.health_check_interval,
        reconnect_backoff=config.reconnect_backoff,
        on_state=on_state,
        on_reconnect=on_reconnect,
        on_failure=on_failure,
        name=name,
    )
