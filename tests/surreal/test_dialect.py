"""The dialect on frames recorded from both engines (no engine at test time)."""

from __future__ import annotations

import itertools

import pytest

from syncd.surreal.dialect import (
    FEED_LIMIT_MAX,
    Dialect,
    ServerVersion,
    dialect_for,
    failure_of,
    key_lookup,
    key_params,
    parse_version,
    quote_ident,
)
from tests.surreal.recorded import Frame, document, frames, kinds_of

V2 = dialect_for("surrealdb-2.3.10")
V3 = dialect_for("surrealdb-3.2.4")
BOTH = [pytest.param(2, V2, id="v2"), pytest.param(3, V3, id="v3")]


def feed(generation: int, case: str = "show_changes_table") -> list[dict[str, object]]:
    """The entries of a recorded SHOW CHANGES answer."""
    (result,) = frames(generation)[case].results
    entries: list[dict[str, object]] = result["result"]
    return entries


# -- versions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("surrealdb-2.3.10", (2, 3, 10)),
        ("surrealdb-2.0.0", (2, 0, 0)),  # what the 2.x embedded engine answers
        ("surrealdb-3.2.4", (3, 2, 4)),
        (" 3.0.0-beta.2 ", (3, 0, 0)),
        ("v4.0.1+20261101.abc", (4, 0, 1)),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int]) -> None:
    version = parse_version(text)
    assert (version.major, version.minor, version.patch) == expected
    assert version.raw == text.strip()
    assert str(version) == ".".join(map(str, expected))


@pytest.mark.parametrize("text", ["", "surrealdb", "3.2", "surrealdb-x.1.2", "3.2.4 beta"])
def test_parse_version_refuses_guesses(text: str) -> None:
    with pytest.raises(ValueError, match="not a SurrealDB version"):
        parse_version(text)


def test_versions_order_by_number_not_text() -> None:
    assert parse_version("2.10.0") > parse_version("2.9.9")
    assert parse_version("3.2.4") == ServerVersion(3, 2, 4, "other text")


def test_dialect_rules_and_tested_flag() -> None:
    assert (V2.rules, V2.tested, V3.rules, V3.tested) == (2, True, 3, True)
    future = dialect_for("surrealdb-4.0.0")
    assert (future.rules, future.tested) == (3, False)
    with pytest.raises(ValueError, match="not supported"):
        dialect_for("1.5.4")


@pytest.mark.parametrize(("generation", "dialect"), BOTH)
def test_recorded_version_answer_selects_its_rules(generation: int, dialect: Dialect) -> None:
    answer = frames(generation)["version"].answer
    assert answer is not None
    assert dialect_for(answer["result"]).rules == generation == dialect.rules
    assert document(generation)["version"] == answer["result"]


# -- feed positions -----------------------------------------------------------


def test_v2_stamps_are_sequences_shifted_and_v3_carry_milliseconds() -> None:
    v2 = [V2.entry_position(e) for e in feed(2)]
    assert all(s % 65536 == 0 for s in v2)
    assert [s >> 16 for s in v2] == sorted({s >> 16 for s in v2})
    v3 = [V3.entry_position(e) for e in feed(3)]
    assert v3 == sorted(set(v3))
    recorded_ms = v3[0] >> 16
    assert 1_700_000_000_000 < recorded_ms < 4_000_000_000_000
    assert all(V3.plausible(s, now=recorded_ms / 1000) for s in v3)


@pytest.mark.parametrize(("generation", "dialect"), BOTH)
def test_since_literal_is_what_read_from_that_entry(generation: int, dialect: Dialect) -> None:
    third = dialect.entry_position(feed(generation)[2])
    literal = dialect.since_literal(third)
    recorded = frames(generation)
    for case in ("show_changes_since_raw_third", "show_changes_since_sequence_third"):
        frame = recorded[case]
        if frame.sql.split("SINCE ")[1].split()[0] == literal:
            (result,) = frame.results
            assert result["result"][0]["versionstamp"] == third
            break
    else:
        pytest.fail(f"no recorded SINCE {literal}")


def test_the_other_generations_since_reads_nothing_or_everything() -> None:
    # 2.x: a raw stamp after SINCE silently returns []; 3.x: a sequence reads from the start.
    (v2,) = frames(2)["show_changes_since_raw_third"].results
    assert v2["result"] == []
    (v3,) = frames(3)["show_changes_since_sequence_third"].results
    assert v3["result"] == feed(3)


@pytest.mark.parametrize(("generation", "dialect"), BOTH)
def test_next_position_skips_exactly_the_applied_entry(generation: int, dialect: Dialect) -> None:
    stamps = [dialect.entry_position(e) for e in feed(generation)]
    for applied, following in itertools.pairwise(stamps):
        after = dialect.next_position(applied)
        assert applied < after <= following
        assert int(dialect.since_literal(after)) > int(dialect.since_literal(applied))
        assert int(dialect.since_literal(after)) <= int(dialect.since_literal(following))
    assert dialect.next_position(stamps[0] - 1) == stamps[0]  # "resume at" = next after it - 1


