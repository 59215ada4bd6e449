"""Merged reads through the wrapper: what the application sees when the secondary cannot answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from surrealdb import RecordID

from syncd import MergeUnsupported
from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.replica import connect_secondary, dead_url, entry, replicator


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_a_primary_error_in_a_merged_read_is_the_sdks_own(
    tmp_path: Path, primary: Any
) -> None:
    with pytest.raises(Exception) as bare:
        await primary.select("a b")  # a parse error: whatever the SDK raises for it
    async with replicator(tmp_path, dead_url()) as rep:
        db = rep.wrap(primary)
        with pytest.raises(type(bare.value)):
            await db.select("a b")


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_prefer_newest_takes_the_newer_row_from_either_side(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    tables = {"docs": {"version": "updated_at", "prefer": "newest"}, "facts": {}}
    admin = await connect_secondary(secondary_server.url)
    await admin.query(
        "CREATE docs:1 SET updated_at = 9, s = 'secondary newer';"
        "CREATE docs:2 SET updated_at = 1, s = 'secondary older';"
        "CREATE docs:3 SET updated_at = 1, s = 'secondary only';"
        "CREATE facts:1 SET updated_at = 9, s = 'secondary'"
    )
    await admin.close()
    await primary.query(
        "CREATE docs:1 SET updated_at = 5, s = 'primary older';"
        "CREATE docs:2 SET updated_at = 5, s = 'primary newer';"
        "CREATE facts:1 SET updated_at = 1, s = 'primary'"
    )
    async with replicator(tmp_path, secondary_server.url, tables=tables, sync_enabled=True) as rep:
        db = rep.wrap(primary)
        docs = await db.select("docs")
        facts = await db.select("facts")
    assert sorted(row["s"] for row in docs) == [
        "primary newer",
        "secondary newer",
        "secondary only",
    ]
    assert [row["s"] for row in facts] == ["primary"]  # facts: the primary wins


@pytest.mark.integration
@pytest.mark.timeout(90)
async def test_merged_reads_ask_every_secondary_and_rank_them_by_priority(
    tmp_path: Path, primary: Any, engine: int
) -> None:
    # archive (priority 1) outranks analytics (priority 2); the primary outranks both.
    with ServerProcess(engine=engine) as archive, ServerProcess(engine=engine) as analytics:
        for server, sql in (
            (
                archive,
                "CREATE facts:1 SET s = 'archive'; CREATE facts:2 SET s = 'archive';"
                "CREATE docs:1 SET updated_at = 3, s = 'archive older';"
                "CREATE docs:2 SET updated_at = 9, s = 'archive newest';"
                "CREATE docs:3 SET updated_at = 1, s = 'archive older';",
            ),
            (
                analytics,
                "CREATE facts:2 SET s = 'analytics'; CREATE facts:3 SET s = 'analytics only';"
                "CREATE docs:1 SET updated_at = 9, s = 'analytics newest';"
                "CREATE docs:2 SET updated_at = 7, s = 'analytics older';"
                "CREATE docs:3 SET updated_at = 2, s = 'analytics newer';"
                "CREATE docs:4 SET updated_at = 5, s = 'analytics tie';",
            ),
        ):
            admin = await connect_secondary(server.url)
            await admin.query(sql)
            await admin.close()
        await primary.query(
            "CREATE facts:1 SET s = 'primary';"
            "CREATE docs:1 SET updated_at = 5, s = 'primary older';"
            "CREATE docs:2 SET updated_at = 5, s = 'primary older';"
            "CREATE docs:4 SET updated_at = 5, s = 'primary tie'"
        )
        secondaries = [entry("analytics", analytics.url, 2), entry("archive", archive.url, 1)]
        tables = {"docs": {"version": "updated_at", "prefer": "newest"}, "facts": {}}
        async with replicator(tmp_path, None, secondaries=secondaries, tables=tables) as rep:
            db = rep.wrap(primary)
            facts = {str(r["id"]): r["s"] for r in await db.select("facts")}
            docs = {str(r["id"]): r["s"] for r in await db.select("docs")}
            queried = await db.query("SELECT * FROM facts ORDER BY id")
            # One secondary down: the other one still merges.
            analytics.kill()
            partial = {str(r["id"]): r["s"] for r in await db.select("facts")}
            outcomes = rep.metrics.registry.get_sample_value
            down = outcomes(
                "syncd_merged_reads_total",
                {"secondary": "analytics", "outcome": "primary_only_down"},
            )
    assert facts == {"facts:1": "primary", "facts:2": "archive", "facts:3": "analytics only"}
    assert [r["s"] for r in queried] == ["primary", "archive", "analytics only"]
    assert docs == {
        "docs:1": "analytics newest",
        "docs:2": "archive newest",
        "docs:3": "analytics newer",
        "docs:4": "primary tie",
    }
    assert partial == {"facts:1": "primary", "facts:2": "archive"}
    assert down is not None and down >= 1


@pytest.mark.integration
@pytest.mark.timeout(90)
async def test_wrapped_queries_answer_like_the_union(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    # The secondary archived 20 memories; the primary kept the newest 5.
    schema = "DEFINE INDEX hnsw ON vm FIELDS e HNSW DIMENSION 2 DIST EUCLIDEAN;"
    rows = [{"id": RecordID("vm", i), "ts": i, "e": [i / 20, 1 - i / 20]} for i in range(20)]
    insert = "INSERT INTO vm $rows RETURN NONE"
    admin = await connect_secondary(secondary_server.url)
    await admin.query(schema)
    await admin.query(insert, {"rows": rows})
    await primary.query(schema)
    await primary.query(insert, {"rows": rows[15:]})
    await primary.query("CREATE logs:1 SET n = 1")
    knn = "SELECT id, vector::distance::knn() AS d FROM vm WHERE e <|3,40|> $q ORDER BY d"
    q = {"q": [0.0, 1.0]}
    expected = await admin.query(knn, q)
    await admin.close()
    tables: dict[str, Any] = {"vm": {}, "logs": {"unmergeable": "primary"}}
    async with replicator(tmp_path, secondary_server.url, tables=tables) as rep:
        db = rep.wrap(primary)
        count = await db.query("SELECT count() AS n FROM vm GROUP ALL")
        nearest = await db.query(knn, q)
        raw = await db.query_raw("LET $t = 3; SELECT VALUE ts FROM vm WHERE ts < $t")
        with pytest.raises(MergeUnsupported, match="FETCH"):
            await db.query("SELECT * FROM vm FETCH e")
        logs = await db.query("SELECT * FROM logs FETCH n")
    assert count == [{"n": 20}]
    assert [r["id"] for r in nearest] == [r["id"] for r in expected]
    assert [r["id"] for r in expected] == [RecordID("vm", i) for i in range(3)]
    assert raw["result"][1]["result"] == [0, 1, 2]
    assert logs == [{"id": RecordID("logs", 1), "n": 1}]


@pytest.mark.integration
@pytest.mark.timeout(90)
async def test_a_frozen_secondary_bounds_a_merged_query_by_query_timeout(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    await primary.query("CREATE t:1 SET n = 1; CREATE t:2 SET n = 2")
    async with replicator(tmp_path, secondary_server.url) as rep:
        db = rep.wrap(primary)
        await db.query("SELECT count() AS c FROM t GROUP ALL")  # the scratch engine is open
        secondary_server.freeze()
        try:
            started = time.perf_counter()
            alone = await db.query("SELECT count() AS c FROM t WHERE n > 0 GROUP ALL")
            spent = time.perf_counter() - started
        finally:
            secondary_server.thaw()
        limit = rep.config.query_timeout * 1.1 + 0.25
    assert alone == [{"c": 2}]
    assert spent < limit, f"merged query took {spent:.3f}s"
