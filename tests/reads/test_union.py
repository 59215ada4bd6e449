"""Merged queries answer like one database holding the union (issue 17), on both engines.

The databases are in-process engines (tests/support/union.py): a primary,
secondaries and an oracle filled with the union, primary rows over secondary
rows. Each test compares the merged answer with the oracle's, or checks that
a statement that cannot be merged says so.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from surrealdb import RecordID

from syncd import MergeUnsupported
from syncd.keys import canonical
from syncd.reads.statements import parse
from tests.support.union import Union, union

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Q = {"q": [0.5, 0.5, 0.5, 0.5]}


def _memories(count: int) -> list[dict[str, Any]]:
    rnd = random.Random(17)
    return [
        {
            "id": RecordID("vector_memories", i),
            "ts": i,
            "user_id": f"u{i % 4}",
            "embedding": [rnd.random() for _ in range(4)],
            "content": "apple pie" if i % 2 else "banana split",
        }
        for i in range(count)
    ]


async def _memories_schema(u: Union, engine: int) -> None:
    fulltext = "SEARCH" if engine == 2 else "FULLTEXT"
    await u.run_all(
        "DEFINE ANALYZER simple TOKENIZERS blank,class FILTERS lowercase;"
        "DEFINE INDEX hnsw ON vector_memories FIELDS embedding HNSW DIMENSION 4 DIST EUCLIDEAN;"
        f"DEFINE INDEX words ON vector_memories FIELDS content {fulltext} ANALYZER simple BM25;"
    )


async def _same(u: Union, sql: str, vars: dict[str, Any] | None = None) -> Any:
    """The merged answer, checked against the oracle's (as a multiset where no ORDER BY)."""
    merged = await u.merged(sql, vars)
    oracle = await u.oracle_answer(sql, vars)
    if "ORDER BY" in sql or not isinstance(merged, list):
        assert canonical(merged) == canonical(oracle), sql
    else:
        assert sorted(map(str, canonical(merged))) == sorted(map(str, canonical(oracle))), sql
    return merged


ISSUE = [
    (
        "SELECT id, vector::distance::knn() AS d FROM vector_memories "
        "WHERE embedding <|5,40|> $q ORDER BY d LIMIT 5",
        5,
    ),
    ("SELECT VALUE ts FROM vector_memories WHERE ts < 3", [0, 1, 2]),
    ("SELECT count() AS n FROM vector_memories GROUP ALL", [{"n": 200}]),
    (
        "SELECT user_id, count() AS n FROM vector_memories GROUP BY user_id",
        [{"n": 50, "user_id": f"u{i}"} for i in range(4)],
    ),
    ("SELECT id FROM vector_memories WHERE content @@ 'apple'", 100),
    (
        "SELECT * FROM (SELECT id, vector::similarity::cosine(embedding, $q) AS similarity "
        "FROM vector_memories WHERE embedding <|4,40|> $q) "
        "WHERE similarity >= 0.5 ORDER BY similarity DESC",
        None,
    ),
]


@pytest.mark.parametrize(("sql", "expected"), ISSUE, ids=range(len(ISSUE)))
async def test_the_issues_table_answers_like_the_union(
    engine: int, sql: str, expected: Any
) -> None:
    # 200 memories; the primary pruned the 150 oldest, the secondary keeps all.
    async with union(engine) as u:
        await _memories_schema(u, engine)
        rows = _memories(200)
        await u.fill("vector_memories", rows[150:], [rows])
        merged = await _same(u, sql, Q)
    if isinstance(expected, int):
        assert len(merged) == expected
    elif expected is not None:
        assert merged == expected


async def test_stale_rows_filling_a_sources_first_rows_are_looked_past(engine: int) -> None:
    # The secondary's first rows (by n, and nearest to $q) are stale versions
    # of keys the primary holds: it is asked again for more.
    async with union(engine) as u:
        await u.run_all("DEFINE INDEX e ON t FIELDS e HNSW DIMENSION 2 DIST EUCLIDEAN")
        primary = [{"id": RecordID("t", i), "n": i, "e": [5.0 + i, 5.0]} for i in range(10)]
        stale = [{"id": RecordID("t", i), "n": 100 + i, "e": [0.0, i / 100]} for i in range(10)]
        archived = [{"id": RecordID("t", 20), "n": 20, "e": [1.0, 1.0]}]
        await u.fill("t", primary, [stale + archived])
        top = await _same(u, "SELECT VALUE n FROM t ORDER BY n DESC LIMIT 3")
        knn = await _same(
            u, "SELECT VALUE n FROM t WHERE e <|2,40|> $q ORDER BY n DESC", {"q": [0.0, 0.0]}
        )
        filtered = await _same(u, "SELECT VALUE n FROM t WHERE n >= 100")
    assert top == [20, 9, 8]
    assert knn == [20, 0]
    assert filtered == []  # the stale versions match, the union's rows do not


