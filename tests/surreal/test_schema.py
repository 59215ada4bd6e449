"""Schema translation and diffing, no database (definitions as 2.3.10 and 3.2.4 print them)."""

from __future__ import annotations

from syncd.config.schema import TablePolicy
from syncd.surreal.schema import (
    Definition,
    canonical,
    diff,
    from_info,
    removal_for,
    select,
    statement_for,
)

SEARCH_V2 = (
    "DEFINE INDEX ft ON vm FIELDS content SEARCH ANALYZER simple BM25(1.2,0.75) "
    "DOC_IDS_ORDER 100 DOC_LENGTHS_ORDER 100 POSTINGS_ORDER 100 TERMS_ORDER 100 "
    "DOC_IDS_CACHE 100 DOC_LENGTHS_CACHE 100 POSTINGS_CACHE 100 TERMS_CACHE 100 HIGHLIGHTS"
)
FULLTEXT_V3 = (
    "DEFINE INDEX ft ON vm FIELDS content FULLTEXT ANALYZER simple BM25(1.2,0.75) HIGHLIGHTS"
)
HNSW = (
    "DEFINE INDEX hnsw ON vm FIELDS embedding HNSW DIMENSION 4 DIST COSINE TYPE F32 "
    "EFC 150 M 12 M0 24 LM 0.40242960438184466f"
)
MTREE = (
    "DEFINE INDEX mt ON vm FIELDS embedding MTREE DIMENSION 4 DIST EUCLIDEAN TYPE F64 CAPACITY 40"
)

DB_INFO = {
    "analyzers": {"simple": "DEFINE ANALYZER simple TOKENIZERS BLANK,CLASS FILTERS LOWERCASE"},
    "functions": {
        "greet": "DEFINE FUNCTION fn::greet($n: string) { RETURN 'Hi ' + $n; } PERMISSIONS FULL",
        "unused": "DEFINE FUNCTION fn::unused() { RETURN 1; } PERMISSIONS FULL",
    },
    "params": {"limit": "DEFINE PARAM $limit VALUE 10 PERMISSIONS FULL"},
    "tables": {
        "vm": "DEFINE TABLE vm TYPE ANY SCHEMALESS CHANGEFEED 1w PERMISSIONS FULL",
        "private": "DEFINE TABLE private TYPE ANY SCHEMALESS PERMISSIONS NONE",
    },
    "users": {"u": "DEFINE USER u ON DATABASE PASSHASH '...' ROLES VIEWER"},
}
VM_INFO = {
    "fields": {
        "embedding": "DEFINE FIELD embedding ON vm TYPE array<float> PERMISSIONS FULL",
        "embedding[*]": "DEFINE FIELD embedding[*] ON vm TYPE float PERMISSIONS FULL",
        "hello": "DEFINE FIELD hello ON vm VALUE fn::greet(name) PERMISSIONS FULL",
        "at": "DEFINE FIELD at ON vm TYPE datetime VALUE time::now() ASSERT $value != NONE "
        "PERMISSIONS FULL",
    },
    "indexes": {"ft": SEARCH_V2, "hnsw": HNSW, "key": "DEFINE INDEX key ON vm FIELDS key UNIQUE"},
    "events": {"ev": "DEFINE EVENT ev ON vm WHEN $event = 'CREATE' THEN (CREATE log SET n = 1)"},
}


def policy(table: str) -> TablePolicy | None:
    return TablePolicy() if table == "vm" else None


def primary() -> dict:  # type: ignore[type-arg]
    return from_info(DB_INFO, {"vm": VM_INFO})


def index(text: str) -> Definition:
    return Definition("INDEX", text.split()[2], "vm", text)


# ---------------------------------------------------------------- translation


def test_search_becomes_fulltext_on_3x_without_the_2x_only_options() -> None:
    assert statement_for(index(SEARCH_V2), 3) == (
        "DEFINE INDEX OVERWRITE ft ON vm FIELDS content FULLTEXT ANALYZER simple "
        "BM25(1.2,0.75) HIGHLIGHTS CONCURRENTLY"
    )


def test_fulltext_becomes_search_on_2x() -> None:
    assert statement_for(index(FULLTEXT_V3), 2) == (
        "DEFINE INDEX OVERWRITE ft ON vm FIELDS content SEARCH ANALYZER simple "
        "BM25(1.2,0.75) HIGHLIGHTS CONCURRENTLY"
    )