def test_since_literal_bounds() -> None:
    assert V2.since_literal(0) == "0"
    assert V2.since_literal(3 * 65536) == "3"
    assert V2.since_literal(3 * 65536 + 5) == "3"  # rounds down: never skips an entry
    assert V3.since_literal(2**64 - 1) == str(2**64 - 1)
    with pytest.raises(ValueError):
        V3.since_literal(2**64)
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError):
            V2.since_literal(bad)  # type: ignore[arg-type]


def test_lag_plausibility_and_resume() -> None:
    stamp = (1_800_000_000_000 << 16) | 7
    assert V3.lag_seconds(stamp, now=1_800_000_002.5) == pytest.approx(2.5)
    assert V3.lag_seconds(stamp, now=1_799_999_999.0) == 0.0  # clock skew is no lag
    assert V2.lag_seconds(5 << 16, now=1e9) is None
    assert V3.plausible(stamp, now=1_800_000_000.0)
    assert not V3.plausible(stamp, now=1_700_000_000.0)  # from the future
    assert not V3.plausible(5 << 16)  # a 2.x stamp: 1970
    assert not V3.plausible(2**64) and not V2.plausible(-1) and not V2.plausible(True)
    assert V2.plausible(5 << 16)
    assert V3.can_resume(3, stamp, now=1_800_000_000.0)
    assert not V3.can_resume(2, stamp) and not V2.can_resume(None, 5 << 16)


def test_entry_position_refuses_a_missing_stamp() -> None:
    with pytest.raises(ValueError, match="versionstamp"):
        V3.entry_position({"changes": []})


def test_show_changes_statement() -> None:
    assert V2.show_changes(3 << 16, 500) == "SHOW CHANGES FOR DATABASE SINCE 3 LIMIT 500"
    assert V3.show_changes(12345, 5000, "kv") == "SHOW CHANGES FOR TABLE kv SINCE 12345 LIMIT 1000"
    assert V3.show_changes(0, 0, "odd`name") == (
        "SHOW CHANGES FOR TABLE `odd\\`name` SINCE 0 LIMIT 1"
    )
    assert FEED_LIMIT_MAX == 1000


@pytest.mark.parametrize("generation", [2, 3])
def test_limit_is_capped_and_counts_the_database_feed(generation: int) -> None:
    recorded = frames(generation)
    (no_limit,) = recorded["show_changes_no_limit"].results
    assert [next(iter(c)) for e in no_limit["result"] for c in e["changes"]] == [
        "define_table",
        "update",
    ]
    # pet has entries, but LIMIT 3 scanned the first three of the database's feed.
    (limited,) = recorded["show_changes_table_limit_counts_database"].results
    assert limited["result"] == []
    (unknown,) = recorded["show_changes_undefined_table"].results
    assert unknown["result"] == []


def test_feed_differences_recorded() -> None:
    v2_define = feed(2)[0]["changes"][0]["define_table"]  # type: ignore[index]
    v3_define = feed(3)[0]["changes"][0]["define_table"]  # type: ignore[index]
    assert v2_define == {"name": "person"}
    assert v3_define["name"] == "person" and "changefeed" in v3_define
    for generation in (2, 3):
        (after,) = frames(generation)["show_changes_after_overwrite_enable"].results
        assert [next(iter(c)) for e in after["result"] for c in e["changes"]][-1] == "update"
    # ALTER TABLE ... CHANGEFEED: 2.x records nothing after it; 3.x at once.
    (v2_alter,) = frames(2)["show_changes_after_alter"].results
    (v3_alter,) = frames(3)["show_changes_after_alter"].results
    assert all("update" not in c for e in v2_alter["result"] for c in e["changes"])
    assert [next(iter(c)) for e in v3_alter["result"] for c in e["changes"]] == ["update"]


# -- SurrealQL ----------------------------------------------------------------


def test_record_constructor_and_range() -> None:
    assert V2.record_range() == "type::thing($t, ..)"
    assert V3.record_range("$t", "$after") == "type::record($t, $after>..)"
    assert (V2.uuid_bound_needs_literal, V3.uuid_bound_needs_literal) == (True, False)
    with pytest.raises(ValueError):
        V3.record_range("t; DELETE x")


def test_recorded_record_functions() -> None:
    v2, v3 = frames(2), frames(3)
    assert v3["type_thing"].answer is not None and "Parse error" in str(v3["type_thing"].answer)
    assert v2["type_thing"].results[0]["status"] == "OK"
    assert v2["type_record"].results[0]["status"] == "ERR"  # (table, id) refused on 2.x
    v2_ids = v2["record_range_thing"].results[0]["result"]
    assert v2_ids == v3["record_range_record"].results[0]["result"] and len(v2_ids) > 1
    assert v2["record_range_uuid_param"].results[0]["status"] == "ERR"
    for recorded in (v2, v3):
        assert recorded["record_range_uuid_literal"].results[0]["status"] == "OK"
        assert recorded["record_exists"].results[0]["result"] == [True, False, 2]


