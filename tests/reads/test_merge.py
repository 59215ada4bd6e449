"""Merged reads: dedup by key, primary wins, ordering over mixed values, limits."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from surrealdb import RecordID

from syncd.reads.merge import OrderTerm, key_for_table, merge_rows, sort_key

BY_ID = key_for_table({})
PEOPLE_BY_EMAIL = key_for_table({"person": ["email"]})


def rid(table: str, ident: Any) -> RecordID:
    """An SDK record id, as query results carry them."""
    return RecordID(table, ident)


def ids(rows: list[dict[str, Any]]) -> list[str]:
    """The rows' ids rendered, for compact assertions."""
    return [str(r.get("id")) for r in rows]


def test_overlap_keeps_one_row_per_key_primary_first() -> None:
    primary = [{"id": rid("t", 1)}, {"id": rid("t", 2)}]
    secondary = [{"id": rid("t", 2)}, {"id": rid("t", 3)}, {"id": rid("t", 0)}]
    assert ids(merge_rows(primary, secondary, key=BY_ID)) == ["t:1", "t:2", "t:3", "t:0"]


def test_conflict_primary_row_wins_entirely() -> None:
    primary = [{"id": rid("t", 1), "name": "new"}]
    secondary = [{"id": rid("t", 1), "name": "old", "extra": "stale field"}]
    assert merge_rows(primary, secondary, key=BY_ID) == [{"id": rid("t", 1), "name": "new"}]


def test_natural_key_dedups_rows_with_different_ids() -> None:
    primary = [{"id": rid("person", "new"), "email": "a@x", "n": 1}]
    secondary = [
        {"id": rid("person", "old"), "email": "a@x", "n": 0},
        {"id": rid("person", "gone"), "email": "b@x", "n": 0},
    ]
    merged = merge_rows(primary, secondary, key=PEOPLE_BY_EMAIL)
    assert ids(merged) == ["person:new", "person:gone"]
    assert merged[0]["n"] == 1


def test_natural_key_only_applies_to_its_table() -> None:
    key = key_for_table({"person": ["email"]})
    # Another table keys by id even when it has an "email" field.
    assert key({"id": rid("org", 1), "email": "a@x"}) == "org:1"
    assert key({"id": rid("person", 1), "email": "a@x"}) == 'person|["a@x"]'


def test_natural_key_missing_field_falls_back_to_the_record_id() -> None:
    # The one key rule (syncd.keys.KeyRule): a record lacking a natural-key
    # field is keyed by its id, exactly as the executor upserts it. So the
    # same id on both sides is one record (primary wins) and other ids stay.
    primary = [{"id": rid("person", 1), "n": "p"}]
    secondary = [{"id": rid("person", 1), "n": "s"}, {"id": rid("person", 2), "n": "s"}]
    merged = merge_rows(primary, secondary, key=PEOPLE_BY_EMAIL)
    assert merged == [{"id": rid("person", 1), "n": "p"}, {"id": rid("person", 2), "n": "s"}]


def test_rows_without_id_are_all_kept_in_order() -> None:
    primary: list[dict[str, Any]] = [{"n": 1}, {"id": rid("t", 1)}, {"n": 1}]
    secondary: list[dict[str, Any]] = [{"n": 1}, {"id": rid("t", 1)}, {"n": 2}]
    merged = merge_rows(primary, secondary, key=BY_ID)
    assert merged == [{"n": 1}, {"id": rid("t", 1)}, {"n": 1}, {"n": 1}, {"n": 2}]


def test_id_without_table_keys_by_its_text() -> None:
    assert BY_ID({"id": "t:1"}) == "t:1"
    assert BY_ID({"id": 7}) == "7"
    assert BY_ID({"name": "x"}) is None
    merged = merge_rows([{"id": "t:1", "v": "p"}], [{"id": "t:1", "v": "s"}], key=BY_ID)
    assert merged == [{"id": "t:1", "v": "p"}]


def test_duplicate_keys_within_one_side_keep_the_first() -> None:
    primary = [{"id": rid("t", 1), "v": "a"}, {"id": rid("t", 1), "v": "b"}]
    assert merge_rows(primary, [], key=BY_ID) == [{"id": rid("t", 1), "v": "a"}]


def test_rows_are_copied_not_shared() -> None:
    row = {"id": rid("t", 1)}
    merged = merge_rows([row], [], key=BY_ID)
    merged[0]["x"] = 1
    assert row == {"id": rid("t", 1)}


