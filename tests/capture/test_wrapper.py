"""The wrapped connection: which SDK calls capture what, and where reads go.

A real primary (the ``primary`` fixture: both engine generations); the
pipeline is a recording :class:`~syncd.pipeline.intake.Intake`, and merged
reads a recording stand-in, so nothing here needs a secondary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import pytest
from surrealdb import RecordID

from syncd.capture.wrapper import ReplicatedConnection
from syncd.keys import KeyRule
from syncd.metrics import Metrics
from syncd.reads.statements import Statement
from syncd.sink.operation import Operation
from syncd.surreal.codec import Datetime
from syncd.surreal.sdkvalues import from_sdk

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class Recorded:
    """An Intake that keeps what it is handed."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.keys = KeyRule()
        self.captures: list[tuple[str, list[dict[str, Any]]]] = []
        self.uncaptured: list[str] = []

    def capture(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        source: str = "wrapper",
        copy: Callable[[Any], Any] = from_sdk,
    ) -> int:
        copied = [dict(copy(row)) for row in rows]
        self.captures.append((source, copied))
        return len(copied)

    def enqueue(self, ops: Iterable[Operation]) -> None:
        raise AssertionError("the wrapper only captures")

    async def flush(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        return None

    def room(self) -> int:
        return 1000

    def count_uncaptured(self, reason: str) -> None:
        self.uncaptured.append(reason)

    def ids(self) -> list[str]:
        return [str(row["id"]) for _, rows in self.captures for row in rows]


class Reads:
    """Merged reads as the wrapper sees them: records what is routed to it."""

    def __init__(self, active: bool = True) -> None:
        self.active = active
        self.selects: list[tuple[Any, ...]] = []
        self.queries: list[str] = []
        self.counted: list[str] = []

    async def select(self, primary_call: Awaitable[Any], args: tuple[Any, ...]) -> Any:
        self.selects.append(args)
        return await primary_call

    async def query_raw(
        self,
        primary: Any,
        query: str,
        vars: dict[str, Any] | None,
        statements: list[Statement],
    ) -> Any:
        self.queries.append(query)
        return await primary.query_raw(query, vars)

    def count(self, outcome: str, secondary: str | None = None) -> None:
        self.counted.append(outcome)


def wrap(primary: Any, reads: Reads | None = None) -> tuple[ReplicatedConnection, Recorded]:
    intake = Recorded()
    return ReplicatedConnection(primary, intake, reads), intake  # type: ignore[arg-type]


# -- the SDK's write methods ------------------------------------------------


async def test_each_write_method_captures_the_records_it_wrote(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.create(RecordID("w", "c"), {"n": 1})
    await db.upsert(RecordID("w", "u"), {"n": 2})
    await db.update(RecordID("w", "u"), {"n": 3})
    await db.merge(RecordID("w", "c"), {"extra": True})
    await db.patch(RecordID("w", "c"), [{"op": "replace", "path": "/n", "value": 9}])
    await db.insert("w", [{"id": RecordID("w", "i1"), "n": 4}, {"id": RecordID("w", "i2")}])
    assert intake.ids() == ["w:c", "w:u", "w:u", "w:c", "w:c", "w:i1", "w:i2"]
    assert {source for source, _ in intake.captures} == {"wrapper"}
    rows = [row for _, rows in intake.captures for row in rows]
    assert rows[1]["n"] == 2 and rows[2]["n"] == 3
    assert rows[3] == {"id": rows[3]["id"], "n": 1, "extra": True}
    assert rows[4]["n"] == 9
    assert intake.uncaptured == []


async def test_insert_relation_captures_the_edge(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.create(RecordID("person", "a"), {})
    await db.create(RecordID("person", "b"), {})
    await db.insert_relation(
        "knows",
        {
            "id": RecordID("knows", "ab"),
            "in": RecordID("person", "a"),
            "out": RecordID("person", "b"),
        },
    )
    [edge] = intake.captures[-1][1]
    assert str(edge["id"]) == "knows:ab"
    assert (str(edge["in"]), str(edge["out"])) == ("person:a", "person:b")


async def test_delete_goes_to_the_primary_only(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.create(RecordID("w", "gone"), {"n": 1})
    intake.captures.clear()
    await db.delete(RecordID("w", "gone"))
    assert intake.captures == []
    assert await primary.select(RecordID("w", "gone")) in (None, [])


async def test_a_write_the_primary_refuses_is_not_captured(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.create(RecordID("w", "once"), {"n": 1})
    intake.captures.clear()
    with pytest.raises(Exception):  # noqa: B017 - the SDK's own error, whatever its class
        await db.create(RecordID("w", "once"), {"n": 2})
    assert intake.captures == []
    [row] = await db.query("SELECT * FROM w:once")
    assert row["n"] == 1


async def test_captured_values_are_the_answers_exact_ones(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.query("CREATE w:t SET at = d'2026-11-02T10:00:05.123456789Z', none = NULL")
    [(_, [row])] = intake.captures
    assert row["at"] == Datetime.from_iso("2026-11-02T10:00:05.123456789Z")
    assert "none" in row and row["none"] is None


# -- query ------------------------------------------------------------------


async def test_query_captures_what_its_write_statements_return(primary: Any) -> None:
    db, intake = wrap(primary)
    result = await db.query(
        "CREATE w:1 SET n = 1; SELECT * FROM w; UPSERT w:2 SET n = 2; "
        "INSERT INTO w { id: w:3, n: 3 }; UPDATE w:2 SET n = 20 RETURN AFTER"
    )
    assert str(result[0]["id"]) == "w:1"  # the SDK's answer: the first statement's
    assert intake.ids()[:4] == ["w:1", "w:2", "w:3", "w:2"]
    assert intake.uncaptured == []


async def test_a_record_written_twice_in_flight_is_read_back_last(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.query("CREATE w:1 SET n = 1; UPDATE w:1 SET n = 10")
    # the second capture of w:1 came while the write was in flight: the
    # primary's current state is read back and captured after both
    sources = [source for source, _ in intake.captures]
    assert sources == ["wrapper", "wrapper", "readback"]
    assert intake.ids() == ["w:1", "w:1", "w:1"]
    assert intake.captures[-1][1][0]["n"] == 10


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("CREATE w:x SET n = 1 RETURN NONE", "return_none"),
        ("CREATE w:x SET n = 1 RETURN DIFF", "return_diff"),
        ("CREATE w:x SET n = 1 RETURN BEFORE", "return_before"),
        ("CREATE w:x SET n = 1 RETURN n", "return_fields"),
        ("RELATE w:a->likes->w:b RETURN NONE", "return_none"),
        ("FOR $i IN [1, 2] { CREATE w SET n = $i; }", "return_for"),
        ("IF true { CREATE w:x SET n = 1 }", "return_if"),
        ("LET $x = (CREATE w:x SET n = 1)", "return_let"),
    ],
)
async def test_writes_that_return_no_records_are_counted_not_captured(
    primary: Any, query: str, reason: str
) -> None:
    db, intake = wrap(primary)
    await db.query_raw(query)
    assert intake.captures == []
    assert intake.uncaptured == [reason]


async def test_a_delete_in_a_query_is_neither_captured_nor_counted(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.query("CREATE w:d SET n = 1")
    intake.captures.clear()
    await db.query("DELETE w:d")
    assert intake.captures == [] and intake.uncaptured == []


async def test_a_failed_statement_captures_nothing_of_its_own(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.query("CREATE w:dup SET n = 1")
    intake.captures.clear()
    await db.query_raw("CREATE w:dup SET n = 2; CREATE w:other SET n = 3")
    assert intake.ids() == ["w:other"]


async def test_a_query_the_primary_refuses_raises_and_captures_nothing(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.query("CREATE w:dup SET n = 1")
    intake.captures.clear()
    with pytest.raises(Exception):  # noqa: B017 - the SDK's own error, as it raises it
        await db.query("CREATE w:dup SET n = 2")
    assert intake.captures == [] and intake.uncaptured == []


async def test_a_transaction_is_captured_on_either_generation(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.query_raw("BEGIN; CREATE w:t1 SET n = 1; CREATE w:t2 SET n = 2; COMMIT")
    assert intake.ids() == ["w:t1", "w:t2"]
    assert intake.uncaptured == []


async def test_a_cancelled_transaction_captures_nothing(primary: Any) -> None:
    db, intake = wrap(primary)
    await db.query_raw("BEGIN; CREATE w:c1 SET n = 1; CANCEL")
    assert intake.captures == []


async def test_query_raw_answers_the_primarys_raw_response(primary: Any) -> None:
    db, intake = wrap(primary)
    response = await db.query_raw("CREATE w:r SET n = 1; SELECT * FROM w:r")
    assert [r["status"] for r in response["result"]] == ["OK", "OK"]
    assert intake.ids() == ["w:r"]


# -- reads ------------------------------------------------------------------


async def test_select_goes_to_merged_reads_when_they_are_active(primary: Any) -> None:
    await primary.create(RecordID("r", "1"), {"n": 1})
    reads = Reads()
    db, intake = wrap(primary, reads)
    rows = await db.select("r")
    assert [r["n"] for r in rows] == [1]
    assert reads.selects == [("r",)]
    assert intake.captures == []


async def test_select_goes_to_the_primary_alone_when_reads_are_off(primary: Any) -> None:
    await primary.create(RecordID("r", "1"), {"n": 1})
    reads = Reads(active=False)
    db, _ = wrap(primary, reads)
    assert [r["n"] for r in await db.select("r")] == [1]
    no_reads, _ = wrap(primary)
    assert [r["n"] for r in await no_reads.select("r")] == [1]
    assert reads.selects == []


async def test_a_plain_select_query_is_merged(primary: Any) -> None:
    await primary.create(RecordID("r", "1"), {"n": 1})
    reads = Reads()
    db, intake = wrap(primary, reads)
    rows = await db.query("SELECT * FROM r ORDER BY n LIMIT 5")
    assert [r["n"] for r in rows] == [1]
    assert reads.queries == ["SELECT * FROM r ORDER BY n LIMIT 5"]
    assert reads.counted == [] and intake.captures == []


@pytest.mark.parametrize(
    "query",
    [
        "SELECT count() FROM r GROUP ALL",
        "SELECT * FROM r START 1",
        "SELECT VALUE n FROM r",
        "SELECT * FROM r LIMIT $n",
    ],
)
async def test_aggregates_projections_and_parameters_are_merged_too(
    primary: Any, query: str
) -> None:
    # Merged reads answer these like the union (syncd.reads.union): routed there.
    await primary.create(RecordID("r", "1"), {"n": 1})
    reads = Reads()
    db, intake = wrap(primary, reads)
    await db.query(query, {"n": 1})
    assert reads.queries == [query]
    assert reads.counted == []
    assert intake.captures == []


async def test_a_query_with_a_write_is_not_merged(primary: Any) -> None:
    await primary.create(RecordID("r", "1"), {"n": 1})
    reads = Reads()
    db, intake = wrap(primary, reads)
    await db.query("SELECT * FROM r; CREATE r:new SET n = 1")
    assert reads.queries == [] and reads.counted == []
    assert intake.ids() == ["r:new"]


# -- the rest ---------------------------------------------------------------


async def test_other_methods_reach_the_wrapped_connection(primary: Any) -> None:
    db, _ = wrap(primary)
    assert db.primary is primary
    await db.use("app", "other")
    await primary.create(RecordID("x", "one"), {})
    assert [str(r["id"]) for r in await db.select("x")] == ["x:one"]
    await db.use("app", "main")
    await primary.create(RecordID("x", "two"), {})
    assert [str(r["id"]) for r in await db.select("x")] == ["x:two"]
