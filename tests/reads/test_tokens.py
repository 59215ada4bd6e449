"""SurrealQL tokens: kinds, nesting depth, strings and comments that hide keywords, splits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.reads.tokens import Token, split_statements, split_tokens, tokenize


def kinds(sql: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(sql)]


def test_each_kind_of_token() -> None:
    assert kinds("SELECT * FROM t:1 WHERE n >= $min AND s = 'x' LIMIT 10") == [
        ("word", "SELECT"), ("punct", "*"), ("word", "FROM"), ("word", "t"), ("punct", ":"),
        ("number", "1"), ("word", "WHERE"), ("word", "n"), ("punct", ">"), ("punct", "="),
        ("param", "$min"), ("word", "AND"), ("word", "s"), ("punct", "="), ("string", "'x'"),
        ("word", "LIMIT"), ("number", "10"),
    ]  # fmt: skip


def test_positions_cover_the_text() -> None:
    sql = 'CREATE  t SET a = "q"'
    for tok in tokenize(sql):
        assert sql[tok.start : tok.end] == tok.text


def test_word_is_upper_case_only_for_words() -> None:
    select, star = tokenize("select *")
    assert select.word == "SELECT"
    assert star.word == ""
    assert Token("string", "'select'", 0, 8, 0).word == ""


@pytest.mark.parametrize(
    ("sql", "texts"),
    [
        ("1ms 10dec 1e3 1.5f", ["1ms", "10dec", "1e3", "1.5f"]),
        ("1..5", ["1", ".", ".", "5"]),  # a range splits
        ("a::b", ["a", "::", "b"]),
        ("⟨a b⟩ `c d`", ["⟨a b⟩", "`c d`"]),
        ("'it\\'s' \"x\"", ["'it\\'s'", '"x"']),
        ("'never closed", ["'never closed"]),
    ],
)
def test_atoms_and_quotes(sql: str, texts: list[str]) -> None:
    assert [t.text for t in tokenize(sql)] == texts


def test_quoted_identifiers_are_idents_and_strings_are_strings() -> None:
    assert [t.kind for t in tokenize("⟨a⟩ `b` 'c' \"d\"")] == ["ident", "ident", "string", "string"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 -- CREATE t\n",
        "SELECT 1 // CREATE t",
        "SELECT 1 # CREATE t",
        "SELECT 1 /* CREATE t */",
        "SELECT 1 /* never closed CREATE",
    ],
)
def test_comments_are_dropped(sql: str) -> None:
    assert [t.text for t in tokenize(sql)] == ["SELECT", "1"]


def test_depth_counts_nesting_and_a_stray_closer_stays_at_zero() -> None:
    toks = tokenize("a (b [c {d}]) ) e")
    assert [(t.text, t.depth) for t in toks] == [
        ("a", 0), ("(", 0), ("b", 1), ("[", 1), ("c", 2), ("{", 2), ("d", 3), ("}", 2),
        ("]", 1), (")", 0), (")", 0), ("e", 0),
    ]  # fmt: skip


def test_statements_split_on_top_level_semicolons_only() -> None:
    sql = "CREATE t SET s = 'a;b'; FOR $i IN [1] { CREATE u; };; -- c;\n SELECT * FROM t;"
    assert split_statements(sql) == [
        "CREATE t SET s = 'a;b'",
        "FOR $i IN [1] { CREATE u; }",
        "SELECT * FROM t",
    ]
    assert [len(g) for g in split_tokens(sql)] == [6, 11, 4]


def test_nothing_but_blanks_and_comments_is_no_statement() -> None:
    assert split_statements("  ; -- x\n ;/* y */") == []
    assert split_tokens("") == []


@given(st.text(max_size=200))
def test_any_text_tokenizes_within_its_bounds(sql: str) -> None:
    last = 0
    for tok in tokenize(sql):
        assert last <= tok.start < tok.end <= len(sql)
        assert tok.depth >= 0
        last = tok.end
    for statement in split_statements(sql):
        assert statement and statement in sql