def test_empty_sides() -> None:
    rows = [{"id": rid("t", 1)}]
    assert merge_rows([], [], key=BY_ID) == []
    assert merge_rows(rows, [], key=BY_ID) == rows
    assert merge_rows([], rows, key=BY_ID) == rows
    assert merge_rows([], [], key=BY_ID, order_by=[OrderTerm("a")], limit=3) == []


def test_order_ascending_and_descending() -> None:
    primary = [{"id": rid("t", 1), "a": 3}, {"id": rid("t", 2), "a": 1}]
    secondary = [{"id": rid("t", 3), "a": 2}]
    asc = merge_rows(primary, secondary, key=BY_ID, order_by=[OrderTerm("a")])
    desc = merge_rows(primary, secondary, key=BY_ID, order_by=[OrderTerm("a", descending=True)])
    assert [r["a"] for r in asc] == [1, 2, 3]
    assert [r["a"] for r in desc] == [3, 2, 1]


def test_order_multi_field_and_stable_ties() -> None:
    rows = [
        {"id": rid("t", 1), "g": "x", "n": 1},
        {"id": rid("t", 2), "g": "y", "n": 2},
        {"id": rid("t", 3), "g": "x", "n": 2},
        {"id": rid("t", 4), "g": "y", "n": 2},
    ]
    order = [OrderTerm("g", descending=True), OrderTerm("n")]
    merged = merge_rows(rows[:2], rows[2:], key=BY_ID, order_by=order)
    # y before x; within a group n ascending; t:2 and t:4 tie and keep input order.
    assert ids(merged) == ["t:2", "t:4", "t:1", "t:3"]


def test_order_by_dotted_path() -> None:
    rows = [{"id": rid("t", 1), "a": {"b": 2}}, {"id": rid("t", 2), "a": {"b": 1}}]
    merged = merge_rows(rows, [], key=BY_ID, order_by=[OrderTerm("a.b")])
    assert ids(merged) == ["t:2", "t:1"]


def test_order_by_literal_dotted_key_wins_over_path() -> None:
    rows = [{"a.b": 2, "a": {"b": 0}}, {"a.b": 1, "a": {"b": 9}}]
    merged = merge_rows(rows, [], key=BY_ID, order_by=[OrderTerm("a.b")])
    assert [r["a.b"] for r in merged] == [1, 2]


def test_missing_and_null_sort_first_ascending_last_descending() -> None:
    rows: list[dict[str, Any]] = [
        {"id": rid("t", 1), "a": 1},
        {"id": rid("t", 2), "a": None},
        {"id": rid("t", 3)},
    ]
    asc = merge_rows(rows, [], key=BY_ID, order_by=[OrderTerm("a")])
    desc = merge_rows(rows, [], key=BY_ID, order_by=[OrderTerm("a", descending=True)])
    assert ids(asc) == ["t:3", "t:2", "t:1"]
    assert ids(desc) == ["t:1", "t:2", "t:3"]


def test_mixed_types_order_by_type_rank_without_raising() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    values: list[Any] = ["b", [1], 2.5, None, True, Decimal("1.5"), when, {"x": 1}, 1, "a"]
    rows = [{"v": v} for v in values] + [{}]
    merged = merge_rows(rows, [], key=BY_ID, order_by=[OrderTerm("v")])
    got = [r.get("v", "<missing>") for r in merged]
    assert got[:8] == ["<missing>", None, True, 1, Decimal("1.5"), 2.5, "a", "b"]
    assert got[8] == when
    assert sorted(map(str, got[9:])) == sorted(map(str, [[1], {"x": 1}]))


def test_nan_sorts_after_numbers_without_raising() -> None:
    values = [float("nan"), 1, Decimal("NaN"), 0, Decimal("sNaN")]
    ordered = sorted(values, key=sort_key)
    assert ordered[:2] == [0, 1]


def test_limit_after_order() -> None:
    primary = [{"id": rid("t", i), "a": i} for i in (5, 3, 1)]
    secondary = [{"id": rid("t", i), "a": i} for i in (4, 2)]
    merged = merge_rows(primary, secondary, key=BY_ID, order_by=[OrderTerm("a")], limit=2)
    assert [r["a"] for r in merged] == [1, 2]


def test_limit_without_order_prefers_primary_rows() -> None:
    primary = [{"id": rid("t", 1)}, {"id": rid("t", 2)}]
    secondary = [{"id": rid("t", 3)}]
    assert ids(merge_rows(primary, secondary, key=BY_ID, limit=2)) == ["t:1", "t:2"]
    assert merge_rows(primary, secondary, key=BY_ID, limit=0) == []


def test_start_skips_after_order() -> None:
    rows = [{"id": rid("t", i), "a": i} for i in range(5)]
    merged = merge_rows(rows[3:], rows[:3], key=BY_ID, order_by=[OrderTerm("a")], start=1, limit=2)
    assert [r["a"] for r in merged] == [1, 2]


