"""Backfill: tables copied in chunks from a real primary, each chunk flushed then saved,
resumed after the last saved id, primary outages waited out."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import pytest

from syncd.capture.backfill import (
    copy_tables,
    keep_nothing,
    page_query,
    start_backfill,
)
from syncd.capture.checkpoint import Backfill, Checkpoint
from syncd.errors import PrimaryUnavailable
from syncd.keys import KeyRule
from syncd.metrics import Metrics
from syncd.surreal.codec import RecordID
from syncd.surreal.endpoints import DirectCaller

T = TypeVar("T")


def test_the_first_page_orders_by_id() -> None:
    assert page_query("events", None, 10) == (
        "SELECT * FROM type::table($t) ORDER BY id LIMIT $n",
        {"t": "events", "n": 10},
    )


@pytest.mark.parametrize(
    ("after", "sql"),
    [
        (RecordID("events", 41), "SELECT * FROM events:41>.. LIMIT $n"),
        (RecordID("events", "a b"), "SELECT * FROM events:`a b`>.. LIMIT $n"),
    ],
)
def test_later_pages_are_record_ranges(after: RecordID, sql: str) -> None:
    assert page_query("events", after, 5) == (sql, {"n": 5})


@pytest.mark.parametrize(
    ("table", "after"),
    [
        ("events", RecordID("events", uuid.UUID(int=1))),
        ("events", RecordID("events", ("a", 1))),
        ("odd-name", RecordID("odd-name", 3)),
    ],
)
def test_ids_a_range_cannot_spell_fall_back_to_where(table: str, after: RecordID) -> None:
    sql, params = page_query(table, after, 5)
    assert sql == "SELECT * FROM type::table($t) WHERE id > $after ORDER BY id LIMIT $n"
    assert params == {"t": table, "after": after, "n": 5}


class Recorded:
    """An Intake that keeps what it is handed and counts flushes."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.keys = KeyRule()
        self.captured: list[tuple[str, str]] = []  # (source, id)
        self.flushes = 0

    def capture(self, rows: Iterable[Mapping[str, Any]], *, source: str = "wrapper",
                copy: Callable[[Any], Any] = lambda x: x) -> int:  # fmt: skip
        rows = list(rows)
        self.captured += [(source, str(r["id"])) for r in rows]
        return len(rows)

    def enqueue(self, ops: Any) -> None:
        raise AssertionError("backfill captures rows")

    async def flush(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        self.flushes += 1

    def room(self) -> int:
        return 1000

    def count_uncaptured(self, reason: str) -> None:
        raise AssertionError(reason)


class Source:
    """The primary as a copy reads it: an application's connection, with outages on demand."""

    def __init__(self, conn: Any, failures: int = 0) -> None:
        self._caller = DirectCaller(conn)
        self.failures = failures
        self.waited = 0

    async def call(self, fn: Callable[[Any], Awaitable[T]], seconds: float) -> T:
        if self.failures:
            self.failures -= 1
            raise PrimaryUnavailable("primary unavailable: reset")
        return await self._caller.call(fn, seconds)

    async def wait_up(self) -> None:
        self.waited += 1


async def fill(primary: Any) -> None:
    await primary.query(
        "; ".join(f"CREATE a:{i} SET n = {i}" for i in range(1, 6))
        + "; CREATE b:x SET n = 0; CREATE b:y SET n = 1"
    )


def started() -> Checkpoint:
    return Checkpoint(position=None, backfill=start_backfill(1234))


@pytest.mark.integration
async def test_tables_are_copied_chunk_by_chunk_each_flushed_then_saved(primary: Any) -> None:
    await fill(primary)
    intake = Recorded()
    saved: list[Checkpoint] = []
    flushed_at_save: list[int] = []
    progress: list[tuple[str, int]] = []

    async def save(checkpoint: Checkpoint) -> None:
        saved.append(checkpoint)
        flushed_at_save.append(intake.flushes)

    done = await copy_tables(
        primary=Source(primary), intake=intake, tables=["a", "b"], checkpoint=started(),
        save=save, chunk=2, progress=lambda t, n: progress.append((t, n)),
    )  # fmt: skip
    assert [i for _, i in intake.captured] == ["a:1", "a:2", "a:3", "a:4", "a:5", "b:x", "b:y"]
    assert {s for s, _ in intake.captured} == {"backfill"}
    assert progress == [("a", 2), ("a", 2), ("a", 1), ("b", 2)]
    assert intake.flushes == 4
    assert done.backfill is not None
    assert (done.backfill.done, done.backfill.table, done.backfill.after) == (
        ("a", "b"),
        None,
        None,
    )
    assert done.backfill.start_position == 1234
    steps = [
        (s.backfill.table, str(s.backfill.after), s.backfill.done) for s in saved if s.backfill
    ]
    assert steps == [
        ("a", "a:2", ()), ("a", "a:4", ()), ("a", "a:5", ()), (None, "None", ("a",)),
        ("b", "b:y", ("a",)),
        # b's one page was short of the chunk: done without another read
        (None, "None", ("a", "b")),
    ]  # fmt: skip
    # every chunk was flushed before its position was saved
    assert flushed_at_save == [1, 2, 3, 3, 4, 4]
    assert intake.metrics.backfill_records.labels("a")._value.get() == 5


@pytest.mark.integration
async def test_a_copy_resumes_after_the_saved_id_and_skips_done_tables(primary: Any) -> None:
    await fill(primary)
    intake = Recorded()
    checkpoint = Checkpoint(
        backfill=Backfill(start_position=1, done=("b",), table="a", after=RecordID("a", 3))
    )
    done = await copy_tables(
        primary=Source(primary), intake=intake, tables=["a", "b"], checkpoint=checkpoint,
        save=keep_nothing, chunk=10,
    )  # fmt: skip
    assert [i for _, i in intake.captured] == ["a:4", "a:5"]
    assert done.backfill is not None and done.backfill.done == ("b", "a")


@pytest.mark.integration
async def test_an_empty_table_is_done_at_once(primary: Any) -> None:
    await primary.query("DEFINE TABLE empty SCHEMALESS")
    intake = Recorded()
    done = await copy_tables(
        primary=Source(primary), intake=intake, tables=["empty"], checkpoint=started(),
        save=keep_nothing,
    )  # fmt: skip
    assert intake.captured == [] and intake.flushes == 0
    assert done.backfill is not None and done.backfill.done == ("empty",)


@pytest.mark.integration
async def test_a_primary_outage_is_waited_out(primary: Any) -> None:
    await fill(primary)
    source = Source(primary, failures=2)
    intake = Recorded()
    await copy_tables(
        primary=source, intake=intake, tables=["b"], checkpoint=started(), save=keep_nothing
    )
    assert source.waited == 2
    assert [i for _, i in intake.captured] == ["b:x", "b:y"]


async def test_a_copy_needs_a_backfill_in_progress() -> None:
    with pytest.raises(ValueError, match="backfill in progress"):
        await copy_tables(
            primary=None,  # type: ignore[arg-type]
            intake=Recorded(),  # type: ignore[arg-type]
            tables=["a"],
            checkpoint=Checkpoint(),
            save=keep_nothing,
        )