async def test_natural_keys_and_the_newest_row(engine: int) -> None:
    tables = {
        "kv": {"key": ["user_id", "key"]},
        "docs": {"version": "at", "prefer": "newest"},
    }
    async with union(engine, 2, tables=tables) as u:
        # kv: the application rewrote records under new ids; the key decides.
        await u.primary.query("CREATE kv:new SET user_id = 'u', key = 'a', v = 2")
        await u.secondaries[0].query(
            "CREATE kv:old SET user_id = 'u', key = 'a', v = 1;"
            "CREATE kv:gone SET user_id = 'u', key = 'b', v = 1"
        )
        await u.primary.query(
            "CREATE docs:1 SET at = 1, s = 'p'; CREATE docs:2 SET at = 5, s = 'p'"
        )
        await u.secondaries[0].query("CREATE docs:1 SET at = 3, s = 's1'; CREATE docs:3 SET at = 1")
        await u.secondaries[1].query("CREATE docs:1 SET at = 9, s = 's2'; CREATE docs:2 SET at = 1")
        kv = await u.merged("SELECT key, v FROM kv ORDER BY key")
        count = await u.merged("SELECT count() AS n FROM kv GROUP ALL")
        docs = await u.merged("SELECT VALUE s FROM docs WHERE at > 2 ORDER BY s")
        newest = await u.merged("SELECT VALUE s FROM docs WHERE s = 'p'")
    assert kv == [{"key": "a", "v": 2}, {"key": "b", "v": 1}]
    assert count == [{"n": 2}]
    assert docs == ["p", "s2"]  # docs:1 is s2's (at 9), docs:2 the primary's (at 5)
    assert newest == ["p"]  # the primary's docs:1 matches, but a newer row wins


async def test_lets_params_and_several_statements(engine: int) -> None:
    async with union(engine) as u:
        rows = [{"id": RecordID("t", i), "n": i} for i in range(10)]
        await u.fill("t", rows[5:], [rows])
        sql = "LET $lo = 2; SELECT VALUE n FROM t WHERE n >= $lo AND n < $hi ORDER BY n"
        merged = await u.merged(sql, {"hi": 7})
        several = sql + "; SELECT count() AS c FROM t GROUP ALL"
        answer = await u.reads.query_raw(u.primary, several, {"hi": 7}, parse(several))
        limited = await u.merged(
            "SELECT VALUE n FROM t ORDER BY n LIMIT $l START $s", {"l": 2, "s": 1}
        )
        only = await u.merged("SELECT * FROM ONLY t:3")
    assert merged == [2, 3, 4, 5, 6]
    assert [e["status"] for e in answer["result"]] == ["OK", "OK", "OK"]
    assert [e["result"] for e in answer["result"][1:]] == [[2, 3, 4, 5, 6], [{"c": 10}]]
    assert limited == [1, 2]
    assert only == {"id": RecordID("t", 3), "n": 3}


UNSUPPORTED = [
    ("SELECT id, search::score(1) AS s FROM t WHERE txt @1@ 'apple'", "search::score"),
    ("SELECT ->likes->t AS out FROM t", "graph traversal"),
    ("SELECT * FROM t WHERE n IN (SELECT VALUE n FROM t)", "subquery outside FROM"),
    ("SELECT * FROM t FETCH other", "FETCH"),
    ("SELECT * FROM t, u", "FROM with several targets"),
    ("SELECT * FROM $rows", "FROM target"),
    ("LET $x = (SELECT * FROM t); SELECT * FROM t", "LET of a query"),
    ("SELECT * FROM t EXPLAIN", "EXPLAIN"),
]


@pytest.mark.parametrize(("sql", "clause"), UNSUPPORTED, ids=[c for _, c in UNSUPPORTED])
async def test_a_statement_that_cannot_be_merged_raises_naming_the_clause(
    sql: str, clause: str
) -> None:
    async with union(2) as u:
        await u.primary.query("CREATE t:1 SET n = 1")
        with pytest.raises(MergeUnsupported) as raised:
            await u.merged(sql)
    assert raised.value.clause == clause
    assert clause in str(raised.value)


async def test_unmergeable_primary_takes_the_primarys_answer_and_counts_it(engine: int) -> None:
    tables: dict[str, dict[str, Any]] = {"logs": {"unmergeable": "primary"}, "t": {}}
    async with union(engine, tables=tables) as u:
        await u.primary.query("CREATE logs:1 SET n = 1; CREATE t:1 SET n = 1")
        await u.secondaries[0].query("CREATE logs:2 SET n = 2; CREATE t:2 SET n = 2")
        rows = await u.merged("SELECT * FROM logs FETCH n")
        with pytest.raises(MergeUnsupported):
            await u.merged("SELECT * FROM t FETCH n")
        counted = u.metrics.registry.get_sample_value(
            "syncd_unmerged_reads_total", {"table": "logs", "reason": "FETCH"}
        )
    assert rows == [{"id": RecordID("logs", 1), "n": 1}]
    assert counted == 1