def _random_rows(rng: random.Random, side: str) -> list[dict[str, Any]]:
    """A random result set: ids from a small shared pool, some rows without id."""
    rows: list[dict[str, Any]] = []
    for _ in range(rng.randrange(8)):
        if rng.random() < 0.2:
            rows.append({"side": side, "n": rng.randrange(3)})
        else:
            rows.append({"id": rid("t", rng.randrange(6)), "side": side, "n": rng.randrange(3)})
    return rows


def _keyed(rows: list[dict[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """First row per key (what merge_rows keeps from one side)."""
    first: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        k = BY_ID(row)
        if k is not None:
            first.setdefault(k, row)
    return first


def test_merge_properties_on_random_inputs() -> None:
    # hypothesis is not installed; a seeded generator checks the same properties.
    rng = random.Random(20240601)
    for _ in range(500):
        primary, secondary = _random_rows(rng, "p"), _random_rows(rng, "s")
        order = [OrderTerm("n", rng.random() < 0.5)] if rng.random() < 0.5 else []
        merged = merge_rows(primary, secondary, key=BY_ID, order_by=order)
        keys = [k for k in map(BY_ID, merged) if k is not None]
        assert len(keys) == len(set(keys)), "duplicate key in merged result"
        for k, row in _keyed(primary).items():
            assert row in merged, f"primary row {k} missing or changed"
        for k, row in _keyed(secondary).items():
            if k not in _keyed(primary):
                assert row in merged, f"secondary-only row {k} missing"
        unkeyed = [r for r in primary + secondary if BY_ID(r) is None]
        assert len(merged) == len(_keyed(primary) | _keyed(secondary)) + len(unkeyed)


# -- several secondaries, and recency ---------------------------------------


def test_rows_only_on_a_lower_priority_secondary_are_kept_after_the_others() -> None:
    primary = [{"id": rid("t", 1), "s": "p"}]
    first = [{"id": rid("t", 1), "s": "a"}, {"id": rid("t", 2), "s": "a"}]
    second = [{"id": rid("t", 2), "s": "b"}, {"id": rid("t", 3), "s": "b"}]
    merged = merge_rows(primary, first, others=[second], key=BY_ID)
    assert merged == [
        {"id": rid("t", 1), "s": "p"},
        {"id": rid("t", 2), "s": "a"},  # the lower priority number wins among secondaries
        {"id": rid("t", 3), "s": "b"},
    ]


def by_updated_at(row: Any) -> str | None:
    return "updated_at" if str(row["id"]).startswith("v:") else None


def test_newest_prefers_the_greater_version_in_place() -> None:
    primary = [{"id": rid("v", 1), "updated_at": 5, "s": "p"}, {"id": rid("v", 2), "updated_at": 9}]
    secondary = [
        {"id": rid("v", 1), "updated_at": 7, "s": "s"},
        {"id": rid("v", 2), "updated_at": 3},
    ]
    merged = merge_rows(primary, secondary, key=BY_ID, newest=by_updated_at)
    assert merged == [
        {"id": rid("v", 1), "updated_at": 7, "s": "s"},  # the secondary's is newer
        {"id": rid("v", 2), "updated_at": 9},  # the primary's is newer
    ]


def test_newest_ties_go_to_the_primary_and_other_tables_stay_primary_first() -> None:
    primary = [{"id": rid("v", 1), "updated_at": 5, "s": "p"}, {"id": rid("t", 1), "n": 1}]
    secondary = [{"id": rid("v", 1), "updated_at": 5, "s": "s"}, {"id": rid("t", 1), "n": 2}]
    merged = merge_rows(primary, secondary, key=BY_ID, newest=by_updated_at)
    assert merged == primary


def test_newest_across_three_secondaries() -> None:
    primary: list[dict[str, Any]] = [{"id": rid("v", 1), "updated_at": 1}]
    rows = [[{"id": rid("v", 1), "updated_at": n}] for n in (4, 9, 6)]
    merged = merge_rows(primary, rows[0], others=rows[1:], key=BY_ID, newest=by_updated_at)
    assert merged == [{"id": rid("v", 1), "updated_at": 9}]


def test_newest_with_a_missing_version_keeps_the_one_that_has_it() -> None:
    primary = [{"id": rid("v", 1), "s": "p"}]
    secondary = [{"id": rid("v", 1), "updated_at": 2, "s": "s"}]
    merged = merge_rows(primary, secondary, key=BY_ID, newest=by_updated_at)
    assert merged == secondary
