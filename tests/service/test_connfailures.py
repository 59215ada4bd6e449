"""A refused sign-in: classified where it enters, then an error event, a metric label, a verdict.

The devserver enforces the sign-in as ``surreal start`` does, so a wrong
password gets today's real SDK error, which the connection manager turns
into :class:`~syncd.errors.AuthenticationFailed`.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import structlog

from syncd.config import Config
from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.errors import AuthenticationFailed, SecondaryUnavailable, ServerError
from syncd.logs import configure_logging
from syncd.metrics import Metrics
from syncd.service.connfailures import (
    failure_label,
    failure_reason,
    refused,
    reporter,
    watch_credentials,
)
from syncd.surreal.connection import managed_connection

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Capture syncd's JSON log lines; restore the logging setup afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging("debug", json=True, stream=out)
    yield out
    structlog.reset_defaults()
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def events(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def config(url: str, password: str, **extra: Any) -> Config:
    return Config.from_mapping(
        {
            "secondary_url": url,
            "secondary_pass": password,
            "connect_timeout": "5s",
            "reconnect_backoff": "200ms",
            **extra,
        }
    )


def test_failure_reasons() -> None:
    assert failure_reason(AuthenticationFailed("x")) == "auth"
    assert failure_reason(TimeoutError()) == "timeout"
    assert failure_reason(ConnectionRefusedError()) == "unreachable"
    assert failure_reason(RuntimeError("the server said no")) == "server"
    # What the connection manager hands over: its own translated errors.
    assert failure_reason(SecondaryUnavailable("x")) == "unreachable"
    timed_out = SecondaryUnavailable("secondary timed out")
    timed_out.__cause__ = TimeoutError()
    assert failure_reason(timed_out) == "timeout"
    assert failure_reason(ServerError(-32000, "no")) == "server"


def test_reporter_counts_every_failure_and_logs_refusals_as_errors(log_lines: io.StringIO) -> None:
    metrics = Metrics()
    report = reporter(metrics, "secondary")
    report(ConnectionRefusedError())
    report(AuthenticationFailed("secondary refused the credentials of user 'root'"))
    report(AuthenticationFailed("secondary refused the credentials of user 'root'"))
    value = metrics.registry.get_sample_value
    labels = {"role": "secondary", "secondary": "secondary"}
    assert value("syncd_connection_failures_total", {**labels, "reason": "auth"}) == 2
    assert value("syncd_connection_failures_total", {**labels, "reason": "unreachable"}) == 1
    logged = [e for e in events(log_lines) if e["event"] == "connection_auth_failed"]
    assert len(logged) == 2 and {e["level"] for e in logged} == {"error"}
    assert logged[0]["role"] == "secondary" and "refused the credentials" in logged[0]["error"]
    assert logged[0]["secondary"] == "secondary"


@pytest.mark.integration
async def test_a_wrong_password_is_an_authentication_failure(log_lines: io.StringIO) -> None:
    with ServerProcess(user="root", password="root") as server:
        metrics = Metrics()
        conn = managed_connection(
            config(server.url, "not-the-password"),
            "secondary",
            on_failure=reporter(metrics, "secondary"),
        )
        async with anyio.create_task_group() as tg:
            await tg.start(conn.run)
            with anyio.fail_after(5):
                await conn.wait_first_attempt()
            assert not conn.is_up
            assert isinstance(conn.failure, AuthenticationFailed)
            assert refused(conn) is conn.failure and failure_label(conn) == "auth"
            assert str(conn.failure) == (
                "secondary refused the credentials of user 'root' "
                "(check secondary_user and secondary_pass)"
            )
            with pytest.raises(AuthenticationFailed, match="cannot sign in to the secondary at"):
                with anyio.fail_after(5):
                    await watch_credentials(conn)
            tg.cancel_scope.cancel()
        # The right password, same server: up, and nothing refused.
        good = managed_connection(config(server.url, "root"), "secondary")
        async with anyio.create_task_group() as tg:
            await tg.start(good.run)
            with anyio.fail_after(5):
                await good.wait_up()
            assert good.failure is None and refused(good) is None and failure_label(good) is None
            tg.cancel_scope.cancel()
    sample = metrics.registry.get_sample_value(
        "syncd_connection_failures_total",
        {"role": "secondary", "reason": "auth", "secondary": "secondary"},
    )
    assert sample is not None and sample >= 1
    text = log_lines.getvalue()
    assert "not-the-password" not in text
    assert any(e["event"] == "connection_auth_failed" for e in events(log_lines))