async def test_a_merge_needing_more_than_merge_max_rows_raises(engine: int) -> None:
    async with union(engine, max_rows=5) as u:
        rows = [{"id": RecordID("t", i), "n": i} for i in range(8)]
        await u.fill("t", rows[:3], [rows])
        assert await u.merged("SELECT VALUE n FROM t ORDER BY n LIMIT 2") == [0, 1]
        with pytest.raises(MergeUnsupported, match="merge_max_rows"):
            await u.merged("SELECT count() FROM t GROUP ALL")


async def test_a_secondary_down_leaves_the_primarys_answer(engine: int) -> None:
    async with union(engine) as u:
        rows = [{"id": RecordID("t", i), "n": i} for i in range(6)]
        await u.fill("t", rows[3:], [rows])
        secondary = u.reads.sources[0].conn
        secondary.up = False  # type: ignore[attr-defined]
        alone = await u.merged("SELECT count() AS c FROM t GROUP ALL")
        down = u.metrics.registry.get_sample_value(
            "syncd_merged_reads_total", {"secondary": "s0", "outcome": "primary_only_down"}
        )
    assert alone == [{"c": 3}]
    assert down == 1


@pytest.mark.parametrize(("primary_engine", "secondary_engine"), [(2, 3), (3, 2)])
async def test_mixed_generations_answer_like_the_union(
    primary_engine: int, secondary_engine: int
) -> None:
    async with union(primary_engine, secondary_generation=secondary_engine) as u:
        await _memories_schema_mixed(u, primary_engine, secondary_engine)
        rows = _memories(60)
        await u.fill("vector_memories", rows[40:], [rows])
        for sql, _ in ISSUE:
            await _same(u, sql, Q)


async def _memories_schema_mixed(u: Union, primary: int, secondary: int) -> None:
    for db, engine in [(u.primary, primary), (u.oracle, primary), (u.secondaries[0], secondary)]:
        fulltext = "SEARCH" if engine == 2 else "FULLTEXT"
        await db.query(
            "DEFINE ANALYZER simple TOKENIZERS blank,class FILTERS lowercase;"
            "DEFINE INDEX hnsw ON vector_memories FIELDS embedding HNSW DIMENSION 4 DIST EUCLIDEAN;"
            f"DEFINE INDEX words ON vector_memories FIELDS content {fulltext} ANALYZER simple BM25;"
        )


async def test_edges_answer_like_the_union(engine: int) -> None:
    async with union(engine) as u:
        rows = [{"id": RecordID("t", i), "n": i, "g": "ab"[i % 2]} for i in range(6)]
        await u.fill("t", rows[4:], [rows])
        for sql in (
            "SELECT count() AS c FROM t WHERE n > 100 GROUP ALL",  # nothing matches
            "SELECT count() AS c FROM t GROUP ALL",
            "SELECT g, math::mean(n) AS m, array::group(n) AS ns FROM t GROUP BY g",
            "SELECT * OMIT g FROM t WHERE n IN [1, 5] ORDER BY n",
            "SELECT * FROM t:1..=3 ORDER BY n",
            "SELECT VALUE n FROM t WHERE g = 'a' ORDER BY n DESC LIMIT 2 START 1",
        ):
            await _same(u, sql)


async def test_a_statement_the_engine_refuses_gets_the_primarys_own_error(engine: int) -> None:
    async with union(engine) as u:
        await u.primary.query("CREATE t:1 SET n = 1")
        sql = "SELECT n FROM t WHERE n > 0 OMIT n"
        answer = await u.reads.query_raw(u.primary, sql, {}, parse(sql))
        alone = await u.primary.query_raw(sql, {})
    assert answer.get("error") == alone.get("error") and "error" in alone


async def test_walking_into_a_record_link_raises(engine: int) -> None:
    async with union(engine) as u:
        await u.primary.query("CREATE person:1 SET name = 'a'")
        primary = [{"id": RecordID("post", 1), "author": RecordID("person", 1)}]
        await u.fill("post", primary, [[{"id": RecordID("post", 2), "meta": {"n": 1}}]])
        await _same(u, "SELECT VALUE meta.n FROM post ORDER BY meta.n")  # an object, no link
        with pytest.raises(MergeUnsupported, match="record link"):
            await u.merged("SELECT author.name FROM post")
