"""A config as it may be shown: every key, secrets masked, durations as text."""

from __future__ import annotations

from pathlib import Path

from syncd.config.model import config_keys
from syncd.config.show import summarize
from tests.support.replica import entry, make_config


def test_every_key_is_shown_with_secrets_masked(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        "ws://root:urlpass1x@h:8000/rpc",
        primary_url="ws://app:primpass9z@p:8000",
        tables={"events": {"key": ["slug"]}, "users": None},
        volatile_fields=["seen"],
    )
    shown = summarize(config)
    assert set(shown) == set(config_keys())
    text = repr(shown)
    assert "urlpass1x" not in text and "primpass9z" not in text
    assert shown["secondary_url"] == "ws://root:***@h:8000/rpc"
    assert shown["primary_url"] == "ws://app:***@p:8000"
    assert shown["secondary_pass"] == "***"
    assert shown["query_timeout"] == "500ms"
    assert shown["health_check_interval"] == "1s"
    assert shown["tables"] == {
        "events": {"key": ["slug"], **DEFAULTS},
        "users": {"key": None, **DEFAULTS},
    }
    assert shown["volatile_fields"] == ["seen"]


#: A table's options left at their defaults, as shown.
DEFAULTS = {
    "volatile_fields": [],
    "version": None,
    "prefer": "primary",
    "schema": None,
    "events": False,
    "unmergeable": "raise",
}


def test_an_empty_password_shows_as_none(tmp_path: Path) -> None:
    config = make_config(tmp_path, "ws://h:8000", secondary_pass="")
    assert summarize(config)["secondary_pass"] is None


def test_each_secondary_is_shown_with_its_password_variable(tmp_path: Path) -> None:
    far = entry("far-away", "ws://u:secret@far:8000", 1)
    near = {**entry("near", "ws://near:8000", 0), "pass": ""}
    config = make_config(tmp_path, None, secondaries=[far, near])
    shown = summarize(config)
    assert "secret" not in repr(shown)
    by_name = {s["name"]: s for s in shown["secondaries"]}  # type: ignore[union-attr]
    assert by_name["far-away"] == {
        "name": "far-away",
        "url": "ws://u:***@far:8000",
        "user": "root",
        "pass": "***",
        "namespace": "replica",
        "database": "main",
        "priority": 1,
        "pass_env": "SYNCD_SECONDARIES_FAR_AWAY_PASS",
    }
    assert by_name["near"]["pass"] is None
