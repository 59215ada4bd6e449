"""Where websockets, OS, engine and SDK exceptions become syncd's: one place, one table.

Rules of this file:
- the transport failing (refused, reset, closed, keepalive lost, a deadline
  passed) becomes the role's ``*Unavailable``: retriable, the connection
  manager reconnects and the caller tries again;
- the database answering with an error (a refused query or request) becomes
  :class:`~syncd.errors.ServerError`: the server is up, retrying the same
  request will not help;
- a refused sign-in becomes :class:`~syncd.errors.AuthenticationFailed`:
  nothing changes until an operator fixes the password;
- anything else (a bug, an unencodable value) is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from surrealdb import errors as sdk_errors
from websockets.exceptions import WebSocketException

from syncd.errors import (
    DatabaseUnavailable,
    PrimaryUnavailable,
    SecondaryUnavailable,
    ServerError,
    SyncdError,
)
from syncd.surreal.transport import EngineRefused, TransportClosed

__all__ = [
    "ENGINE_ERROR_CODE",
    "cause",
    "describe",
    "is_transport_error",
    "is_unavailable_timeout",
    "server_error",
    "statement_error",
    "translate",
    "translated",
    "unavailable",
]


class _Absent(Exception):
    """Stands for an SDK error class an SDK version does not have (1.0.x: neither)."""


# 2.0's; 1.0.x raises plain exceptions (its connection errors are OSError/websockets').
ConnectionUnavailableError: type[Exception] = getattr(
    sdk_errors, "ConnectionUnavailableError", _Absent
)
SdkServerError: type[Exception] = getattr(sdk_errors, "ServerError", _Absent)

#: The RPC error code ``surreal start`` (and the devserver) put on engine errors.
ENGINE_ERROR_CODE = -32000

# TimeoutError is an OSError: our own deadlines are transport failures too.
_TRANSPORT: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    WebSocketException,
    TransportClosed,
    ConnectionUnavailableError,
)


def unavailable(role: str) -> type[DatabaseUnavailable]:
    """The ``*Unavailable`` error of a database role (``primary``, ``secondary``)."""
    if role == "primary":
        return PrimaryUnavailable
    if role == "secondary":
        return SecondaryUnavailable
    return DatabaseUnavailable


def is_transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection is unusable (as opposed to a refused query)."""
    return isinstance(exc, (DatabaseUnavailable, *_TRANSPORT))


def is_unavailable_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is a deadline that passed (a slow answer, maybe a frozen peer)."""
    return isinstance(exc, TimeoutError) or (
        isinstance(exc, DatabaseUnavailable) and isinstance(exc.__cause__, TimeoutError)
    )


def server_error(error: Any) -> ServerError:
    """The :class:`ServerError` of an RPC error object ``{code, message, kind?, details?}``."""
    if not isinstance(error, Mapping):
        return ServerError(0, str(error))
    code = error.get("code")
    return ServerError(
        code if isinstance(code, int) else 0,
        str(error.get("message", "")),
        kind=error.get("kind"),
        details=error.get("details"),
    )


def statement_error(statement: Mapping[str, Any]) -> ServerError:
    """The :class:`ServerError` of a failed statement (``status: ERR``) of a query."""
    return ServerError(
        0,
        str(statement.get("result", "")),
        kind=statement.get("kind"),
        details=statement.get("details"),
    )


def translate(exc: BaseException, role: str) -> BaseException:
    """The syncd error for ``exc`` raised while talking to the ``role`` database.

    Returns ``exc`` itself when it is already syncd's, or not ours to translate.
    """
    if isinstance(exc, SyncdError):
        return exc
    if isinstance(exc, TimeoutError):
        return unavailable(role)(f"{role} unavailable: timeout")
    if isinstance(exc, _TRANSPORT):
        return unavailable(role)(f"{role} unavailable: {describe(exc)}")
    if isinstance(exc, EngineRefused):
        return ServerError(ENGINE_ERROR_CODE, str(exc))
    if isinstance(exc, SdkServerError):  # through an SDK connection (DirectCaller)
        return ServerError(
            getattr(exc, "code", ENGINE_ERROR_CODE),
            str(exc),
            kind=getattr(exc, "kind", None),
            details=getattr(exc, "details", None),
        )
    return exc


@contextmanager
def translated(role: str) -> Iterator[None]:
    """Raise what the body raises as syncd's error (see :func:`translate`)."""
    try:
        yield
    except Exception as exc:
        error = translate(exc, role)
        if error is exc:
            raise
        raise error from exc


def describe(exc: BaseException) -> str:
    """One line naming an exception: its type and the first line of its message."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def cause(exc: BaseException) -> str:
    """Why a database could not be reached, said once (for a tool's one line).

    :func:`describe` of a translated transport failure reads
    ``PrimaryUnavailable: primary unavailable: ConnectionRefusedError: ...``;
    the message around it already names the database, so only the cause is kept.
    """
    if isinstance(exc, DatabaseUnavailable):
        text = str(exc).splitlines()[0] if str(exc) else ""
        _, sep, rest = text.partition(" unavailable: ")
        if sep and rest:
            return "no answer in time" if rest == "timeout" else rest
    return describe(exc)
