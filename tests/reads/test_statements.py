"""SurrealQL splitting and statement facts, on a corpus of awkward queries."""

from __future__ import annotations

import pytest

from syncd.reads.merge import OrderTerm
from syncd.reads.statements import (
    Statement,
    is_read_only,
    parse,
    result_index,
)
from syncd.reads.tokens import split_statements, tokenize


def one(sql: str) -> Statement:
    """The single statement in ``sql``."""
    statements = parse(sql)
    assert len(statements) == 1, statements
    return statements[0]


# --- splitting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM a; SELECT * FROM b", ["SELECT * FROM a", "SELECT * FROM b"]),
        ("  SELECT * FROM a ;;  ; ", ["SELECT * FROM a"]),
        ("", []),
        (" ; -- nothing here\n ; /* nor; here */", []),
        ("SELECT * FROM a WHERE s = ';' ; RETURN 1", ["SELECT * FROM a WHERE s = ';'", "RETURN 1"]),
        ('RETURN "a;b\\";c"; RETURN 2', ['RETURN "a;b\\";c"', "RETURN 2"]),
        ("RETURN 'it\\'s;'; RETURN 2", ["RETURN 'it\\'s;'", "RETURN 2"]),
        ("RETURN r'a:1;'; RETURN d'2024-01-01'", ["RETURN r'a:1;'", "RETURN d'2024-01-01'"]),
        ("SELECT * FROM `we;ird`; RETURN 1", ["SELECT * FROM `we;ird`", "RETURN 1"]),
        ("SELECT * FROM ⟨a;b⟩; RETURN 1", ["SELECT * FROM ⟨a;b⟩", "RETURN 1"]),
        ("SELECT * FROM a:⟨x\\⟩;y⟩; RETURN 1", ["SELECT * FROM a:⟨x\\⟩;y⟩", "RETURN 1"]),
        ("SELECT * FROM a -- x; y\n; RETURN 1", ["SELECT * FROM a", "RETURN 1"]),
        ("SELECT * FROM a // x; y\n; RETURN 1", ["SELECT * FROM a", "RETURN 1"]),
        ("SELECT * FROM a # x; y\n; RETURN 1", ["SELECT * FROM a", "RETURN 1"]),
        ("SELECT /* ; */ * FROM a; RETURN 1", ["SELECT /* ; */ * FROM a", "RETURN 1"]),
        ("-- lead\nSELECT * FROM a; -- trail", ["SELECT * FROM a"]),
        (
            "FOR $x IN $y { CREATE a SET v = $x; UPDATE b SET w = 1; }; RETURN 1",
            ["FOR $x IN $y { CREATE a SET v = $x; UPDATE b SET w = 1; }", "RETURN 1"],
        ),
        (
            "IF $a { CREATE a; } ELSE IF $b { DELETE b; } ELSE { RETURN [1, {x: (2)}]; }; RETURN 3",
            [
                "IF $a { CREATE a; } ELSE IF $b { DELETE b; } ELSE { RETURN [1, {x: (2)}]; }",
                "RETURN 3",
            ],
        ),
        (
            "BEGIN TRANSACTION; CREATE a:1; UPDATE a:1 SET x = 1; COMMIT TRANSACTION;",
            ["BEGIN TRANSACTION", "CREATE a:1", "UPDATE a:1 SET x = 1", "COMMIT TRANSACTION"],
        ),
        (
            "DEFINE FUNCTION fn::f($a: int) { LET $b = $a; RETURN $b; }; RETURN fn::f(1)",
            ["DEFINE FUNCTION fn::f($a: int) { LET $b = $a; RETURN $b; }", "RETURN fn::f(1)"],
        ),
        ("LET $v = (SELECT * FROM a; ); RETURN $v", ["LET $v = (SELECT * FROM a; )", "RETURN $v"]),
    ],
)
def test_split_statements(sql: str, expected: list[str]) -> None:
    assert split_statements(sql) == expected


