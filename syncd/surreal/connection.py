"""Connection manager: one SDK connection, kept alive, every call under a deadline.

The SurrealDB SDK's WebSocket client (2.0.0) never reconnects and has no
request timeout. Measured here: a request in flight when the server dies
raises ``KeyError``; later calls raise ``ConnectionClosedError`` forever, even
once the server is back; a frozen server hangs a call for about 50 s. So this
module owns the connection's life:

- every call runs under ``anyio.fail_after``; a timeout or transport error
  marks the connection *down* and is raised as ``SecondaryUnavailable`` (or
  ``PrimaryUnavailable``) — the only place SDK and websockets exceptions are
  translated;
- while down, a background task closes the broken client (bounded: close can
  hang on a frozen peer), then reconnects — connect, sign in, ``use`` — with
  exponential backoff and jitter capped at ``reconnect_backoff``;
- while up, it checks health every ``health_check_interval``;
- every transition is logged (``connection_up`` / ``connection_down``) and
  shown in metrics; callers wait for *up* with :meth:`wait_up`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import structlog
from anyio.abc import TaskStatus
from surrealdb import AsyncSurreal

from syncd.backoff import exponential_backoff, with_jitter
from syncd.config import Config, sdk_url
from syncd.errors import AuthenticationFailed, PrimaryUnavailable, SecondaryUnavailable, SyncdError

T = TypeVar("T")
log = structlog.get_logger("syncd.surreal.connection")

# What the SDK raises when the transport is gone. KeyError is the SDK's bug for
# a request in flight when the server dies; OSError covers refused connects.
_TRANSPORT_ERRORS: tuple[type[BaseException], ...]
try:
    from websockets.exceptions import WebSocketException

    _TRANSPORT_ERRORS = (OSError, KeyError, EOFError, WebSocketException)
except ImportError:  # pragma: no cover - websockets is a dependency
    _TRANSPORT_ERRORS = (OSError, KeyError, EOFError)

_CLOSE_TIMEOUT = 1.0


def is_transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection is unusable (as opposed to a refused query)."""
    # TimeoutError is an OSError, so the tuple covers our own deadlines too.
    if isinstance(exc, _TRANSPORT_ERRORS):
        return True
    # The SDK's ConnectionUnavailableError; matched by name to avoid depending
    # on where the SDK defines it.
    return type(exc).__name__ == "ConnectionUnavailableError"


