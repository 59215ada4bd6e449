"""Every config value parser: what it accepts, what it makes of it, and its one-line message.

Pure: the validators are called directly (tests/config/test_model.py sees the
same messages through whole config files).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import SecretStr, TypeAdapter, ValidationError

from syncd.config.values import (
    ByteSize,
    Duration,
    Password,
    _bool,
    _byte_size,
    _duration,
    _field_names,
    _identifier,
    _int_at_least,
    _log_level,
    _secret,
    _string,
    _url,
    is_identifier,
    kind_of,
    listen_value,
    optional_bool,
    redact_url,
    sdk_url,
    show_value,
    tables_value,
)


def message(check: Any, value: object) -> str:
    with pytest.raises(ValueError) as caught:
        check(value)
    text = str(caught.value)
    assert "\n" not in text
    return text


# -- helpers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [("abc", '"abc"'), (3, "3"), ([1, "a"], '[1, "a"]'), (None, "null"), ({1, 2}, '"{1, 2}"')],
)
def test_show_value(value: object, shown: str) -> None:
    assert show_value(value) == shown


def test_show_value_bounds_long_values() -> None:
    shown = show_value("x" * 200)
    assert len(shown) == 80 and shown.endswith("...")


@pytest.mark.parametrize(
    ("value", "kind"),
    [(True, "a boolean"), (1, "a number"), (1.5, "a number"), ("", "a string"),
     ([], "a list"), ({}, "a dict")],
)  # fmt: skip
def test_kind_of(value: object, kind: str) -> None:
    assert kind_of(value) == kind


@pytest.mark.parametrize(
    ("name", "ok"),
    [("events", True), ("_x1", True), ("1x", False), ("a-b", False), ("", False), (1, False)],
)
def test_is_identifier(name: object, ok: bool) -> None:
    assert is_identifier(name) is ok


@pytest.mark.parametrize(
    ("url", "sdk"),
    [
        ("ws://h:8000/rpc", "ws://h:8000"),
        ("ws://h:8000/rpc/", "ws://h:8000"),
        ("wss://h/", "wss://h"),
        ("http://h:8000/base/rpc", "http://h:8000/base"),
        ("mem://", "mem://"),
        ("surrealkv:///data/rpc", "surrealkv:///data/rpc"),
    ],
)
def test_sdk_url(url: str, sdk: str) -> None:
    assert sdk_url(url) == sdk


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ws://root:secret@h:8000/rpc", "ws://root:***@h:8000/rpc"),
        ("ws://:secret@h", "ws://:***@h"),
        ("ws://root@h", "ws://root@h"),
        ("ws://h:8000", "ws://h:8000"),
        ("http://[::1", "http://[::1"),  # unparseable: left as it is
        ("root:secret@h:8000/rpc", "root:***@h:8000/rpc"),  # the scheme forgotten
        ("mem://", "mem://"),
        ("localhost:8000", "localhost:8000"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- numbers and sizes -----------------------------------------------------


@pytest.mark.parametrize(("value", "number"), [(1, 1), ("4", 4), (" 7 ", 7), (100, 100)])
def test_int_at_least_good(value: object, number: int) -> None:
    assert _int_at_least(1)(value) == number


@pytest.mark.parametrize("value", [0, -1, "0", "x", True, 1.5, None, "1.0"])
def test_int_at_least_bad(value: object) -> None:
    assert message(_int_at_least(1), value) == (
        f"must be an integer >= 1 (got {show_value(value)})"
    )


def test_int_at_least_zero_takes_zero() -> None:
    assert _int_at_least(0)(0) == 0


@pytest.mark.parametrize(
    ("value", "size"),
    [(0, 0), (10, 10), ("10", 10), ("512MiB", 512 << 20), ("1 GiB", 1 << 30), ("100mb", 10**8),
     ("2KB", 2000), ("3b", 3), ("1tib", 1 << 40)],
)  # fmt: skip
def test_byte_size_good(value: object, size: int) -> None:
    assert _byte_size(value) == size


@pytest.mark.parametrize("value", [-1, "1.5GiB", "1 PB", "GiB", True, None, 1.0, ""])
def test_byte_size_bad(value: object) -> None:
    assert message(_byte_size, value) == (
        'must be a size in bytes >= 0 such as 1073741824, "512MiB" or "1GiB" '
        f"(got {show_value(value)})"
    )


# -- durations -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"), [("5s", 5.0), ("250ms", 0.25), ("1m30s", 90.0), (2, 2.0), (0.5, 0.5)]
)
def test_duration_good(value: object, seconds: float) -> None:
    assert _duration(allow_zero=False)(value) == seconds


@pytest.mark.parametrize("value", [0, "0s", -1, True, None, [1], math.inf, 10**400])
def test_duration_bad(value: object) -> None:
    assert message(_duration(allow_zero=False), value) == (
        f'must be a duration > 0 such as "5s", "250ms" or "1m30s" (got {show_value(value)})'
    )


def test_duration_or_zero_takes_zero_but_not_less() -> None:
    check = _duration(allow_zero=True)
    assert check(0) == 0.0 and check("0s") == 0.0
    assert message(check, -0.5).startswith("must be a duration >= 0")


def test_a_duration_text_the_parser_refuses_keeps_the_parsers_message() -> None:
    text = message(_duration(allow_zero=False), "5 parsecs")
    assert "5 parsecs" in text


# -- booleans --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "result"),
    [(True, True), (False, False), ("yes", True), (" ON ", True), ("1", True), ("no", False),
     ("off", False), ("0", False), ("FALSE", False)],
)  # fmt: skip
def test_bool_good(value: object, result: bool) -> None:
    assert _bool(value) is result


@pytest.mark.parametrize("value", [1, 0, "maybe", "", None])
def test_bool_bad(value: object) -> None:
    assert message(_bool, value) == f"must be true or false (got {show_value(value)})"


@pytest.mark.parametrize(
    ("value", "result"), [(None, None), ("", None), ("auto", None), (" AUTO ", None),
                          (True, True), ("off", False)]
)  # fmt: skip
def test_optional_bool_good(value: object, result: bool | None) -> None:
    assert optional_bool(value) is result


def test_optional_bool_bad() -> None:
    assert message(optional_bool, "sometimes") == (
        'must be true, false or null for auto (got "sometimes")'
    )


# -- strings, secrets, names -----------------------------------------------


def test_strings() -> None:
    assert _string(non_empty=False)("") == ""
    assert _string(non_empty=True)(" x ") == " x "
    assert message(_string(non_empty=True), "  ") == "must not be empty"
    assert message(_string(non_empty=False), 2024) == (
        "must be a string; quote it in YAML (got 2024)"
    )


def test_secrets_are_never_echoed() -> None:
    assert _secret("pw") == "pw"
    token = SecretStr("pw")
    assert _secret(token) is token
    text = message(_secret, 123456)
    assert "123456" not in text and text.endswith("(value not shown)")


def test_password_type_wraps_in_a_secret() -> None:
    value = TypeAdapter(Password).validate_python("hunter2")
    assert isinstance(value, SecretStr) and value.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(value)
    with pytest.raises(ValidationError, match="value not shown"):
        TypeAdapter(Password).validate_python(98765)


def test_identifiers() -> None:
    assert _identifier("table name")("events") == "events"
    assert message(_identifier("table name"), "my-table") == (
        '"my-table" is not a valid table name '
        "(letters, digits and underscores, not starting with a digit)"
    )
    assert message(_identifier("table name", echo=False), "1x").startswith(
        "is not a valid table name"
    )


def test_field_names() -> None:
    required, optional = _field_names(non_empty=True), _field_names(non_empty=False)
    assert required(["a", "b"]) == ["a", "b"]
    assert optional(None) == [] and optional([]) == []
    assert message(required, []) == "must be a non-empty list of field names (got [])"
    assert message(required, None) == "must be a non-empty list of field names (got null)"
    assert message(optional, "a") == 'must be a list of field names (got "a")'
    assert message(required, ["a", "b", "a"]) == 'lists "a" more than once'
    assert message(required, ["a", "b c"]).startswith('"b c" is not a valid field name')


# -- URLs and listen addresses ---------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["ws://127.0.0.1:8000/rpc", " wss://db.example.com ", "mem://", "memory://", "surrealkv://data",
     "file://x", "HTTP://h:1"],
)  # fmt: skip
def test_url_good(url: str) -> None:
    assert _url(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("", 'must be a URL, e.g. "ws://127.0.0.1:8000/rpc" or "mem://" (got "")'),
        (5, 'must be a URL, e.g. "ws://127.0.0.1:8000/rpc" or "mem://" (got 5)'),
        (
            "localhost:8000",
            'must be a URL with a scheme, e.g. "ws://127.0.0.1:8000/rpc" or "mem://" '
            '(got "localhost:8000")',
        ),
        (
            "ftp://h",
            'scheme "ftp" is not supported (use ws, wss, http, https, mem, memory, surrealkv, '
            "file)",
        ),
        ("ws://:8000", 'a ws:// URL needs a host, e.g. "ws://127.0.0.1:8000" (got "ws://:8000")'),
        ("ws://h:99999", 'is not a valid URL: Port out of range 0-65535 (got "ws://h:99999")'),
    ],
)
def test_url_bad(url: object, text: str) -> None:
    assert message(_url, url) == text


def test_a_bad_url_never_shows_its_password() -> None:
    text = message(_url, "ws://root:secret@h:notaport")
    assert "secret" not in text and "***" in text
    assert "secret" not in message(_url, "root:secret@h")


@pytest.mark.parametrize(
    ("value", "result"),
    [(None, None), ("", None), ("  ", None), ("127.0.0.1:9464", "127.0.0.1:9464"),
     ("[::1]:9464", "[::1]:9464"), ("h:0", "h:0")],
)  # fmt: skip
def test_listen_good(value: object, result: str | None) -> None:
    assert listen_value(value) == result


@pytest.mark.parametrize("value", ["9464", "h:", "h:65536", "h:x", 9464, "[]:1", " :0 "])
def test_listen_bad(value: object) -> None:
    assert message(listen_value, value) == (
        f'must be "host:port" with a port 0-65535, or null to disable (got {show_value(value)})'
    )


# -- log level and tables --------------------------------------------------


def test_log_level() -> None:
    assert _log_level(" INFO ") == "info"
    assert message(_log_level, "trace") == (
        'must be one of debug, info, warning, error (got "trace")'
    )


def test_tables() -> None:
    assert tables_value(None) is None
    assert tables_value(["a", "b"]) == {"a": {}, "b": {}}
    assert tables_value({"a": None, "b": {"key": ["k"]}}) == {"a": {}, "b": {"key": ["k"]}}
    assert message(tables_value, {}) == (
        "must name at least one table (omit the key to replicate every table)"
    )
    assert message(tables_value, ["a", 1]) == (
        'must be a mapping of table name to options (got ["a", 1])'
    )
    assert message(tables_value, "a").startswith("must be a mapping of table name")


def test_the_annotated_types_apply_their_validators() -> None:
    assert TypeAdapter(Duration).validate_python("1m") == 60.0
    assert TypeAdapter(ByteSize).validate_python("1KiB") == 1024
    with pytest.raises(ValidationError, match="must be a duration > 0"):
        TypeAdapter(Duration).validate_python("0s")