def test_unterminated_string_does_not_raise() -> None:
    assert split_statements("SELECT * FROM a WHERE x = 'oops; RETURN 1") == [
        "SELECT * FROM a WHERE x = 'oops; RETURN 1"
    ]


def test_stray_closer_does_not_swallow_the_rest() -> None:
    assert split_statements("RETURN 1); RETURN 2") == ["RETURN 1)", "RETURN 2"]


def test_tokens_know_their_depth() -> None:
    toks = tokenize("IF x { CREATE a }")
    assert [(t.text, t.depth) for t in toks] == [
        ("IF", 0),
        ("x", 0),
        ("{", 0),
        ("CREATE", 1),
        ("a", 1),
        ("}", 0),
    ]


def test_numbers_durations_and_ranges() -> None:
    assert [t.text for t in tokenize("1.5 10ms 1e3 a:1..5")] == [
        "1.5",
        "10ms",
        "1e3",
        "a",
        ":",
        "1",
        ".",
        ".",
        "5",
    ]


# --- kinds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT * FROM a", "SELECT"),
        ("select * from a", "SELECT"),
        ("CREATE a", "CREATE"),
        ("upsert a:1 SET x = 1", "UPSERT"),
        ("UPDATE a SET x = 1", "UPDATE"),
        ("INSERT INTO a {x: 1}", "INSERT"),
        ("RELATE a:1->knows->b:2", "RELATE"),
        ("DELETE a:1", "DELETE"),
        ("LET $x = 1", "LET"),
        ("RETURN 1", "RETURN"),
        ("BEGIN", "BEGIN"),
        ("begin transaction", "BEGIN"),
        ("COMMIT TRANSACTION", "COMMIT"),
        ("CANCEL", "CANCEL"),
        ("DEFINE TABLE a", "DEFINE"),
        ("IF true { RETURN 1 }", "IF"),
        ("FOR $x IN [1] { CREATE a }", "FOR"),
        ("USE NS n DB d", "USE"),
        ("INFO FOR DB", "INFO"),
        ("LIVE SELECT * FROM a", "LIVE"),
        ("KILL u'0190b1f4-0000-7000-8000-000000000000'", "KILL"),
        ("REMOVE TABLE a", "REMOVE"),
        ("ALTER TABLE a COMMENT 'x'", "ALTER"),
        ("SHOW CHANGES FOR TABLE a SINCE 1", "SHOW"),
        ("SLEEP 1s", "SLEEP"),
        ("THROW 'no'", "THROW"),
        ("BREAK", "BREAK"),
        ("CONTINUE", "CONTINUE"),
        ("OPTION IMPORT", "OPTION"),
        ("REBUILD INDEX i ON a", "REBUILD"),
        ("ACCESS a GRANT FOR USER u", "ACCESS"),
        ("(SELECT * FROM a)", "OTHER"),
        ("$x", "OTHER"),
        ("fn::f()", "OTHER"),
        ("'just a string'", "OTHER"),
        ("-- comment\nselect * from a", "SELECT"),
    ],
)
def test_kind(sql: str, kind: str) -> None:
    assert one(sql).kind == kind


def test_text_is_trimmed_statement() -> None:
    assert one("  /* c */ CREATE a:1 SET x = 1 ; ").text == "CREATE a:1 SET x = 1"


