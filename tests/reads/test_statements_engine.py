"""``result_index`` against the real engine: where each statement's entry lands in ``query_raw``.

Each case lists, per statement, what its entry should hold: ``NO`` for a
statement that yields no entry, ``ERR`` for an error entry, ``ANY`` for an
OK entry of any value, otherwise the entry's exact OK value. Each case runs
on a fresh in-memory engine.
"""

from __future__ import annotations

from typing import Any

import pytest
from surrealdb import AsyncSurreal, RecordID

from syncd.reads.statements import parse, result_index

pytestmark = pytest.mark.integration

NO, ERR, ANY = object(), object(), object()
A1, A2 = [{"id": RecordID("a", 1)}], [{"id": RecordID("a", 2)}]

CASES: list[tuple[str, list[Any]]] = [
    ("BEGIN; CREATE a:1; COMMIT; SELECT * FROM a", [NO, A1, NO, A1]),
    (
        "BEGIN TRANSACTION; CREATE a:1; UPDATE a:1 SET x = 1 RETURN NONE; COMMIT TRANSACTION;",
        [NO, A1, [], NO],
    ),
    ("BEGIN; COMMIT; RETURN 1", [NO, NO, 1]),
    (
        "LET $x = 1; IF $x = 1 { CREATE a:1 } ELSE { CREATE a:2 }; RETURN $x; -- trailing comment",
        [None, None, 1],
    ),
    (
        "IF true { CREATE a:1; CREATE a:2; }; FOR $i IN [1, 2] { CREATE b CONTENT {n: $i}; };"
        " RETURN 'done' /* trailing; comment */",
        [None, None, "done"],
    ),
    ("BEGIN; CREATE a:1; CANCEL; SELECT * FROM a", [NO, ERR, NO, []]),
    ("BEGIN; CREATE a:1; THROW 'x'; COMMIT; SELECT * FROM a", [NO, ERR, ERR, NO, []]),
    # A top-level RETURN collapses its transaction into one entry and ends it.
    ("BEGIN; CREATE a:1; RETURN 5; CREATE a:2; COMMIT; SELECT * FROM a", [NO, NO, 5, NO, NO, A1]),
    ("BEGIN; LET $v = 1; RETURN $v; COMMIT; RETURN 2", [NO, NO, 1, NO, 2]),
    # ... but not a RETURN in parentheses, nor one after a nested BEGIN failed it.
    ("BEGIN; CREATE a:1; (RETURN 5); COMMIT", [NO, A1, 5, NO]),
    ("BEGIN; BEGIN; RETURN 1; COMMIT", [NO, ERR, ERR, NO]),
    ("COMMIT; RETURN 1", [ERR, 1]),
    # Never committed: every statement fails, unless a RETURN collapses them.
    ("SELECT * FROM a; BEGIN; CREATE a:1; CREATE a:2", [[], NO, ERR, ERR]),
    ("BEGIN; CREATE a:1; RETURN 1; CREATE a:2", [NO, NO, ERR, NO]),
    ("BEGIN; CREATE a:1; COMMIT; BEGIN; CREATE a:2; COMMIT", [NO, A1, NO, NO, A2, NO]),
    ("USE NS n DB d; DEFINE TABLE t; INFO FOR DB", [None, None, ANY]),
    ("SELECT * FROM a WHERE s = ';' ; RETURN '-- not a comment'", [[], "-- not a comment"]),
]


def _matches(entry: dict[str, Any], expected: Any) -> bool:
    """Whether one ``query_raw`` result entry is what the case expects."""
    if expected is ERR:
        return bool(entry["status"] == "ERR")
    return entry["status"] == "OK" and (expected is ANY or entry["result"] == expected)


@pytest.mark.parametrize(("sql", "expected"), CASES)
async def test_result_index_matches_engine(sql: str, expected: list[Any]) -> None:
    statements = parse(sql)
    assert len(statements) == len(expected), [s.text for s in statements]
    db = AsyncSurreal("mem://")
    await db.connect()
    try:
        await db.use("n", "d")
        result = (await db.query_raw(sql))["result"]
    finally:
        await db.close()
    index = result_index(statements)
    assert [i is None for i in index] == [e is NO for e in expected]
    assert len(result) == sum(i is not None for i in index)
    for statement, i, want in zip(statements, index, expected, strict=True):
        if i is not None:
            assert _matches(result[i], want), (statement.text, result[i])
