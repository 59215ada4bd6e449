"""The connection manager with a scripted session: reconnects, deadlines, stale failures, auth.

No socket and no engine: connect and sleep are injected, so each test runs in
milliseconds and the backoff schedule is observed rather than waited out.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from syncd.errors import (
    AuthenticationFailed,
    PrimaryUnavailable,
    SecondaryUnavailable,
    ServerError,
)
from syncd.surreal.connection import ManagedConnection
from tests.support.fake_client import FakeClient, FakeDatabase, Sleeps, managed

pytestmark = pytest.mark.timeout(10)


@asynccontextmanager
async def running(conn: ManagedConnection) -> AsyncIterator[ManagedConnection]:
    """``conn`` with its run loop going; cancelled on exit."""
    async with anyio.create_task_group() as tg:
        await tg.start(conn.run)
        yield conn
        tg.cancel_scope.cancel()


async def up(conn: ManagedConnection) -> None:
    with anyio.fail_after(2):
        await conn.wait_up()


async def test_connects_and_records_the_server_version() -> None:
    db = FakeDatabase()
    async with running(managed(db)) as conn:
        await up(conn)
        assert conn.server_version == "surrealdb-2.3.10"
        assert await conn.call(lambda c: c.query("RETURN 3"), 1) == 3
        assert conn.last_error == "" and conn.failure is None


async def test_reconnects_with_backoff_and_jitter_using_the_injected_sleep() -> None:
    db = FakeDatabase()
    db.reachable = False
    sleeps = Sleeps()

    def back_after_five(count: int) -> None:
        if count == 5:
            db.reachable = True

    sleeps.on_sleep = back_after_five
    started = time.monotonic()
    async with running(managed(db, sleeps, reconnect_backoff=0.5)) as conn:
        await up(conn)
    assert time.monotonic() - started < 1.0  # nothing actually slept
    assert db.connects == 6
    # Exponential from 0.2, capped at reconnect_backoff, each with equal jitter.
    for delay, nominal in zip(sleeps.delays, [0.2, 0.4, 0.5, 0.5, 0.5], strict=True):
        assert nominal / 2 <= delay <= nominal


async def test_a_refused_connect_is_reported_after_the_first_attempt() -> None:
    db = FakeDatabase()
    db.reachable = False
    async with running(managed(db, Sleeps(real=0.01))) as conn:
        with anyio.fail_after(1):
            await conn.wait_first_attempt()
        assert not conn.is_up
        assert "ConnectionRefusedError" in conn.last_error
        with pytest.raises(SecondaryUnavailable, match="is down"):
            await conn.call(lambda c: c.query("RETURN 1"), 1)


async def test_a_hanging_connect_is_bounded_by_connect_timeout() -> None:
    db = FakeDatabase()
    db.connect_hangs = True
    sleeps = Sleeps(real=0.01)
    async with running(managed(db, sleeps, connect_timeout=0.05)) as conn:
        with anyio.fail_after(1):
            await conn.wait_first_attempt()
        assert "timeout" in conn.last_error
        db.connect_hangs = False
        await up(conn)


async def test_a_timeout_marks_down_and_the_loop_reconnects() -> None:
    db = FakeDatabase()
    states: list[bool] = []
    reconnects: list[None] = []
    conn = managed(db, on_state=states.append, on_reconnect=lambda: reconnects.append(None))
    async with running(conn):
        await up(conn)
        first = db.clients[0]
        with pytest.raises(SecondaryUnavailable, match="timeout") as caught:
            await conn.call(lambda c: anyio.sleep_forever(), 0.05)
        assert isinstance(caught.value.__cause__, TimeoutError)
        assert not conn.is_up and conn.last_error == "timeout"
        await up(conn)
        assert db.connects == 2 and not first.open  # the old session was closed
    assert states == [True, False, True]
    assert len(reconnects) == 1


async def test_a_slow_read_need_not_mark_down() -> None:
    db = FakeDatabase()
    async with running(managed(db)) as conn:
        await up(conn)
        with pytest.raises(SecondaryUnavailable, match="timeout"):
            await conn.call(lambda c: anyio.sleep_forever(), 0.05, timeout_marks_down=False)
        assert conn.is_up and db.connects == 1


async def test_a_stale_sessions_failure_after_a_replacement_is_ignored() -> None:
    db = FakeDatabase()
    release = anyio.Event()
    outcome: list[BaseException] = []

    async def fails_late(client: FakeClient) -> Any:
        await release.wait()
        raise ConnectionResetError(104, "Connection reset by peer")

    async def slow_call() -> None:
        try:
            await conn.call(fails_late, 5)
        except SecondaryUnavailable as exc:
            outcome.append(exc)

    async with running(managed(db)) as conn, anyio.create_task_group() as tg:
        await up(conn)
        tg.start_soon(slow_call)
        await anyio.wait_all_tasks_blocked()
        conn.mark_down("reset", db.clients[0])  # another call saw the first session die
        await up(conn)
        assert db.connects == 2
        release.set()  # the first session's call fails only now
        await anyio.wait_all_tasks_blocked()
        assert len(outcome) == 1  # the caller still learns its call failed...
        assert conn.is_up  # ...but the replacement is not marked down for it
        assert db.connects == 2


async def test_a_refusal_is_raised_as_it_is_and_keeps_the_connection_up() -> None:
    db = FakeDatabase()
    async with running(managed(db)) as conn:
        await up(conn)
        with pytest.raises(ServerError, match="does not run"):
            await conn.call(lambda c: c.query("SELECT nonsense"), 1)
        assert conn.is_up


async def test_transport_errors_become_the_roles_unavailable() -> None:
    db = FakeDatabase()

    async def reset(client: FakeClient) -> None:
        raise ConnectionResetError(104, "Connection reset by peer")

    async with running(managed(db, role="primary")) as conn:
        await up(conn)
        with pytest.raises(PrimaryUnavailable, match="ConnectionResetError") as caught:
            await conn.call(reset, 1)
        assert isinstance(caught.value.__cause__, ConnectionResetError)
        assert not conn.is_up


async def test_a_failed_health_check_marks_down_and_reconnects() -> None:
    db = FakeDatabase()
    db.ping_failures = 1
    states: list[bool] = []
    back_up = anyio.Event()

    def on_state(up: bool) -> None:
        states.append(up)
        if states == [True, False, True]:
            back_up.set()

    async with running(managed(db, health_check_interval=0.01, on_state=on_state)):
        with anyio.fail_after(2):
            await back_up.wait()
    assert db.connects == 2


async def test_an_authentication_failure_surfaces_and_is_retried() -> None:
    db = FakeDatabase()
    db.password_ok = False
    sleeps = Sleeps(real=0.01)
    async with running(managed(db, sleeps)) as conn:
        with anyio.fail_after(1):
            await conn.wait_first_attempt()
        assert not conn.is_up
        assert isinstance(conn.failure, AuthenticationFailed)
        assert conn.last_error.startswith("AuthenticationFailed")
        with pytest.raises(SecondaryUnavailable, match="AuthenticationFailed"):
            await conn.call(lambda c: c.query("RETURN 1"), 1)
        db.password_ok = True  # an operator fixed it: the loop picks it up
        await up(conn)
        assert conn.failure is None