# --- writes and RETURN clauses -------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "returns", "captures"),
    [
        ("CREATE a:1", None, True),
        ("CREATE a:1 RETURN NONE", "NONE", False),
        ("CREATE a:1 return none", "NONE", False),
        ("UPDATE a SET x = 1 RETURN BEFORE", "BEFORE", False),
        ("UPDATE a SET x = 1 RETURN AFTER", "AFTER", True),
        ("UPSERT a:1 SET x = 1 RETURN DIFF", "DIFF", False),
        ("UPSERT a:1 SET x = 1 RETURN id, name", "FIELDS", False),
        ("UPDATE a SET x = 1 RETURN VALUE $after", "VALUE", False),
        ("UPDATE a SET x = 1 RETURN AFTER TIMEOUT 5s PARALLEL", "AFTER", True),
        ("INSERT INTO a [{x: 1}, {x: 2}]", None, True),
        ("INSERT INTO a {id: 1, v: 1} ON DUPLICATE KEY UPDATE v += 1", None, True),
        ("INSERT INTO a {id: 1} ON DUPLICATE KEY UPDATE v += 1 RETURN NONE", "NONE", False),
        ("INSERT RELATION INTO likes {in: a:1, out: b:2}", None, True),
        ("RELATE a:1->likes->b:2", None, True),
        ("RELATE a:1->likes->b:2 SET w = 1 RETURN AFTER", "AFTER", True),
        ("RELATE a:1->likes->b:2 RETURN NONE", "NONE", False),
        ("DELETE a:1", None, False),
        ("DELETE a:1 RETURN BEFORE", "BEFORE", False),
        # Subquery and object RETURNs are not the statement's clause.
        ("CREATE a SET v = (SELECT * FROM b WHERE x = (RETURN 1))", None, True),
        ("CREATE a CONTENT {return: 1}", None, True),
        ("UPDATE a SET return = 1", None, True),
        ("UPDATE a SET return += 1 RETURN NONE", "NONE", False),
    ],
)
def test_write_return_clause(sql: str, returns: str | None, captures: bool) -> None:
    statement = one(sql)
    assert statement.is_write
    assert statement.returns == returns
    assert statement.captures_records is captures


@pytest.mark.parametrize(
    ("sql", "write"),
    [
        ("FOR $x IN [1, 2] { CREATE a SET v = $x; }", True),
        ("FOR $x IN [1, 2] { LET $y = $x; }", False),
        ("IF $c { UPDATE a SET x = 1 } ELSE { RETURN 0 }", True),
        ("IF $c { RETURN 1 } ELSE { RETURN 0 }", False),
        ("LET $x = (CREATE a)", True),
        ("LET $x = (SELECT * FROM a)", False),
        ("RETURN (DELETE a RETURN BEFORE)", True),
        ("SELECT * FROM (UPDATE a SET x = 1)", True),
        ("SELECT * FROM a WHERE kind = 'DELETE' AND note = \"update\"", False),
        ("SELECT * FROM a WHERE status.update = 1 AND array::insert(x, 1, 0)", False),
        ("SELECT * FROM update:1", False),
        ("SELECT {create: 1} FROM a", False),
        ("SELECT fn::maybe_writes() FROM a", True),
        ("DEFINE EVENT e ON a WHEN true THEN (CREATE log SET at = time::now())", False),
        ("DEFINE TABLE a PERMISSIONS FOR create, update, delete NONE", False),
        ("LIVE SELECT * FROM a", False),
        ("BEGIN", False),
    ],
)
def test_is_write(sql: str, write: bool) -> None:
    assert one(sql).is_write is write
    assert not one(sql).captures_records


# --- SELECT clauses ----------------------------------------------------------


def test_select_order_limit_start() -> None:
    statement = one("SELECT * FROM t ORDER BY a DESC, b LIMIT 10 START 5")
    assert statement.order_by == (OrderTerm("a", True), OrderTerm("b", False))
    assert statement.order_exact
    assert (statement.limit, statement.start) == (10, 5)
    assert (statement.limit_param, statement.start_param) == (None, None)
    assert statement.from_tables == ("t",)


def test_select_lowercase_and_connectors() -> None:
    statement = one("select * from t order by a asc, b.c descending limit by 3 start at 1")
    assert statement.order_by == (OrderTerm("a"), OrderTerm("b.c", True))
    assert (statement.limit, statement.start) == (3, 1)


