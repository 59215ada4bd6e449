"""Reading a config: YAML without duplicate keys, the environment over it, one line per error.

The functions of syncd/config/load.py on their own (tests/config/test_model.py
loads whole configs through them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic_core import ErrorDetails

from syncd.config.load import apply_env, describe, read_yaml
from syncd.errors import ConfigError

CONFIG_KEYS = ("secondary_url", "secondary_pass", "batch_size", "tables", "secondaries")
TABLE_KEYS = ("key", "version", "prefer", "volatile_fields")


def yaml_file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "syncd.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def refused(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        read_yaml(path)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(f"config {path}: ")
    return text[len(f"config {path}: ") :]


def test_yaml_is_read_as_plain_data(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, "a: 1\nb: [x, y]\nc:\n  d: yes\n")
    assert read_yaml(path) == {"a": 1, "b": ["x", "y"], "c": {"d": True}}
    assert read_yaml(yaml_file(tmp_path, "")) is None


def test_a_duplicate_key_is_refused_naming_both_lines(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, "a: 1\nb: 2\na: 3\n")
    assert refused(path) == (
        'invalid YAML at line 3, column 1: duplicate key "a" (first defined on line 1)'
    )


def test_a_duplicate_key_in_a_nested_mapping_is_refused(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, "tables:\n  events: {}\n  events: {}\n")
    assert 'duplicate key "events" (first defined on line 2)' in refused(path)


def test_a_syntax_error_names_the_place_not_the_line(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, "secondary_pass: hunter2\nbad: [unclosed\n")
    text = refused(path)
    assert text.startswith("invalid YAML at line 3, column 1: ")
    assert "hunter2" not in text


def test_a_python_object_tag_is_refused(tmp_path: Path) -> None:
    path = yaml_file(tmp_path, "a: !!python/object/apply:os.system ['true']\n")
    assert "invalid YAML" in refused(path)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p / "missing.yaml", "file not found"),
        (lambda p: p, "is a directory, not a file"),
        (lambda p: yaml_file(p, b"a: \xff\xfe\n"), "not UTF-8 text (byte 3)"),
    ],
)
def test_a_file_that_cannot_be_read(tmp_path: Path, make: Any, problem: str) -> None:
    assert refused(make(tmp_path)) == problem


def test_the_environment_overrides_scalar_keys_only() -> None:
    data: dict[str, object] = {"batch_size": 10, "tables": {"a": None}}
    env = {
        "SYNCD_BATCH_SIZE": "20",
        "SYNCD_SECONDARY_URL": "ws://h",
        "SYNCD_TABLES": "b",
        "SYNCD_UNKNOWN": "x",
        "batch_size": "30",
    }
    used = apply_env(data, env, CONFIG_KEYS)
    assert used == {"batch_size", "secondary_url"}
    assert data == {"batch_size": "20", "secondary_url": "ws://h", "tables": {"a": None}}


def error(
    kind: str, loc: tuple[Any, ...], msg: str = "", value: Any = None, **ctx: Any
) -> ErrorDetails:
    details: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        details["ctx"] = ctx
    return details  # type: ignore[return-value]


def said(details: ErrorDetails, from_env: set[str] | None = None) -> str:
    return describe(details, from_env or set(), CONFIG_KEYS, TABLE_KEYS)


def test_a_missing_key_says_where_it_may_come_from() -> None:
    assert said(error("missing", ("secondary_url",))) == (
        'secondary_url: required, where replicated writes go, e.g. "ws://archive:8000/rpc" '
        "(or SYNCD_SECONDARY_URL in the environment)"
    )
    assert said(error("missing", ("batch_size",))) == (
        "batch_size: required (or SYNCD_BATCH_SIZE in the environment)"
    )


@pytest.mark.parametrize(
    ("loc", "text"),
    [
        (("batch_szie",), 'unknown key "batch_szie" (did you mean "batch_size"?)'),
        (("zzz",), 'unknown key "zzz"'),
        (("tables", "events", "verison"), 'unknown key "tables.events.verison" '
                                          '(did you mean "version"?)'),
        (("secondaries", 0, "passs"), 'unknown key "secondaries[0].passs" (did you mean "pass"?)'),
    ],
)  # fmt: skip
def test_an_unknown_key_suggests_the_nearest(loc: tuple[Any, ...], text: str) -> None:
    assert said(error("extra_forbidden", loc)) == text


def test_a_value_error_says_the_validators_words_and_where_it_came_from() -> None:
    details = error("value_error", ("batch_size",), "Value error, x", "0",
                    error=ValueError("must be an integer >= 1 (got \"0\")"))  # fmt: skip
    assert said(details) == 'batch_size: must be an integer >= 1 (got "0")'
    assert said(details, {"batch_size"}) == (
        'batch_size (from SYNCD_BATCH_SIZE): must be an integer >= 1 (got "0")'
    )


def test_a_secret_is_never_shown() -> None:
    details = error("string_type", ("secondary_pass",), "Input should be a string", 12345)
    assert said(details) == "secondary_pass: is not valid (value not shown)"


def test_other_errors_show_the_value_once() -> None:
    assert said(error("dict_type", ("tables",), "Input should be a dict", [1])) == (
        "tables: must be a mapping (got [1])"
    )
    assert said(error("int_type", ("batch_size",), "Input should be an integer", "x")) == (
        'batch_size: input should be an integer (got "x")'
    )


def test_a_model_level_error_names_its_keys_itself() -> None:
    details = error("value_error", (), "", None, error=ValueError("a and b conflict"))
    assert said(details) == "a and b conflict"


def test_key_parts_of_a_mapping_are_not_shown() -> None:
    details = error("value_error", ("tables", "[key]", "bad-name"), "", "bad-name",
                    error=ValueError("is not a valid table name"))  # fmt: skip
    assert said(details) == "tables.bad-name: is not a valid table name"
