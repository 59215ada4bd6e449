"""Reading records for the tools, against a real primary of each generation:
pages by id range (uuids too), samples, counts, lookups by id and by natural key."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from syncd.surreal.codec import RecordID
from syncd.surreal.endpoints import DirectCaller
from syncd.tools.compare import KeySpec
from syncd.tools.records import (
    QueryFailed,
    count_records,
    last_id,
    list_tables,
    lookup,
    read_page,
    sample,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def caller_with(primary: Any, sql: str) -> DirectCaller:
    await primary.query(sql)
    return DirectCaller(primary)


async def pages(caller: DirectCaller, table: str, size: int) -> list[list[Any]]:
    out: list[list[Any]] = []
    after = None
    while True:
        rows = await read_page(caller, table, after, size)
        if not rows:
            return out
        out.append([row["id"].id for row in rows])
        after = last_id(rows)


async def test_pages_walk_a_table_in_id_order_once(primary: Any) -> None:
    caller = await caller_with(primary, "; ".join(f"CREATE n:{i}" for i in range(1, 8)))
    assert await pages(caller, "n", 3) == [[1, 2, 3], [4, 5, 6], [7]]


async def test_pages_after_a_uuid_key(primary: Any) -> None:
    ids = sorted(uuid.UUID(int=i * 1000 + 1) for i in range(5))
    creates = "; ".join(f"CREATE u:u'{u}'" for u in ids)
    caller = await caller_with(primary, creates)
    assert [k for page in await pages(caller, "u", 2) for k in page] == ids


async def test_pages_after_a_string_key(primary: Any) -> None:
    caller = await caller_with(primary, "CREATE s:a; CREATE s:b; CREATE s:c")
    first = await read_page(caller, "s", None, 2)
    assert [r["id"] for r in first] == [RecordID("s", "a"), RecordID("s", "b")]
    assert last_id(first) == "b"
    assert [r["id"].id for r in await read_page(caller, "s", "b", 5)] == ["c"]


async def test_tables_counts_and_samples(primary: Any) -> None:
    caller = await caller_with(
        primary, "; ".join(f"CREATE c:{i} SET n = {i}" for i in range(1, 11)) + "; CREATE d:1"
    )
    assert {"c", "d"} <= set(await list_tables(caller))
    assert await count_records(caller, "c") == 10
    picked = await sample(caller, "c", 4)
    assert len(picked) == 4 and len({str(r["id"]) for r in picked}) == 4


async def test_a_table_never_written_reads_empty_on_either_generation(primary: Any) -> None:
    caller = DirectCaller(primary)
    assert await read_page(caller, "nothing", None, 5) == []
    assert await count_records(caller, "nothing") == 0
    spec = KeySpec("nothing", ("slug",))
    assert await lookup(caller, spec, [{"id": RecordID("nothing", 1), "slug": "x"}]) == []


async def test_lookup_by_id_and_by_natural_key(primary: Any) -> None:
    caller = await caller_with(
        primary, "CREATE k:1 SET slug = 'a', n = 1; CREATE k:2 SET slug = 'b', n = 2"
    )
    by_id = await lookup(caller, KeySpec("k"), [{"id": RecordID("k", 2)}, {"id": RecordID("k", 9)}])
    assert [r["n"] for r in by_id] == [2]
    natural = KeySpec("k", ("slug",))
    rows = [{"id": RecordID("k", 77), "slug": "a"}, {"id": RecordID("k", 78), "slug": "zz"}]
    found = await lookup(caller, natural, rows)
    assert [(r["id"], r["n"]) for r in found] == [(RecordID("k", 1), 1)]


async def test_a_refused_query_is_one_line_naming_what_was_done(primary: Any) -> None:
    caller = DirectCaller(primary)
    with pytest.raises(QueryFailed) as caught:
        await sample(caller, "c", -5)
    text = str(caught.value)
    assert text.startswith("sampling c: ") and "\n" not in text


def test_last_id_of_a_plain_id() -> None:
    assert last_id([{"id": RecordID("t", 1)}, {"id": RecordID("t", [1, 2])}]) == (1, 2)
    assert last_id([{"id": 5}]) == 5