def test_both_spellings_of_a_full_text_index_compare_equal() -> None:
    assert canonical(index(SEARCH_V2)) == canonical(index(FULLTEXT_V3))


def test_indexes_are_built_concurrently_and_overwrite() -> None:
    assert statement_for(index(HNSW), 3) == HNSW.replace("INDEX", "INDEX OVERWRITE") + (
        " CONCURRENTLY"
    )
    unique = index("DEFINE INDEX key ON vm FIELDS key UNIQUE")
    assert (
        statement_for(unique, 2)
        == "DEFINE INDEX OVERWRITE key ON vm FIELDS key UNIQUE CONCURRENTLY"
    )


def test_mtree_has_no_3x_form() -> None:
    assert statement_for(index(MTREE), 3) is None
    assert statement_for(index(MTREE), 2) == MTREE.replace("INDEX", "INDEX OVERWRITE") + (
        " CONCURRENTLY"
    )


def test_a_table_loses_its_changefeed_but_keeps_the_secondarys_own() -> None:
    table = Definition("TABLE", "vm", "vm", DB_INFO["tables"]["vm"])
    assert (
        statement_for(table, 3) == "DEFINE TABLE OVERWRITE vm TYPE ANY SCHEMALESS PERMISSIONS FULL"
    )
    own = "DEFINE TABLE vm TYPE ANY SCHEMALESS CHANGEFEED 3d INCLUDE ORIGINAL PERMISSIONS NONE"
    assert statement_for(table, 2, keep_changefeed=own) == (
        "DEFINE TABLE OVERWRITE vm TYPE ANY SCHEMALESS PERMISSIONS FULL "
        "CHANGEFEED 3d INCLUDE ORIGINAL"
    )


def test_a_field_loses_its_value_clause_and_is_spelled_per_generation() -> None:
    at = Definition("FIELD", "at", "vm", VM_INFO["fields"]["at"])
    assert statement_for(at, 3) == (
        "DEFINE FIELD OVERWRITE at ON vm TYPE datetime ASSERT $value != NONE PERMISSIONS FULL"
    )
    items = Definition("FIELD", "embedding[*]", "vm", VM_INFO["fields"]["embedding[*]"])
    assert items.key == ("FIELD", "vm", "embedding.*")
    assert (
        statement_for(items, 3)
        == "DEFINE FIELD OVERWRITE embedding.* ON vm TYPE float PERMISSIONS FULL"
    )
    assert (
        statement_for(items, 2)
        == "DEFINE FIELD OVERWRITE embedding[*] ON vm TYPE float PERMISSIONS FULL"
    )


def test_if_not_exists_becomes_overwrite() -> None:
    text = "DEFINE INDEX IF NOT EXISTS key ON vm FIELDS key UNIQUE"
    assert statement_for(index(text).__class__("INDEX", "key", "vm", text), 3) == (
        "DEFINE INDEX OVERWRITE key ON vm FIELDS key UNIQUE CONCURRENTLY"
    )


def test_keywords_inside_strings_are_left_alone() -> None:
    text = "DEFINE FIELD note ON vm TYPE string DEFAULT 'SEARCH CHANGEFEED VALUE' PERMISSIONS FULL"
    field = Definition("FIELD", "note", "vm", text)
    assert statement_for(field, 3) == text.replace("FIELD", "FIELD OVERWRITE", 1)


def test_function_bodies_compare_equal_across_generations() -> None:
    v2 = Definition(
        "FUNCTION", "g", "", "DEFINE FUNCTION fn::g($n: string) { RETURN $n; } PERMISSIONS FULL"
    )
    v3 = Definition(
        "FUNCTION", "g", "", "DEFINE FUNCTION fn::g($n: string) { RETURN $n } PERMISSIONS FULL"
    )
    a2 = Definition(
        "ANALYZER", "a", "", "DEFINE ANALYZER a TOKENIZERS BLANK FILTERS LOWERCASE,ASCII"
    )
    a3 = Definition(
        "ANALYZER", "a", "", "DEFINE ANALYZER a TOKENIZERS BLANK FILTERS LOWERCASE, ASCII"
    )
    assert canonical(v2) == canonical(v3)
    assert canonical(a2) == canonical(a3)


