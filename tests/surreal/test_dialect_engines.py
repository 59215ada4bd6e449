"""The dialect's statements and rules against both real engines, in-process."""

from __future__ import annotations

import time
import uuid
from typing import Any

import cbor2
import pytest

from syncd.surreal.dialect import Dialect, dialect_for, is_undefined_table, key_lookup, key_params
from tests.surreal import record_frames
from tests.surreal.engines import Engine, open_engine
from tests.surreal.recorded import document, kinds_of, shape

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
GENERATIONS = [pytest.param(2, id="v2"), pytest.param(3, id="v3")]


async def dialect_of(engine: Engine) -> Dialect:
    """The dialect for the engine's own ``version`` answer."""
    answer = await engine.rpc("version")
    return dialect_for(answer["result"])


def rid(table: str, key: Any) -> cbor2.CBORTag:
    """A record id as SurrealDB's CBOR tag 8."""
    return cbor2.CBORTag(8, (table, key))


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_recorded_frames_still_describe_the_engine(generation: int) -> None:
    fresh = await record_frames.record(generation)
    stored = document(generation)
    assert fresh["version"] == stored["version"]
    assert [f["name"] for f in fresh["frames"]] == [f["name"] for f in stored["frames"]]
    for new, old in zip(fresh["frames"], stored["frames"], strict=True):
        from_new = shape(_decoded(new.get("answer")), new.get("raised"))
        assert from_new == shape(_decoded(old.get("answer")), old.get("raised")), new["name"]


def _decoded(answer: Any) -> Any:
    from tests.surreal.tagged import from_json

    return None if answer is None else from_json(answer)


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_feed_positions_resume_exactly(generation: int) -> None:
    async with open_engine(generation) as engine:
        dialect = await dialect_of(engine)
        assert dialect.rules == generation
        await engine.query("DEFINE TABLE a CHANGEFEED 1d; DEFINE TABLE b CHANGEFEED 1d")
        for i in range(4):
            await engine.query(f"CREATE a:{i}; CREATE b:{i}")  # two entries per request
        await engine.query("BEGIN; CREATE a:10; CREATE b:10; COMMIT")
        entries = await engine.one(dialect.show_changes(0, 1000))
        stamps = [dialect.entry_position(e) for e in entries]
        assert len(stamps) >= 10 and stamps == sorted(set(stamps))
        for index, stamp in enumerate(stamps):
            at = await engine.one(dialect.show_changes(stamp, 1000))
            assert [dialect.entry_position(e) for e in at] == stamps[index:]
            after = await engine.one(dialect.show_changes(dialect.next_position(stamp), 1))
            assert [dialect.entry_position(e) for e in after] == stamps[index + 1 : index + 2]
        now = time.time()
        assert all(dialect.plausible(s, now) for s in stamps)
        lag = dialect.lag_seconds(stamps[-1], now)
        if generation == 2:
            assert lag is None
        else:
            assert lag is not None and 0 <= lag < 60


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_record_range_pages_every_id_type(generation: int) -> None:
    ids = [1, 2, "a", "b", ["x", 1], {"k": 1}, uuid.UUID(int=7), uuid.UUID(int=9)]
    async with open_engine(generation) as engine:
        dialect = await dialect_of(engine)
        missing = await engine.query(f"SELECT * FROM {dialect.record_range()} LIMIT 2", {"t": "r"})
        assert is_undefined_table(missing[0]) is dialect.missing_table_is_error
        await engine.query("FOR $i IN $ids { CREATE type::table('r') SET k = $i }", {"ids": []})
        await engine.query("FOR $id IN $ids { CREATE $id }", {"ids": [rid("r", i) for i in ids]})
        expected = await engine.one("SELECT VALUE id FROM r")
        seen: list[Any] = []
        after: Any = None
        while True:
            if after is None:
                sql, params = f"SELECT VALUE id FROM {dialect.record_range()} LIMIT 3", {"t": "r"}
            elif isinstance(after, uuid.UUID) and dialect.uuid_bound_needs_literal:
                sql, params = f"SELECT VALUE id FROM r:u'{after}'>.. LIMIT 3", {}
            else:
                sql = f"SELECT VALUE id FROM {dialect.record_range('$t', '$after')} LIMIT 3"
                params = {"t": "r", "after": after}
            page = await engine.one(sql, params)
            if not page:
                break
            seen += page
            after = page[-1].value[1]
        assert seen == expected and len(seen) == len(ids)