class ManagedConnection:
    """A SurrealDB connection that reconnects itself and puts a deadline on every call."""

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
    ) -> None:
        self.role = role
        self._url = url
        self._user = user
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
        self._conn: Any = None
        self._connected_before = False
        self._first_attempt = anyio.Event()
        self._up = anyio.Event()
        self._down = anyio.Event()
        self.since = time.time()
        self.last_error = "not connected yet"
        self._error_type: type[SyncdError] = (
            PrimaryUnavailable if role == "primary" else SecondaryUnavailable
        )

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
        """Run ``fn(sdk_connection)`` within ``seconds``; translate transport failures.

        A transport failure marks the connection down. A timeout does too,
        unless ``timeout_marks_down`` is false (a slow read proves little).
        """
        if not self._up.is_set():
            raise self._error_type(f"{self.role} is down: {self.last_error}")
        conn = self._conn
        try:
            with anyio.fail_after(seconds):
                return await fn(conn)
        except Exception as exc:
            if not is_transport_error(exc):
                raise
            timed_out = isinstance(exc, TimeoutError)
            reason = "timeout" if timed_out else type(exc).__name__
            if timeout_marks_down or not timed_out:
                self.mark_down(reason, conn)
            raise self._error_type(f"{self.role} unavailable: {reason}") from exc

    def mark_down(self, reason: str, conn: Any = None) -> None:
        """Record that the connection failed; the run loop reconnects."""
        if conn is not None and conn is not self._conn:
            return  # a stale failure from a connection already replaced
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
                ours = isinstance(exc, SyncdError)  # already translated, e.g. a refused sign-in
                if not (ours or is_transport_error(exc) or _is_server_error(exc)):
                    # Unexpected, but retrying beats ending the process. No
                    # traceback: its frames hold the password being sent.
                    log.error("connection_error", role=self.role, error=describe(exc))
                self.last_error = describe(exc)
                self.failure = exc
                if self.on_failure is not None:
                    self.on_failure(exc)
                self._first_attempt.set()
                delay = next(delays)
                log.info(
                    "connection_retry",
                    role=self.role,
                    attempt=attempt,
                    error=self.last_error,
                    retry_in=round(delay, 3),
                )
                await anyio.sleep(delay)

    async def _connect_once(self) -> None:
        await self._discard()
        conn: Any = AsyncSurreal(sdk_url(self._url))
        self._conn = conn
        try:
            with anyio.fail_after(self._connect_timeout):
                await conn.connect()
                if self._user:
                    await _signin(conn, self.role, self._user, self._password)
                await conn.use(self._namespace, self._database)
        except BaseException:
            await self._discard()
            raise
        self._down = anyio.Event()
        self.since = time.time()
        self.last_error = ""
        self.failure = None
        self._up.set()
        self._first_attempt.set()
        log.info("connection_up", role=self.role)
        if self.on_state is not None:
            self.on_state(True)
        if self._connected_before and self._on_reconnect is not None:
            self._on_reconnect()
        self._connected_before = True

    async def _watch_health(self) -> None:
        while True:
            with anyio.move_on_after(self._health_interval):
                await self._down.wait()
            if self._down.is_set():
                return
            try:
                await self.call(_ping, self._connect_timeout)
            except SyncdError:
                return
            except Exception as exc:
                # The server answered with an error: it is alive.
                log.debug("health_check_error", role=self.role, error=describe(exc))

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # Shielded so a cancelled caller still frees the socket, bounded so a
        # frozen peer cannot hold it.
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE_TIMEOUT):
            try:
                await conn.close()
            except Exception as exc:
                log.debug("connection_close_error", role=self.role, error=describe(exc))
        # A frozen peer never finishes the close handshake: drop the socket.
        transport = getattr(getattr(conn, "socket", None), "transport", None)
        if transport is not None:
            transport.abort()
        task = getattr(conn, "recv_task", None)
        if task is not None and not task.done():
            task.cancel()


async def _signin(conn: Any, role: str, user: str, password: str) -> None:
    try:
        await conn.signin({"username": user, "password": password})
    except Exception as exc:
        # SDK 2.0.0 against 2.x and 3.x servers (and the devserver) says
        # "There was a problem with the database: There was a problem with
        # authentication" for a wrong user or password.
        if "problem with authentication" not in str(exc).lower():
            raise
        raise AuthenticationFailed(
            f"{role} refused the credentials of user {user!r} (check {role}_user and {role}_pass)"
        ) from None


async def _ping(conn: Any) -> object:
    return await conn.query("RETURN 1")


def _is_server_error(exc: BaseException) -> bool:
    # Sign-in refused, unknown namespace...: the server is up but said no.
    # Keep retrying (an operator may fix it) but say so in the logs.
    return isinstance(exc, RuntimeError | ValueError) or type(exc).__module__.startswith(
        "surrealdb"
    )


def describe(exc: BaseException) -> str:
    """One line naming an exception: its type and the first line of its message."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def managed_connection(
    config: Config,
    role: str,
    *,
    on_state: Callable[[bool], None] | None = None,
    on_reconnect: Callable[[], None] | None = None,
    on_failure: Callable[[BaseException], None] | None = None,
) -> ManagedConnection:
    """A (not yet running) managed connection to the ``role`` database of ``config``.

    ``role`` is ``"primary"`` or ``"secondary"``. An empty password means "do
    not sign in", as the config documents.
    """
    prefix = "primary" if role == "primary" else "secondary"
    password = getattr(config, f"{prefix}_pass").get_secret_value()
    return ManagedConnection(
        role=prefix,
        url=getattr(config, f"{prefix}_url"),
        user=getattr(config, f"{prefix}_user") if password else "",
        password=password,
        namespace=getattr(config, f"{prefix}_namespace"),
        database=getattr(config, f"{prefix}_database"),
        connect_timeout=config.connect_timeout,
        health_check_interval=config.health_check_interval,
        reconnect_backoff=config.reconnect_backoff,
        on_state=on_state,
        on_reconnect=on_reconnect,
        on_failure=on_failure,
    )