def test_removals_name_the_definition() -> None:
    assert removal_for(index(HNSW)) == "REMOVE INDEX hnsw ON vm"
    assert removal_for(Definition("FUNCTION", "greet", "", "")) == "REMOVE FUNCTION fn::greet"
    assert removal_for(Definition("PARAM", "limit", "", "")) == "REMOVE PARAM $limit"
    assert removal_for(Definition("TABLE", "vm", "vm", "")) is None  # the archive's records


# ---------------------------------------------------------------- selection


def test_events_users_and_unreferenced_definitions_are_not_mirrored() -> None:
    chosen = select(primary(), policy)
    kinds = sorted((k[0], k[2]) for k in chosen)
    assert kinds == [
        ("ANALYZER", "simple"),  # the full-text index uses it
        ("FIELD", "at"),
        ("FIELD", "embedding"),
        ("FIELD", "embedding.*"),
        ("FIELD", "hello"),
        ("FUNCTION", "greet"),  # the field hello calls it
        ("INDEX", "ft"),
        ("INDEX", "hnsw"),
        ("INDEX", "key"),
        ("TABLE", "vm"),
    ]


def test_a_table_may_opt_in_to_its_events_or_out_of_everything() -> None:
    chosen = select(primary(), lambda t: TablePolicy(events=True) if t == "vm" else None)
    assert ("EVENT", "vm", "ev") in chosen
    assert select(primary(), lambda t: TablePolicy(mirror=False)) == {}


# ---------------------------------------------------------------- diffing


def test_an_empty_secondary_gets_everything_in_dependency_order() -> None:
    changes = diff(select(primary(), policy), {}, 3, primary=primary(), policy=policy)
    assert [c.action for c in changes] == ["define"] * 10
    kinds = [c.definition.kind for c in changes]
    assert kinds == ["ANALYZER", "FUNCTION", *["FIELD"] * 4, "TABLE", *["INDEX"] * 3]


def test_a_secondary_of_the_other_generation_in_sync_needs_nothing() -> None:
    v3_vm = {
        **VM_INFO,
        "fields": {
            **{k: v for k, v in VM_INFO["fields"].items() if k != "embedding[*]"},
            "embedding.*": "DEFINE FIELD embedding.* ON vm TYPE float PERMISSIONS FULL",
            "at": "DEFINE FIELD at ON vm TYPE datetime ASSERT $value != NONE PERMISSIONS FULL",
        },
        "indexes": {**VM_INFO["indexes"], "ft": FULLTEXT_V3},
    }
    v3_db = {**DB_INFO, "tables": {"vm": "DEFINE TABLE vm TYPE ANY SCHEMALESS PERMISSIONS FULL"}}
    secondary = from_info(v3_db, {"vm": v3_vm})
    assert diff(select(primary(), policy), secondary, 3, primary=primary(), policy=policy) == []


def test_a_changed_definition_is_redefined_and_a_removed_one_archived() -> None:
    secondary = from_info(DB_INFO, {"vm": VM_INFO})
    current = from_info(
        DB_INFO,
        {"vm": {**VM_INFO, "indexes": {"key": "DEFINE INDEX key ON vm FIELDS key, user UNIQUE"}}},
    )
    changes = diff(select(current, policy), secondary, 2, primary=current, policy=policy)
    actions = {(c.action, c.definition.name) for c in changes}
    # The event is not mirrored, so the secondary's copy (if any) is nobody's business.
    assert actions == {("redefine", "key"), ("archived", "ft"), ("archived", "hnsw")}
    removing = diff(
        select(current, policy), secondary, 2, primary=current, policy=policy, removals=True
    )
    assert sorted(c.statement or "" for c in removing if c.action == "remove") == [
        "REMOVE INDEX ft ON vm",
        "REMOVE INDEX hnsw ON vm",
    ]


def test_a_pair_applied_and_read_back_is_not_applied_again() -> None:
    wanted = {index(HNSW).key: index(HNSW)}
    printed = index(HNSW + " EXTRA_DEFAULT 1")
    assert [c.action for c in diff(wanted, {printed.key: printed}, 3)] == ["redefine"]
    settled = {printed.key: (HNSW, printed.text)}
    assert diff(wanted, {printed.key: printed}, 3, settled=settled) == []


def test_an_untranslatable_definition_is_reported_unsupported() -> None:
    wanted = {index(MTREE).key: index(MTREE)}
    (change,) = diff(wanted, {}, 3)
    assert change.action == "unsupported" and not change.applies