OLD_NATURAL = record_frames._NATURAL_OLD  # what syncd's executor sends today


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_natural_upsert_keeps_one_record_per_key(generation: int) -> None:
    rows = [
        {"id": rid("kv", "a"), "content": {"user_id": "u", "key": "k", "v": 1}},
        {"id": rid("kv", "b"), "content": {"user_id": "u", "key": "k", "v": 2}},  # rewritten
        {"id": rid("kv", "c"), "content": {"user_id": "u", "key": "k2", "v": 3}},
    ]
    async with open_engine(generation) as engine:
        dialect = await dialect_of(engine)
        many = dialect.natural_upsert("b0", "$t0", ["user_id", "key"], many=True)
        (result,) = await engine.query(many, {"b0": rows, "t0": "kv"})  # the table is missing
        assert result["status"] == "OK"
        one = dialect.natural_upsert("p0", "$t", ["user_id", "key"], many=False)
        row = {"id": rid("kv", "d"), "content": {"user_id": "u", "key": "k2", "v": 4}}
        (result,) = await engine.query(one, {"p0": row, "t": "kv"})
        assert result["status"] == "OK"
        got = await engine.one("SELECT id, v FROM kv ORDER BY id")
        assert got == [{"id": rid("kv", "a"), "v": 2}, {"id": rid("kv", "c"), "v": 4}]
        # The old form, inside FOR, adds a random-id record per hit (both engines).
        await engine.query(OLD_NATURAL, {"t": "kv", "b": rows[1:2]})
        count = await engine.one("SELECT count() FROM kv GROUP ALL")
        assert count == [{"count": 3}]


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_key_lookup_uses_the_index(generation: int) -> None:
    async with open_engine(generation) as engine:
        await engine.query("DEFINE INDEX kv_key ON kv FIELDS user_id, key")
        await engine.query("FOR $i IN 0..20 { CREATE kv SET user_id = 'u', key = <string>$i }")
        params = {"t": "kv", **key_params("k0", ["user_id", "key"], {"user_id": "u", "key": "7"})}
        sql = key_lookup("$t", ["user_id", "key"], "k0")
        (row,) = await engine.one(sql, params)
        assert row["key"] == "7"
        plan = str(await engine.one(sql.replace("LIMIT 1", "LIMIT 1 EXPLAIN"), params))
        assert "kv_key" in plan and "TableScan" not in plan
        nested = "SELECT * FROM kv WHERE user_id = $k.user_id AND key = $k.key LIMIT 1 EXPLAIN"
        plan = str(await engine.one(nested, {"k": {"user_id": "u", "key": "7"}}))
        # The shape records._lookup_natural uses today: a full scan per record on 3.x.
        assert ("TableScan" in plan) is (generation == 3)


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_statement_results_align_live(generation: int) -> None:
    sql = "RETURN 1; BEGIN; CREATE t:1; CREATE t:2 SET n = <int>'x'; COMMIT; RETURN 2"
    async with open_engine(generation) as engine:
        dialect = await dialect_of(engine)
        shaped = dialect.statement_results(kinds_of(sql), await engine.query(sql))
        assert shaped is not None
        assert [r["status"] for r in shaped] == ["OK", "ERR", "ERR", "OK"]
        assert (shaped[0]["result"], shaped[-1]["result"]) == (1, 2)


async def test_ensure_table_makes_reads_of_a_new_table_empty_on_v3() -> None:
    async with open_engine(3) as engine:
        dialect = await dialect_of(engine)
        ensure = dialect.ensure_table("$t")
        assert ensure is not None
        await engine.one(ensure, {"t": "fresh"})
        await engine.one(ensure, {"t": "fresh"})  # idempotent
        assert await engine.one("SELECT * FROM type::table($t)", {"t": "fresh"}) == []
