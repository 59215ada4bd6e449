"""Request frames with pre-encoded arrays: byte for byte what encoding the whole request makes."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.surreal.codec import NONE, RecordID, encode
from syncd.surreal.frames import EncodedArray, query_frame

ROWS: list[dict[str, Any]] = [
    {"id": RecordID("t", n), "n": n, "v": "x" * n, "tags": ["a", None, NONE], "f": n / 3}
    for n in range(30)
]


@pytest.mark.parametrize("count", [0, 1, 23, 24, 30])
@pytest.mark.parametrize("request_id", [1, 23, 24, 255, 256, 70_000, 2**40])
def test_spliced_frame_is_the_encoded_request(count: int, request_id: int) -> None:
    rows = ROWS[:count]
    sql = "FOR $r IN $b0 { UPSERT $r.id CONTENT $r RETURN NONE }"
    plain = {"b0": rows, "t0": "t", "b1": [{"id": 1, "content": {"a": 1}}], "t1": "u"}
    spliced = dict(plain, b0=EncodedArray(tuple(encode(row) for row in rows)))
    expected = encode({"id": request_id, "method": "query", "params": [sql, plain]})
    assert query_frame(request_id, sql, spliced, encode) == expected


def test_many_items_and_variables() -> None:
    rows = [{"id": RecordID("t", n)} for n in range(70_000)]
    many = {f"v{n}": n for n in range(30)}
    spliced = dict(many, big=EncodedArray(tuple(encode(r) for r in rows)))
    expected = encode({"id": 7, "method": "query", "params": ["RETURN 1", dict(many, big=rows)]})
    assert query_frame(7, "RETURN 1", spliced, encode) == expected
