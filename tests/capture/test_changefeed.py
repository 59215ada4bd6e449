"""Changefeed parsing and table definitions (pure)."""

from __future__ import annotations

import pytest
from surrealdb import RecordID

from syncd.capture.changefeed import (
    enable_statement,
    fix_statement,
    parse_entries,
    retention_of,
    surreal_duration,
    to_operations,
)
from syncd.keys import KeyRule

ENTRIES = [
    {"versionstamp": 65536, "changes": [{"define_table": {"name": "t"}}]},
    {"versionstamp": 131072, "changes": [{"update": {"id": RecordID("t", 1), "a": 1}}]},
    {"versionstamp": 196608, "changes": [{"delete": {"id": RecordID("t", 1)}}]},
    {
        "versionstamp": 262144,
        "changes": [
            {"update": {"id": RecordID("t", 3), "a": 1}},
            {"update": {"id": RecordID("kv", "x"), "user_id": "u", "key": "k"}},
        ],
    },
    {
        "versionstamp": 327680,
        "changes": [
            {
                "update": {
                    "__": True,
                    "id": RecordID("rel", "r"),
                    "in": RecordID("t", 1),
                    "out": RecordID("t", 3),
                }
            }
        ],
    },
]


def test_parse_flattens_in_order_and_skips_definitions() -> None:
    changes = parse_entries(ENTRIES)
    assert [(c.position, c.table, c.kind) for c in changes] == [
        (2 << 16, "t", "update"),
        (3 << 16, "t", "delete"),
        (4 << 16, "t", "update"),
        (4 << 16, "kv", "update"),
        (5 << 16, "rel", "update"),
    ]
    assert all(c.committed_at is None for c in changes)


def test_commit_times_become_the_operations_enqueue_time() -> None:
    changes = parse_entries(ENTRIES, committed_at=lambda stamp: stamp / 1000)
    ops = to_operations(changes, replicates=lambda t: True, keys=KeyRule())
    assert [op.enqueued_at for op in ops] == [c.committed_at for c in changes if c.kind == "update"]
    assert "__" not in changes[-1].record  # the feed's edge marker is not a field


def test_operations_skip_deletes_and_unreplicated_tables_and_use_natural_keys() -> None:
    ops = to_operations(
        parse_entries(ENTRIES),
        replicates=lambda t: t != "rel",
        keys=KeyRule({"kv": ["user_id", "key"]}),
    )
    assert [(o.table, o.key, o.position, o.source) for o in ops] == [
        ("t", "t:1", 2 << 16, "changefeed"),
        ("t", "t:3", 4 << 16, "changefeed"),
        ("kv", 'kv|["u","k"]', 4 << 16, "changefeed"),
    ]


@pytest.mark.parametrize(
    ("definition", "seconds"),
    [
        ("DEFINE TABLE t TYPE ANY SCHEMALESS CHANGEFEED 1w PERMISSIONS NONE", 604800),
        ("DEFINE TABLE t CHANGEFEED 7d", 604800),
        ("DEFINE TABLE t CHANGEFEED 1d12h", 129600),
        ("DEFINE TABLE t CHANGEFEED 250ms", 0.25),  # not 250 minutes
        ("DEFINE TABLE t CHANGEFEED 1m30s", 90),
        ("DEFINE TABLE t TYPE ANY SCHEMALESS PERMISSIONS NONE", None),
    ],
)
def test_retention_of(definition: str, seconds: float | None) -> None:
    assert retention_of(definition) == seconds


def test_enable_keeps_the_definition_and_adds_the_feed_before_permissions() -> None:
    original = (
        "DEFINE TABLE v TYPE NORMAL SCHEMAFULL PERMISSIONS FOR select FULL, "
        "FOR create, update, delete NONE"
    )
    assert enable_statement(original, 7 * 86400) == (
        "DEFINE TABLE OVERWRITE v TYPE NORMAL SCHEMAFULL CHANGEFEED 1w PERMISSIONS "
        "FOR select FULL, FOR create, update, delete NONE"
    )


def test_enable_replaces_an_existing_feed_and_handles_no_permissions() -> None:
    assert enable_statement("DEFINE TABLE t CHANGEFEED 1d", 3600) == (
        "DEFINE TABLE OVERWRITE t CHANGEFEED 1h"
    )
    with pytest.raises(ValueError):
        enable_statement("SELECT * FROM t", 3600)


def test_durations_and_fix() -> None:
    assert [surreal_duration(s) for s in (90, 3600, 86400 * 14, 0.2)] == ["90s", "1h", "2w", "1s"]
    assert fix_statement("kv", 86400) == "DEFINE TABLE OVERWRITE kv CHANGEFEED 1d"
