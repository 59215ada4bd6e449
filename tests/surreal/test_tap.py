"""The tap keeps each wrapped connection's answer bytes without touching anything process-wide."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs
from surrealdb import AsyncSurreal, Surreal
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