def test_order_by_rand_is_no_term_but_exact() -> None:
    statement = one("SELECT * FROM t ORDER BY rand() LIMIT 5")
    assert statement.order_by == ()
    assert statement.order_exact
    assert statement.limit == 5


def test_order_by_expression_is_not_exact() -> None:
    statement = one("SELECT * FROM t ORDER BY a, math::abs(b) DESC, c")
    assert statement.order_by == (OrderTerm("a"),)
    assert not statement.order_exact


def test_order_by_collate_is_approximate() -> None:
    statement = one("SELECT * FROM t ORDER BY name COLLATE DESC, n NUMERIC ASC")
    assert statement.order_by == (OrderTerm("name", True), OrderTerm("n"))
    assert not statement.order_exact


def test_order_by_quoted_identifier() -> None:
    assert one("SELECT * FROM t ORDER BY `my field` DESC").order_by == (
        OrderTerm("my field", True),
    )


def test_limit_and_start_params() -> None:
    statement = one("SELECT * FROM t LIMIT $n START $s")
    assert (statement.limit, statement.limit_param) == (None, "$n")
    assert (statement.start, statement.start_param) == (None, "$s")


def test_limit_expression_keeps_raw_text() -> None:
    statement = one("SELECT * FROM t LIMIT ($n + 1)")
    assert (statement.limit, statement.limit_param) == (None, "($n + 1)")


def test_keyword_named_fields_are_fields() -> None:
    statement = one("SELECT start, limit FROM t WHERE x = limit ORDER BY start DESC, limit LIMIT 3")
    assert statement.order_by == (OrderTerm("start", True), OrderTerm("limit"))
    assert statement.limit == 3
    assert statement.from_tables == ("t",)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a.start AS limit FROM t WHERE x AND start ORDER BY a.limit DESC LIMIT 3",
        "SELECT * FROM t WHERE x = 1 OR limit CONTAINS start ORDER BY a.limit DESC LIMIT 3",
        "SELECT * FROM t WHERE x IN [1, 2] AND y != NONE ORDER BY a.limit DESC LIMIT 3",
    ],
)
def test_keywords_after_operators_are_operands(sql: str) -> None:
    statement = one(sql)
    assert statement.order_by == (OrderTerm("a.limit", True),)
    assert statement.limit == 3
    assert statement.from_tables == ("t",)


def test_open_range_then_clause() -> None:
    statement = one("SELECT * FROM t:1.. LIMIT 5")
    assert (statement.from_tables, statement.limit) == (("t",), 5)


def test_subquery_clauses_do_not_count() -> None:
    statement = one("SELECT *, (SELECT * FROM u ORDER BY z LIMIT 1) AS top FROM t")
    assert statement.order_by == ()
    assert statement.limit is None
    assert statement.from_tables == ("t",)
    assert not statement.group_or_split


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("SELECT * FROM a, b", ("a", "b")),
        ("SELECT * FROM ONLY x:1", ("x",)),
        ("SELECT * FROM x:1..5, y:[1, 'a'], z:{k: 1}", ("x", "y", "z")),
        ("SELECT * FROM type::table($t)", ()),
        ("SELECT * FROM type::thing('a', 1)", ()),
        ("SELECT * FROM $t", ()),
        ("SELECT * FROM (SELECT * FROM a)", ()),
        ("SELECT * FROM a:1->likes->b", ()),
        ("SELECT * FROM a, $t, type::table('c')", ("a",)),
        ("SELECT * FROM ⟨odd name⟩, `x-y`:1", ("odd name", "x-y")),
        ("SELECT * FROM a WITH INDEX idx WHERE x = 1", ("a",)),
        ("SELECT * FROM a WITH NOINDEX", ("a",)),
        ("SELECT 1 + 1 AS two", ()),
    ],
)
def test_from_tables(sql: str, tables: tuple[str, ...]) -> None:
    assert one(sql).from_tables == tables


