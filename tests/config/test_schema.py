"""The ``schema:`` key, its long form, ``schema_poll_interval`` and the per-table options."""

from __future__ import annotations

import pytest

from syncd.config import Config
from syncd.config.schema import TablePolicy
from syncd.errors import ConfigError

REQUIRED = {"secondary_url": "ws://archive:8000/rpc"}


def config(**data: object) -> Config:
    return Config.from_mapping({**REQUIRED, **data})


def test_mirror_is_the_default_and_polls_every_10s() -> None:
    c = config()
    assert (c.schema_.mode, c.schema_.mirror_removals, c.schema_poll_interval) == (
        "mirror",
        False,
        10.0,
    )
    assert c.schema_policy("anything") == TablePolicy()


@pytest.mark.parametrize(("value", "mode"), [("off", "off"), (False, "off"), (True, "mirror")])
def test_short_forms_and_yaml_booleans(value: object, mode: str) -> None:
    assert config(schema=value).schema_.mode == mode


def test_long_form_and_environment() -> None:
    c = config(schema={"mirror_removals": True}, schema_poll_interval="500ms")
    assert (c.schema_.mode, c.schema_.mirror_removals, c.schema_poll_interval) == (
        "mirror",
        True,
        0.5,
    )
    env = {"SYNCD_SCHEMA": "off", "SYNCD_SCHEMA_POLL_INTERVAL": "2s"}
    c = Config.from_mapping(REQUIRED, env=env)
    assert (c.schema_.mode, c.schema_poll_interval) == ("off", 2.0)


def test_per_table_options() -> None:
    c = config(tables={"a": {"schema": "off"}, "b": {"events": True}, "c": None})
    assert c.schema_policy("a") == TablePolicy(mirror=False)
    assert c.schema_policy("b") == TablePolicy(events=True)
    assert c.schema_policy("c") == TablePolicy()
    assert c.schema_policy("not_replicated") is None
    off = config(schema="off", tables={"a": {"schema": "mirror"}, "b": {}})
    assert off.schema_policy("a") == TablePolicy()
    assert off.schema_policy("b") == TablePolicy(mirror=False)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"schema": "maybe"}, 'schema: must be "mirror" or "off" (got "maybe")'),
        ({"schema": {"mirror_removal": True}}, 'unknown key "schema.mirror_removal"'),
        ({"schemas": "off"}, 'unknown key "schemas" (did you mean "schema"?)'),
        ({"tables": {"t": {"schema": 1}}}, 'tables.t.schema: must be "mirror" or "off" (got 1)'),
        ({"schema_poll_interval": "soon"}, "schema_poll_interval"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(**data)
    assert message in str(info.value)
