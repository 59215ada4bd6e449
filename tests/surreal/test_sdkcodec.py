"""The SDK-compatible fast path (merged reads) writes the SDK's bytes and reads its values."""

from __future__ import annotations

import datetime
import decimal
import math
from typing import Any

import pytest
from surrealdb import RecordID
from surrealdb.data.cbor import decode, encode
from surrealdb.data.types.datetime import Datetime

from syncd.surreal.sdkcodec import fast_decode, fast_encode

INTS = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1, 2**64, 10**30]
INTS += [-i for i in INTS] + [-(2**64), -(2**64) - 1]
FLOATS = [0.0, -0.0, 1.5, -2.25, 1e300, 5e-324, math.nan, math.inf, -math.inf, 0.1]
STRINGS = ["", "a", "x" * 23, "x" * 24, "x" * 300, "y" * 70000, "héllo ✓ 𝄞", "\x00"]
OTHERS: list[Any] = [
    None,
    True,
    False,
    [],
    {},
    (1, 2),
    [1, [2, [3, None]]],
    {"a": {"b": [1, {"c": None}]}},
    {1: "int key", "s": 2},
    RecordID("t", 1),
    RecordID("t", "abc"),
    RecordID("t", ["u1", "k"]),
    RecordID("t", {"a": 1}),
    decimal.Decimal("1.25"),
    datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.UTC),
    Datetime("2026-11-22T12:00:00Z"),
    b"bytes",
    {"id": RecordID("kv", 7), "n": 1, "tags": ["a"], "d": decimal.Decimal("2"), "z": None},
]
VALUES = INTS + FLOATS + STRINGS + OTHERS


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (and NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, RecordID):
        return a.table_name == b.table_name and same(a.id, b.id)
    return bool(a == b) or repr(a) == repr(b)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: repr(v)[:40])
def test_encode_writes_the_sdks_bytes(value: Any) -> None:
    assert fast_encode(value) == bytes(encode(value))


@pytest.mark.parametrize("value", VALUES, ids=lambda v: repr(v)[:40])
def test_decode_returns_the_sdks_values(value: Any) -> None:
    data = bytes(encode(value))
    assert same(fast_decode(data), decode(data))


def test_trailing_bytes_are_left_to_the_sdk() -> None:
    data = bytes(encode([1, 2])) + b"\x01"
    assert same(fast_decode(data), decode(data))


def test_the_executors_request_frame_is_the_sdks() -> None:
    from surrealdb.request_message.message import RequestMessage
    from surrealdb.request_message.methods import RequestMethod

    rows = [{"id": RecordID("events", n), "n": n, "tags": ["a"], "x": None} for n in range(50)]
    params = {"b0": rows, "t0": "events"}
    query = "FOR $r IN $b0 { UPSERT $r.id CONTENT $r RETURN NONE }"
    message = RequestMessage(RequestMethod.QUERY, query=query, params=params)
    frame = {"id": message.id, "method": "query", "params": [query, params]}
    assert fast_encode(frame) == bytes(message.WS_CBOR_DESCRIPTOR)
