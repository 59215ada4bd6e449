"""The tap keeps each wrapped connection's answer bytes without touching anything process-wide."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs
from surrealdb import AsyncSurreal, Surreal
from surrealdb import RecordID as SdkRecordID
from surrealdb.connections import (
    async_embedded,
    async_http,
    async_ws,
    blocking_embedded,
    blocking_http,
    blocking_ws,
)
from surrealdb.data.cbor import decode as sdk_decode

from syncd.surreal import tap as tapping
from syncd.surreal.codec import Datetime, decode
from syncd.surreal.tap import take, tap

_URLS = ("ws://127.0.0.1:9/rpc", "http://127.0.0.1:9", "mem://")
_MODULES = (async_ws, async_http, async_embedded, blocking_ws, blocking_http, blocking_embedded)


@pytest.mark.parametrize("url", _URLS)
def test_every_connection_kind_is_tapped_alone(url: str) -> None:
    tapped, untouched = Surreal(url), Surreal(url)
    for conn in (tapped, AsyncSurreal(url)):
        assert tapping.tap(conn)
        assert tapping.tap(conn)  # twice is once
    # Only the instance's own _send changed: its class, its modules and
    # another connection of the same class decode as the SDK does.
    assert "_send" in vars(tapped)
    assert "_send" not in vars(untouched)
    for module in _MODULES:
        assert module.decode is sdk_decode  # type: ignore[attr-defined]


def test_an_untested_sdk_is_not_tapped_and_said_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tapping, "sdk_version", lambda: "9.9.9")
    monkeypatch.setattr(tapping, "_warned", False)
    with capture_logs() as logs:
        assert not tapping.tap(Surreal("mem://"))
        assert not tapping.tap(AsyncSurreal("mem://"))
    assert [e["event"] for e in logs] == ["sdk_untested"]
    assert logs[0]["version"] == "9.9.9"


def test_something_else_is_not_tapped() -> None:
    assert not tapping.tap(object())


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_the_last_answer_s_bytes_are_taken_once(primary: Any) -> None:
    assert tap(primary)
    assert tap(primary)  # tapping twice is harmless
    take()  # whatever an earlier call left
    await primary.query("CREATE t:a SET at = d'2026-11-02T10:00:05.123456789Z', gone = NULL")
    data = take()
    assert data is not None
    answer = decode(data)
    [statement] = answer["result"]
    [row] = statement["result"]
    assert row["at"] == Datetime.from_iso("2026-11-02T10:00:05.123456789Z")  # nanoseconds kept
    assert "gone" in row and row["gone"] is None
    assert take() is None  # once


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_the_application_still_gets_the_sdk_s_values(primary: Any) -> None:
    tap(primary)
    rows = await primary.query("CREATE t:b SET n = 1")
    assert rows[0]["id"] == SdkRecordID("t", "b")
    take()


@pytest.mark.integration
@pytest.mark.timeout(120)
async def test_each_task_takes_its_own_answer(primary: Any) -> None:
    tap(primary)
    taken: dict[int, Any] = {}

    async def ask(n: int) -> None:
        await primary.query(f"RETURN {n}")
        data = take()
        assert data is not None
        taken[n] = decode(data)["result"][0]["result"]

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n in range(5):
                tg.start_soon(ask, n)
    assert taken == {n: n for n in range(5)}


def test_what_is_not_an_sdk_connection_is_left_alone() -> None:
    class Other:
        async def _send(self, message: Any) -> None:
            return None

    other = Other()
    send = other._send
    assert not tap(other)
    assert not tap(object())
    assert other._send == send
