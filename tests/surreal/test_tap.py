"""The tap: an SDK connection's answers kept as their own bytes, taken once per task."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from surrealdb import RecordID as SdkRecordID

from syncd.surreal.codec import Datetime, decode
from syncd.surreal.tap import take, tap

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


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


async def test_the_application_still_gets_the_sdk_s_values(primary: Any) -> None:
    tap(primary)
    rows = await primary.query("CREATE t:b SET n = 1")
    assert rows[0]["id"] == SdkRecordID("t", "b")
    take()


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