def test_missing_tables_and_ensure_table() -> None:
    assert (V2.missing_table_is_error, V3.missing_table_is_error) == (False, True)
    assert V2.ensure_table("$t") is None
    assert V3.ensure_table("$t0") == "DEFINE TABLE IF NOT EXISTS $t0"
    for case in ("select_undefined_table", "count_undefined_table", "update_undefined_table"):
        assert frames(2)[case].results[0]["status"] == "OK"
        assert frames(3)[case].results[0]["status"] == "ERR"


def test_natural_upsert_compares_plain_parameters() -> None:
    many = V2.natural_upsert("b0", "$t0", ["user_id", "key"], many=True)
    assert many.startswith("FOR $r IN $b0 { LET $_k0 = $r.content.user_id; ")
    assert "WHERE user_id = $_k0 AND key = $_k1 LIMIT 1" in many
    assert "UPSERT type::table" not in many  # the form that duplicated inside FOR
    one = V3.natural_upsert("p3", "$t", ["user_id"], many=False)
    assert one.startswith("{ DEFINE TABLE IF NOT EXISTS $t; LET $_k0 = $p3.content.user_id;")
    assert one.endswith("}")
    assert V3.natural_upsert("b0", "$t0", ["k"], many=True).startswith(
        "{ DEFINE TABLE IF NOT EXISTS $t0; FOR $r IN $b0 {"
    )
    with pytest.raises(ValueError, match="identifiers"):
        V2.natural_upsert("b0", "$t0", ["a.b"], many=True)


def test_key_lookup_uses_flat_parameters() -> None:
    sql = key_lookup("$t", ["user_id", "key"], "k4")
    assert sql == "SELECT * FROM type::table($t) WHERE user_id = $k4_0 AND key = $k4_1 LIMIT 1"
    row = {"user_id": "u", "key": "k", "other": 1}
    assert key_params("k4", ["user_id", "key"], row) == {"k4_0": "u", "k4_1": "k"}


def test_quote_ident() -> None:
    assert quote_ident("kv_memories") == "kv_memories"
    assert quote_ident("kv 5") == "`kv 5`"
    assert quote_ident("a\\b`c") == "`a\\\\b\\`c`"


def test_info_is_read_the_same_way() -> None:
    v2_db, v3_db = (frames(g)["info_db"].results[0]["result"] for g in (2, 3))
    assert set(v2_db) < set(v3_db)  # 3.x adds buckets, modules, sequences
    # kv exists on 2.x only: the old natural-key upsert created it there, failed on 3.x.
    assert {t: d for t, d in v2_db["tables"].items() if t != "kv"} == v3_db["tables"]
    v2_table, v3_table = (frames(g)["info_table"].results[0]["result"] for g in (2, 3))
    assert v2_table["indexes"] == v3_table["indexes"]


# -- results ------------------------------------------------------------------

ALIGNED = [
    "transaction_commit",
    "transaction_cancel",
    "transaction_failed",
    "transaction_return",
    "transaction_nested_begin",
    "transaction_unterminated",
    "stray_commit",
    "statements_around_transaction",
    "let_return_error",
    "define_schema",
]


@pytest.mark.parametrize("case", ALIGNED)
def test_statement_results_give_3x_answers_the_2x_shape(case: str) -> None:
    v2, v3 = frames(2)[case], frames(3)[case]
    kinds = kinds_of(v3.sql)
    assert V2.statement_results(kinds, v2.results) == v2.results
    shaped = V3.statement_results(kinds, v3.results)
    assert shaped is not None
    assert [_outcome(r) for r in shaped] == [_outcome(r) for r in v2.results]
    assert all("type" in r for r in v3.results) and not any("type" in r for r in v2.results)


def _outcome(result: dict[str, object]) -> object:
    failure = failure_of(result)
    return ("OK", result["result"]) if failure is None else failure.kind


def test_control_statements_have_entries_on_3x_only() -> None:
    assert (V2.transaction_control_results, V3.transaction_control_results) == (False, True)
    commit = frames(3)["transaction_commit"]
    assert len(commit.results) == len(kinds_of(commit.sql)) == 4
    assert len(frames(2)["transaction_commit"].results) == 2


def test_block_return_cannot_be_aligned() -> None:
    frame: Frame = frames(3)["transaction_block_return"]
    assert V3.statement_results(kinds_of(frame.sql), frame.results) is None
    assert V3.statement_results(["SELECT"], []) is None
    assert V3.statement_results(["SELECT"], [{"status": "OK"}] * 2) is None