def test_only_and_value_shapes() -> None:
    assert one("SELECT * FROM ONLY a:1").only
    assert not one("SELECT * FROM a:1").only
    assert one("SELECT VALUE name FROM a").value
    assert not one("SELECT name FROM a").value


@pytest.mark.parametrize(
    ("sql", "grouped"),
    [
        ("SELECT count() FROM a GROUP ALL", True),
        ("SELECT x, count() AS n FROM a GROUP BY x", True),
        ("SELECT count() FROM a", True),
        ("SELECT math::sum(v) AS s FROM a", True),
        ("SELECT array::group(tags) AS t FROM a", True),
        ("SELECT * FROM a SPLIT tags", True),
        ("SELECT * FROM a SPLIT ON tags", True),
        ("SELECT * FROM a", False),
        ("SELECT array::len(tags) FROM a", False),
        ("SELECT * FROM a WHERE count(tags) > 1", False),
    ],
)
def test_group_or_split(sql: str, grouped: bool) -> None:
    assert one(sql).group_or_split is grouped


def test_fetch_and_explain() -> None:
    statement = one("SELECT * FROM a FETCH b, c")
    assert statement.fetch and not statement.explain
    assert one("SELECT * FROM a WHERE x = 1 EXPLAIN FULL").explain
    assert not one("SELECT * FROM a WHERE fetch = 1").fetch


def test_non_select_has_no_select_facts() -> None:
    statement = one("DELETE a WHERE x = 1 RETURN BEFORE")
    assert statement.order_by == ()
    assert statement.from_tables == ()
    assert statement.limit is None


# --- read-only ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "read_only"),
    [
        ("SELECT * FROM a", True),
        ("SELECT * FROM a; SELECT * FROM b ORDER BY x", True),
        ("", False),
        ("-- only a comment", False),
        ("SELECT * FROM a; CREATE b", False),
        ("LET $x = (SELECT * FROM a); SELECT * FROM $x", False),
        ("RETURN 1", False),
        ("SELECT * FROM (DELETE a RETURN BEFORE)", False),
        ("SELECT fn::f() FROM a", False),
        ("LIVE SELECT * FROM a", False),
        ("INFO FOR DB", False),
    ],
)
def test_is_read_only(sql: str, read_only: bool) -> None:
    assert is_read_only(parse(sql)) is read_only


# --- query_raw result alignment (facts checked in test_statements_engine) ---------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM a; CREATE a:1", [0, 1]),
        ("BEGIN; CREATE a:1; COMMIT; SELECT * FROM a", [None, 0, None, 1]),
        ("BEGIN TRANSACTION; CREATE a:1; CANCEL TRANSACTION; RETURN 1", [None, 0, None, 1]),
        ("LET $x = 1; IF $x { CREATE a } ; RETURN $x", [0, 1, 2]),
        (
            "BEGIN; CREATE a:1; RETURN 5; CREATE a:2; COMMIT; RETURN 7",
            [None, None, 0, None, None, 1],
        ),
        ("BEGIN; CREATE a:1; (RETURN 5); COMMIT", [None, 0, 1, None]),
        ("BEGIN; BEGIN; RETURN 1; COMMIT", [None, 0, 1, None]),
        ("SELECT * FROM a; BEGIN; CREATE a:1; CREATE a:2", [0, None, 1, 2]),
        ("BEGIN; CREATE a:1; RETURN 1; CREATE a:2", [None, None, 0, None]),
        ("COMMIT; SELECT * FROM a", [0, 1]),
        ("BEGIN; COMMIT", [None, None]),
        ("BEGIN; CREATE a:1; COMMIT; BEGIN; CREATE a:2; COMMIT", [None, 0, None, None, 1, None]),
    ],
)
def test_result_index(sql: str, expected: list[int | None]) -> None:
    assert result_index(parse(sql)) == expected
