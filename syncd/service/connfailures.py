"""What a failed connection attempt means, in logs and metrics.

The connection manager (:mod:`syncd.surreal.connection`) retries every failed
attempt and hands each failure to its ``on_failure`` hook; this module is
that hook for the pipeline and the daemon. Everything here reads the
*exception* only: a refused sign-in arrives as
:class:`~syncd.errors.AuthenticationFailed`, however the connection manager
learnt it, so the logging, the metric and the tools' exit follow it through
any rewrite of the connection code.

A refused sign-in is the operator's to fix (a wrong password does not heal by
waiting), so it is an error with its own event, ``connection_auth_failed``,
and the ``auth`` reason of ``syncd_connection_failures_total``; an
unreachable server is an outage, logged as retries by the connection manager.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from syncd.config import redact_url
from syncd.errors import AuthenticationFailed, DatabaseUnavailable
from syncd.logs import get_logger
from syncd.metrics import Metrics
from syncd.surreal.connection import ManagedConnection
from syncd.surreal.errors import is_transport_error, is_unavailable_timeout

__all__ = ["failure_label", "failure_reason", "refused", "reporter", "watch_credentials"]

log = get_logger(__name__)


def failure_reason(exc: BaseException) -> str:
    """The ``reason`` label for a failed attempt: auth, timeout, unreachable or server."""
    if isinstance(exc, AuthenticationFailed):
        return "auth"
    if is_unavailable_timeout(exc):
        return "timeout"
    if isinstance(exc, DatabaseUnavailable) or is_transport_error(exc):
        return "unreachable"
    return "server"  # it answered, and said no to something other than the credentials


def reporter(metrics: Metrics, role: str) -> Callable[[BaseException], None]:
    """An ``on_failure`` hook counting ``role``'s failed attempts and logging refused sign-ins."""

    # The primary has no secondary label value; a secondary's is its name.
    secondary = metrics.secondary if role == "secondary" else ""

    def report(exc: BaseException) -> None:
        reason = failure_reason(exc)
        metrics.connection_failures.labels(role, reason, secondary).inc()
        if reason == "auth":
            where = {"secondary": secondary} if secondary else {}
            log.error("connection_auth_failed", role=role, error=str(exc), **where)

    return report


def failure_label(conn: ManagedConnection) -> str | None:
    """``/status``'s word for why ``conn`` is down (a :func:`failure_reason`); None when up."""
    failure = conn.failure
    return None if conn.is_up or failure is None else failure_reason(failure)


def refused(conn: ManagedConnection) -> AuthenticationFailed | None:
    """The refusal keeping ``conn`` down, if its last attempt was refused its credentials."""
    failure = conn.failure
    if conn.is_up or not isinstance(failure, AuthenticationFailed):
        return None
    return failure


async def watch_credentials(*conns: ManagedConnection) -> None:
    """Raise as soon as one of ``conns`` is refused its credentials (for one-shot tools).

    A tool must not wait, as the pipeline does, for a connection that will
    never come up: a wrong password ends it with one line naming the database.

    Raises:
        AuthenticationFailed: naming the role and its URL (password masked).
    """
    while True:
        for conn in conns:
            failure = refused(conn)
            if failure is not None:
                url = redact_url(conn.url)
                raise AuthenticationFailed(
                    f"cannot sign in to the {conn.label} at {url}: {failure}"
                )
        await anyio.sleep(0.05)
