"""syncd's exceptions: one family, ``retriable`` only where a retry loop may try again."""

from __future__ import annotations

import pytest

from syncd import errors
from syncd.errors import (
    AuthenticationFailed,
    ConfigError,
    DatabaseUnavailable,
    DeadLetterError,
    PrimaryUnavailable,
    RecordRejected,
    SecondaryUnavailable,
    ServerError,
    SpoolCorrupt,
    SyncdError,
    UnknownSecondary,
)


def test_every_error_is_a_syncd_error() -> None:
    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, BaseException)
    ]
    assert len(classes) >= 11
    assert all(issubclass(c, SyncdError) for c in classes)


@pytest.mark.parametrize(
    ("kind", "retriable"),
    [
        (DatabaseUnavailable, True),
        (PrimaryUnavailable, True),
        (SecondaryUnavailable, True),
        (ServerError, False),
        (AuthenticationFailed, False),
        (RecordRejected, False),
        (ConfigError, False),
        (UnknownSecondary, False),
        (SpoolCorrupt, False),
        (DeadLetterError, False),
    ],
)
def test_only_a_lost_database_is_retriable(kind: type[SyncdError], retriable: bool) -> None:
    assert kind.retriable is retriable


def test_an_unknown_secondary_is_a_config_error() -> None:
    assert issubclass(UnknownSecondary, ConfigError)


def test_a_server_error_keeps_what_the_database_said() -> None:
    error = ServerError(-32000, "refused", kind="AlreadyExists", details={"id": "t:1"})
    assert (error.code, error.message, error.kind, error.details) == (
        -32000, "refused", "AlreadyExists", {"id": "t:1"},
    )  # fmt: skip
    assert str(error) == "refused"
    plain = ServerError(0, "x")
    assert plain.kind is None and plain.details is None
