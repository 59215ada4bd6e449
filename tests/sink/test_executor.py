"""The executor over a scripted session: each refused record comes back with its kind and text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from surrealdb import RecordID

from syncd.keys import KeyRule
from syncd.sink.executor import Executor, Rejection
from syncd.sink.operation import Operation
from syncd.surreal.failures import ErrorKind
from tests.support.fake_client import FakeDatabase, managed

pytestmark = pytest.mark.timeout(20)

COERCION = "Found 'x' for field `v`, with record `t:2`, but expected a int"


def ops(*values: Any) -> list[Operation]:
    return [
        Operation(table="t", key=f"t:{n}", record={"id": RecordID("t", n), "v": v})
        for n, v in enumerate(values)
    ]


@asynccontextmanager
async def executor(db: FakeDatabase) -> AsyncIterator[Executor]:
    conn = managed(db)
    async with anyio.create_task_group() as tg:
        await tg.start(conn.run)
        await conn.wait_up()
        yield Executor(conn, keys=KeyRule(), write_timeout=1.0)
        tg.cancel_scope.cancel()


async def test_a_refused_record_comes_back_with_its_kind_and_whole_text() -> None:
    db = FakeDatabase()
    db.refuse = lambda row: COERCION if row["v"] == "x" else None
    batch = ops(0, 1, "x", 3)
    async with executor(db) as ex:
        rejected = await ex.apply(batch)
    assert rejected == [Rejection(batch[2], ErrorKind.FIELD_TYPE, COERCION)]
    assert sorted(db.rows) == ["t:0", "t:1", "t:3"]


async def test_a_request_refused_whole_rejects_each_record_with_the_error_kind() -> None:
    db = FakeDatabase()
    db.faults.extend(["rpc_error", "rpc_error"])  # the batch, then the records one by one
    batch = ops(0, 1)
    async with executor(db) as ex:
        rejected = await ex.apply(batch)
    text = "Failed to decode CBOR request: bad tag"  # the engine's prefix is not the error
    assert rejected == [Rejection(op, ErrorKind.PAYLOAD, text) for op in batch]


async def test_an_answer_of_the_wrong_shape_is_a_response_failure() -> None:
    db = FakeDatabase()
    db.faults.extend(["short", "short"])
    batch = ops(0)
    async with executor(db) as ex:
        rejected = await ex.apply(batch)
    assert [(r.op, r.kind) for r in rejected] == [(batch[0], ErrorKind.RESPONSE)]
    assert rejected[0].text == "unexpected response to a per-record upsert"
