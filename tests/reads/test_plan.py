"""The merge plan, without a database: what each source is asked, which rows win."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from surrealdb import RecordID

from syncd.errors import MergeUnsupported
from syncd.keys import KeyRule
from syncd.reads.plan import Candidates, choose, lookups, plan, plan_select, short
from syncd.reads.statements import parse


def _candidates(sql: str, vars: dict[str, Any] | None = None) -> Candidates | None:
    return plan_select(parse(sql)[0], vars).candidates


@pytest.mark.parametrize(
    ("sql", "asked"),
    [
        # KNN: each source's own top k (k grows on a re-ask, and ef with it).
        (
            "SELECT id, vector::distance::knn() AS d FROM m WHERE e <|5,40|> $q ORDER BY d LIMIT 5",
            [
                "SELECT * FROM m WHERE e <|5,40|> $q LIMIT 5",
                "SELECT * FROM m WHERE e <|80,80|> $q LIMIT 80",
            ],
        ),
        (
            "SELECT id FROM m WHERE e <|3,COSINE|> $q",
            [
                "SELECT * FROM m WHERE e <|3,COSINE|> $q LIMIT 3",
                "SELECT * FROM m WHERE e <|80,COSINE|> $q LIMIT 80",
            ],
        ),
        # ORDER BY kept fields, LIMIT and START: the first LIMIT + START rows.
        (
            "SELECT * FROM m WHERE v > 1 ORDER BY n DESC LIMIT 3 START 2",
            [
                "SELECT * FROM m WHERE v > 1 ORDER BY n DESC LIMIT 5",
                "SELECT * FROM m WHERE v > 1 ORDER BY n DESC LIMIT 80",
            ],
        ),
        (
            "SELECT VALUE n FROM m ORDER BY n LIMIT $l",
            ["SELECT * FROM m ORDER BY n LIMIT 4", "SELECT * FROM m ORDER BY n LIMIT 80"],
        ),
        # Aggregates, VALUE of another field, an ORDER BY the projection drops: every row.
        (
            "SELECT count() FROM m GROUP ALL",
            ["SELECT * FROM m LIMIT 101", "SELECT * FROM m LIMIT 80"],
        ),
        (
            "SELECT name FROM m ORDER BY n LIMIT 3",
            ["SELECT * FROM m LIMIT 101", "SELECT * FROM m LIMIT 80"],
        ),
        (
            "SELECT VALUE ts FROM m WHERE ts < 3",
            ["SELECT * FROM m WHERE ts < 3 LIMIT 101", "SELECT * FROM m WHERE ts < 3 LIMIT 80"],
        ),
        # A subquery in FROM: the inner SELECT's candidates.
        (
            "SELECT * FROM (SELECT id, vector::similarity::cosine(e, $v) AS s FROM m "
            "WHERE e <|4|> $v) WHERE s >= $t ORDER BY s DESC",
            [
                "SELECT * FROM m WHERE e <|4|> $v LIMIT 4",
                "SELECT * FROM m WHERE e <|80|> $v LIMIT 80",
            ],
        ),
        (
            "SELECT * FROM type::table($tb) WHERE a = 1",
            [
                "SELECT * FROM type::table($tb) WHERE a = 1 LIMIT 101",
                "SELECT * FROM type::table($tb) WHERE a = 1 LIMIT 80",
            ],
        ),
    ],
)
def test_what_each_source_is_asked(sql: str, asked: list[str]) -> None:
    found = _candidates(sql, {"l": 4, "tb": "m"})
    assert found is not None
    whole = replace(found, fields=None)  # the names asked for: see the next test
    assert [whole.sql(whole.first_ask(100)), whole.sql(80)] == asked


def test_only_the_names_a_statement_mentions_are_asked_for() -> None:
    found = _candidates("SELECT user_id, count() AS n FROM m WHERE v.x > 1 GROUP BY user_id")
    assert found is not None
    assert found.sql(10, ["k"]) == (
        "SELECT `id`, `k`, `SELECT`, `user_id`, `AS`, `n`, `FROM`, `m`, `WHERE`, `v`, "
        "`GROUP`, `BY` FROM m WHERE v.x > 1 LIMIT 10"
    )
    for whole in ("SELECT * FROM m", "SELECT VALUE $this.a FROM m", "SELECT a * 2 FROM m"):
        found = _candidates(whole)
        assert found is not None and found.fields is None


def test_the_scratch_text_drops_the_condition_that_chose_the_candidates() -> None:
    def text(sql: str) -> str:
        return plan_select(parse(sql)[0]).text

    matched = "SELECT id FROM m WHERE true ORDER BY n"
    assert text("SELECT id FROM m WHERE t @@ 'x' ORDER BY n") == matched
    inner = "SELECT * FROM (SELECT id, n FROM m WHERE n > 1) WHERE n < 5"
    assert text(inner) == "SELECT * FROM (SELECT id, n FROM m WHERE true) WHERE n < 5"
    knn = "SELECT id FROM m WHERE e <|2,COSINE|> $q"
    assert text(knn) == knn  # the top k is chosen again over the union
    highlight = "SELECT search::highlight('<b>', '</b>', 1) FROM m WHERE t @1@ 'x'"
    assert text(highlight) == highlight
    assert plan_select(parse(highlight)[0]).fulltext_index


def test_a_select_of_values_reads_no_table_and_a_let_needs_no_candidates() -> None:
    assert _candidates("SELECT 1 + 1 AS two") is None
    assert plan(parse("LET $x = [1, 2]")[0]) is None
    with pytest.raises(MergeUnsupported, match="LET of a query"):
        plan(parse("LET $x = (SELECT * FROM m)")[0])


def test_a_whole_table_needs_no_lookups() -> None:
    whole = _candidates("SELECT count() FROM m GROUP BY g")
    assert whole is not None and whole.complete
    filtered = _candidates("SELECT count() FROM m WHERE v > 1 GROUP BY g")
    assert filtered is not None and not filtered.complete


@pytest.mark.parametrize(
    ("sql", "clause"),
    [
        ("SELECT search::score(1) AS s FROM m WHERE t @1@ 'x' ORDER BY s DESC", "search::score"),
        ("SELECT ->knows->person FROM person", "graph traversal"),
        ("SELECT * FROM m WHERE id IN (SELECT VALUE id FROM n)", "subquery outside FROM"),
        ("SELECT * FROM m FETCH author", "FETCH"),
        ("SELECT * FROM m, n", "FROM with several targets"),
        ("SELECT * FROM $things", "FROM target"),
        ("SELECT * FROM m WHERE e <|2|> $a AND f <|3|> $b", "several KNN operators"),
        ("SELECT * FROM m WHERE e <|$k|> $a", "KNN operator"),
        ("SELECT * FROM m EXPLAIN", "EXPLAIN"),
    ],
)
def test_shapes_that_cannot_be_merged_name_their_clause(sql: str, clause: str) -> None:
    with pytest.raises(MergeUnsupported) as raised:
        plan_select(parse(sql)[0])
    assert raised.value.clause == clause


KEYS = KeyRule({"kv": ["user", "key"]})


def _r(table: str, rid: Any, **fields: Any) -> dict[str, Any]:
    return {"id": RecordID(table, rid), **fields}


def test_lookups_ask_the_sources_that_outrank_every_holder() -> None:
    primary = [_r("t", 1, n=1)]
    secondary = [_r("t", 1, n=9), _r("t", 2, n=2)]
    asks = lookups([primary, secondary], KEYS.row_key, newest=False)
    assert asks == [[_r("t", 2, n=2)], []]  # the primary is asked about t:2 only
    newest = lookups([primary, secondary], KEYS.row_key, newest=True)
    assert newest == [[_r("t", 2, n=2)], []]  # t:1 came from both already


def test_choose_drops_a_winner_that_did_not_match_where_it_lives() -> None:
    # t:1 matched on the secondary only; the primary's t:1 (looked up) wins and
    # did not match there, so t:1 is not in the answer. t:2 is the secondary's.
    secondary = [_r("t", 1, v=5), _r("t", 2, v=5)]
    chosen = choose([[], secondary], [[_r("t", 1, v=0)], []], KEYS.row_key)
    assert chosen.rows == [_r("t", 2, v=5)]
    assert chosen.per_source == [0, 1]


def test_choose_by_natural_key_and_newest_version() -> None:
    p = [_r("kv", "new", user="u", key="a", at=1)]
    s = [_r("kv", "old", user="u", key="a", at=3), _r("kv", "x", user="u", key="b", at=1)]
    assert [r["id"].id for r in choose([p, s], [[], []], KEYS.row_key).rows] == ["new", "x"]
    newest = choose([p, s], [[], []], KEYS.row_key, lambda _row: "at")
    assert [r["id"].id for r in newest.rows] == ["old", "x"]


def test_a_replicated_copy_counts_for_its_source_and_short_sources_are_asked_again() -> None:
    bound = Candidates("t", "t", order="n", need=2)
    primary = [_r("t", 1, n=1), _r("t", 2, n=2)]
    copies = [_r("t", 1, n=1), _r("t", 2, n=2)]
    stale = [_r("t", 1, n=0), _r("t", 2, n=0)]
    same = choose([primary, copies], [[], []], KEYS.row_key)
    assert short(bound, [2, 2], [2, 2], same) == []
    shadowed = choose([primary, stale], [[], []], KEYS.row_key)
    assert shadowed.per_source == [2, 0]
    assert short(bound, [2, 2], [2, 2], shadowed) == [1]  # full and all lost: ask for more
    assert short(bound, [2, 4], [2, 2], shadowed) == []  # it had no more to give
