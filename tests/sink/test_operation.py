"""The Operation unit: built from a row by the one key rule, and its exact byte form."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
from surrealdb import RecordID as SdkRecordID

from syncd.errors import SpoolCorrupt
from syncd.keys import KeyRule
from syncd.sink.operation import Operation
from syncd.surreal.codec import NONE, Datetime, Duration, RecordID


def test_an_operation_round_trips_with_every_field_and_exact_values() -> None:
    record = {
        "id": RecordID("kv_memories", ("u1", "k")),
        "value": "v",
        "n": 1.5,
        "null": None,  # NULL stays NULL (the SDK's codec made it NONE)
        "none_in_array": [NONE],
        "at": Datetime.from_iso("2026-11-02T10:00:05.123456789Z"),  # nanoseconds kept
        "ttl": Duration(0, 0),  # 0ns (the SDK's decoder raised on it)
        "price": decimal.Decimal("9.99"),
    }
    op = Operation("kv_memories", "kv|[...]", record, source="replay", attempts=2, position=9)
    op.seq = 42
    back = Operation.from_bytes(op.to_bytes())
    assert back.record == record
    assert (back.table, back.key, back.source, back.attempts, back.position, back.seq) == (
        "kv_memories",
        "kv|[...]",
        "replay",
        2,
        9,
        42,
    )
    assert back.enqueued_at == op.enqueued_at


def test_the_sdks_values_are_carried_as_syncds() -> None:
    when = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    record = {"id": SdkRecordID("user", "alice"), "friend": SdkRecordID("user", 42), "at": when}
    op = Operation("user", "user:alice", record)
    back = Operation.from_bytes(op.to_bytes())
    assert back.record == {
        "id": RecordID("user", "alice"),
        "friend": RecordID("user", 42),
        "at": Datetime.from_datetime(when),
    }


def test_from_row_uses_the_key_rule() -> None:
    keys = KeyRule({"kv": ["user_id", "key"]})
    natural = Operation.from_row({"id": RecordID("kv", 1), "user_id": "u", "key": "k"}, keys)
    assert natural is not None and natural.key == 'kv|["u","k"]' and natural.table == "kv"
    by_id = Operation.from_row({"id": RecordID("kv", 2), "user_id": "u"}, keys)
    assert by_id is not None and by_id.key == "kv:2"
    assert Operation.from_row({"n": 1}, keys) is None


@pytest.mark.parametrize(
    "data", [b"", b"\xff", b"\x9f\x01", b"\x89\x01", b"\x7a\x00\x00\x00\x10ab", b"\xc8\x01"]
)
def test_garbage_raises_spool_corrupt(data: bytes) -> None:
    with pytest.raises(SpoolCorrupt):
        Operation.from_bytes(data)
