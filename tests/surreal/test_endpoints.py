"""Connections for the one-shot tools: one attempt then one line, and calls over an
application's own connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.errors import AuthenticationFailed, PrimaryUnavailable, SecondaryUnavailable, ServerError
from syncd.surreal.codec import RecordID
from syncd.surreal.endpoints import DirectCaller, open_connection, server_version
from tests.support.replica import dead_url, embedded_primary, make_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_an_embedded_primary_opens_and_answers(tmp_path: Path) -> None:
    config = make_config(tmp_path, dead_url(), primary_url="mem://")
    with anyio.fail_after(60):
        async with open_connection(config, "primary") as conn:
            assert conn.is_up
            assert await conn.call(lambda c: c.query("RETURN 6 * 7"), 10) == 42
            assert (await server_version(conn)).startswith("surrealdb-")


async def test_a_secondary_that_is_down_is_one_line_naming_it(tmp_path: Path) -> None:
    url = dead_url().replace("ws://", "ws://root:hunter2@")
    config = make_config(tmp_path, url, connect_timeout="2s")
    with anyio.fail_after(60), pytest.raises(SecondaryUnavailable) as caught:
        async with open_connection(config, "secondary"):
            raise AssertionError("not reached")
    text = str(caught.value)
    assert text.startswith("cannot connect to the secondary at ws://root:***@127.0.0.1:")
    assert "hunter2" not in text and "\n" not in text


async def test_the_body_s_own_error_comes_out_as_itself(tmp_path: Path) -> None:
    config = make_config(tmp_path, dead_url(), primary_url="mem://")
    with anyio.fail_after(60), pytest.raises(KeyError):
        async with open_connection(config, "primary"):
            raise KeyError("from the body")


async def test_a_refused_sign_in_says_so(tmp_path: Path) -> None:
    server = ServerProcess(store="mem://", engine=2)
    server.start()
    try:
        config = make_config(tmp_path, server.url, secondary_pass="wrong", connect_timeout="5s")
        with anyio.fail_after(60), pytest.raises(AuthenticationFailed) as caught:
            async with open_connection(config, "secondary"):
                raise AssertionError("not reached")
        assert str(caught.value).startswith(f"cannot sign in to the secondary at {server.url}")
        assert "wrong" not in str(caught.value)
    finally:
        server.stop()


async def test_a_direct_caller_speaks_syncds_values_and_its_errors() -> None:
    async with embedded_primary() as db:
        caller = DirectCaller(db)
        await caller.call(lambda c: c.query("CREATE t:a SET n = 1"), 10)
        rows = await caller.call(lambda c: c.query("SELECT * FROM t"), 10)
        assert rows == [{"id": RecordID("t", "a"), "n": 1}]
        with pytest.raises(ServerError):
            await caller.call(lambda c: c.query("CREATE t:a SET n = 2"), 10)
        assert await server_version(caller) == caller.server_version
        assert caller.server_version is not None


async def test_a_direct_call_past_its_deadline_is_the_roles_unavailable() -> None:
    async with embedded_primary() as db:
        caller = DirectCaller(db, "primary")

        async def slow(conn: Any) -> None:
            await anyio.sleep_forever()

        with anyio.fail_after(30), pytest.raises(PrimaryUnavailable, match="timeout"):
            await caller.call(slow, 0.05)


async def test_server_version_is_asked_once() -> None:
    class Counting:
        server_version: str | None = None
        asked = 0

        async def call(self, fn: Any, seconds: float) -> Any:
            self.asked += 1

            class Conn:
                async def version(self) -> str:
                    return "surrealdb-3.2.4"

            return await fn(Conn())

    caller = Counting()
    assert await server_version(caller) == "surrealdb-3.2.4"
    assert await server_version(caller) == "surrealdb-3.2.4"
    assert caller.asked == 1
