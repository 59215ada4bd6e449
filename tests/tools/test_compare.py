"""Comparing pages of primary and secondary rows by dedup key (pure, no database)."""

from __future__ import annotations

from surrealdb import RecordID

from syncd.tools.compare import EXAMPLES, KeySpec, TableTally, compare_rows

EVENTS = KeySpec("events")
KV = KeySpec("kv", fields=("user_id", "key"), volatile=frozenset({"seen_at"}))


def ev(n: int, **fields: object) -> dict[str, object]:
    return {"id": RecordID("events", n), "n": n, **fields}


def kv(rid: str, user: str, key: str, **fields: object) -> dict[str, object]:
    return {"id": RecordID("kv", rid), "user_id": user, "key": key, **fields}


def test_equal_pages_have_no_differences() -> None:
    diff = compare_rows(EVENTS, [ev(1), ev(2)], [ev(2), ev(1)])
    assert (diff.matched, diff.missing, diff.differing, diff.extra) == (2, [], [], [])


def test_missing_differing_and_extra_by_record_id() -> None:
    primary = [ev(1), ev(2, tag="new"), ev(3)]
    secondary = [ev(2, tag="old"), ev(3), ev(9)]
    diff = compare_rows(EVENTS, primary, secondary)
    assert diff.missing == ["events:1"]
    assert diff.differing == [("events:2", ["tag"])]
    assert diff.extra == ["events:9"]
    assert diff.needs_repair() == {"events:1", "events:2"}


def test_a_field_present_on_one_side_only_differs_even_when_none() -> None:
    diff = compare_rows(EVENTS, [ev(1, note=None)], [ev(1)])
    assert diff.differing == [("events:1", ["note"])]


def test_natural_key_matches_records_under_different_ids() -> None:
    primary = [kv("new", "u1", "k", value=3)]
    secondary = [kv("old", "u1", "k", value=3)]
    diff = compare_rows(KV, primary, secondary)
    assert (diff.matched, diff.missing, diff.differing, diff.extra) == (1, [], [], [])


def test_natural_key_content_differences_are_found() -> None:
    diff = compare_rows(KV, [kv("a", "u1", "k", value=3)], [kv("b", "u1", "k", value=2)])
    assert diff.differing == [('kv|["u1","k"]', ["value"])]


def test_volatile_fields_are_ignored() -> None:
    diff = compare_rows(KV, [kv("a", "u", "k", seen_at=1)], [kv("a", "u", "k", seen_at=2)])
    assert diff.differing == []


def test_a_row_without_the_natural_key_fields_is_matched_by_id() -> None:
    partial = {"id": RecordID("kv", "x"), "user_id": "u"}
    diff = compare_rows(KV, [partial], [dict(partial)])
    assert diff.matched == 1
    assert KV.key(partial) == "kv:x"


def test_sdk_types_compare_by_value() -> None:
    link = {"id": RecordID("events", 1), "ref": RecordID("users", "a")}
    same = {"id": RecordID("events", 1), "ref": RecordID("users", "a")}
    other = {"id": RecordID("events", 1), "ref": RecordID("users", "b")}
    assert compare_rows(EVENTS, [link], [same]).differing == []
    assert compare_rows(EVENTS, [link], [other]).differing == [("events:1", ["ref"])]


def test_tally_counts_exactly_and_keeps_few_examples_and_round_trips() -> None:
    tally = TableTally()
    for page in range(3):
        primary = [ev(n) for n in range(page * 10, page * 10 + 10)]
        tally.add_primary_page(len(primary), compare_rows(EVENTS, primary, primary[:5]))
    tally.add_secondary_page(7, ["events:100", "events:101"])
    assert (tally.primary_records, tally.missing, tally.differing, tally.extra) == (30, 15, 0, 2)
    assert len(tally.examples["missing"]) == EXAMPLES
    assert not tally.consistent
    assert TableTally.from_json(tally.to_json()) == tally


def test_extras_alone_are_consistent() -> None:
    tally = TableTally()
    tally.add_secondary_page(3, ["events:1", "events:2"])
    assert tally.consistent
