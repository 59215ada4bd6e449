"""Where other libraries' exceptions become syncd's: the one translation table."""

from __future__ import annotations

import pytest
from surrealdb.errors import ConnectionUnavailableError
from surrealdb.errors import ServerError as SdkServerError
from websockets.exceptions import ConnectionClosedError

from syncd.errors import (
    AuthenticationFailed,
    DatabaseUnavailable,
    PrimaryUnavailable,
    SecondaryUnavailable,
    ServerError,
)
from syncd.surreal.errors import (
    ENGINE_ERROR_CODE,
    describe,
    is_transport_error,
    is_unavailable_timeout,
    server_error,
    statement_error,
    translate,
    translated,
    unavailable,
)
from syncd.surreal.transport import EngineRefused, TransportClosed


@pytest.mark.parametrize(
    ("role", "kind"),
    [("primary", PrimaryUnavailable), ("secondary", SecondaryUnavailable),
     ("other", DatabaseUnavailable)],
)  # fmt: skip
def test_unavailable_by_role(role: str, kind: type[DatabaseUnavailable]) -> None:
    assert unavailable(role) is kind
    assert kind.retriable


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(),
        EOFError("eof"),
        ConnectionClosedError(None, None),
        TransportClosed("closed"),
        ConnectionUnavailableError("gone"),
    ],
)
def test_transport_failures_become_the_roles_unavailable(exc: BaseException) -> None:
    assert is_transport_error(exc)
    error = translate(exc, "secondary")
    assert type(error) is SecondaryUnavailable
    assert str(error).startswith("secondary unavailable: ")
    assert type(exc).__name__ in str(error)
    assert not is_unavailable_timeout(error)


def test_a_deadline_is_an_unavailable_timeout() -> None:
    error = translate(TimeoutError(), "primary")
    assert type(error) is PrimaryUnavailable
    assert str(error) == "primary unavailable: timeout"
    assert is_unavailable_timeout(TimeoutError())
    with pytest.raises(PrimaryUnavailable) as caught, translated("primary"):
        raise TimeoutError
    assert is_unavailable_timeout(caught.value)  # its cause says so


def test_an_engine_refusal_is_a_server_error_with_the_engines_code() -> None:
    error = translate(EngineRefused("There was a problem"), "secondary")
    assert isinstance(error, ServerError)
    assert (error.code, error.message) == (ENGINE_ERROR_CODE, "There was a problem")
    assert not error.retriable and not is_transport_error(error)


def test_an_sdk_server_error_keeps_its_code_kind_and_details() -> None:
    sdk = SdkServerError("NotFound", "The table 'x' does not exist", code=-32000,
                         details={"name": "x"})  # fmt: skip
    error = translate(sdk, "primary")
    assert isinstance(error, ServerError)
    assert (error.code, error.kind, error.details) == (-32000, "NotFound", {"name": "x"})
    assert "does not exist" in error.message


def test_syncds_own_and_foreign_errors_are_left_as_they_are() -> None:
    own = AuthenticationFailed("no")
    assert translate(own, "primary") is own
    bug = KeyError("x")
    assert translate(bug, "primary") is bug
    with pytest.raises(KeyError), translated("primary"):
        raise bug
    with pytest.raises(AuthenticationFailed), translated("secondary"):
        raise own


def test_translated_chains_the_original() -> None:
    original = ConnectionResetError(104, "reset")
    with pytest.raises(SecondaryUnavailable) as caught, translated("secondary"):
        raise original
    assert caught.value.__cause__ is original


@pytest.mark.parametrize(
    ("error", "fields"),
    [
        ({"code": -32602, "message": "Invalid params"}, (-32602, "Invalid params", None, None)),
        ({"code": "x", "message": 5, "kind": "K", "details": [1]}, (0, "5", "K", [1])),
        ({}, (0, "", None, None)),
        ("plain text", (0, "plain text", None, None)),
    ],
)
def test_server_error_of_an_rpc_error(error: object, fields: tuple[object, ...]) -> None:
    made = server_error(error)
    assert (made.code, made.message, made.kind, made.details) == fields
    assert str(made) == fields[1]


def test_statement_error() -> None:
    made = statement_error({"status": "ERR", "result": "Database record already exists",
                            "kind": "AlreadyExists"})  # fmt: skip
    assert (made.code, made.message, made.kind) == (0, "Database record already exists",
                                                     "AlreadyExists")  # fmt: skip


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (ValueError("bad\nsecond line"), "ValueError: bad"),
        (EOFError(), "EOFError"),
        (ValueError("x" * 400), "ValueError: " + "x" * 288),
    ],
)
def test_describe_is_one_bounded_line(exc: BaseException, text: str) -> None:
    assert describe(exc) == text
