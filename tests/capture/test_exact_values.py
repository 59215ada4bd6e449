"""Every value the primary stored reaches the secondary exactly: library mode and daemon mode.

The application's SDK decodes answers lossily (a datetime keeps microseconds;
NULL and NONE are both ``None``); syncd captures from the answer's own bytes
(``syncd/surreal/tap.py``) and carries them with its exact codec. The
expected values are written as SurrealQL literals, so they are known exactly.
"""

from __future__ import annotations

import decimal
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.service.replicator import Replicator
from syncd.surreal.codec import NONE, Datetime, Duration, GeometryPoint, RecordID
from syncd.surreal.rpc import RpcClient
from tests.support.daemon import events_daemon
from tests.support.replica import DATABASE, NAMESPACE, make_config, table_rows
from tests.support.waiting import polled

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LITERAL = (
    "{at: d'2026-11-02T10:00:05.123456789Z', null_field: NULL, ttl: 1h30m5ns, "
    "price: 9.99dec, uid: u'0195a1f2-4c5e-7d3a-9b1c-2e3f4a5b6c7d', blob: <bytes>'abc', "
    "place: (1.5, -2.25), link: people:⟨a b⟩, nested: {list: [1, NONE, NULL, 'x']}, "
    "big: 9223372036854775807, neg0: -0.0f}"
)
EXPECTED: dict[str, Any] = {
    "at": Datetime.from_iso("2026-11-02T10:00:05.123456789Z"),
    "null_field": None,
    "ttl": Duration(5400, 5),
    "price": decimal.Decimal("9.99"),
    "uid": uuid.UUID("0195a1f2-4c5e-7d3a-9b1c-2e3f4a5b6c7d"),
    "blob": b"abc",
    "place": GeometryPoint(1.5, -2.25),
    "link": RecordID("people", "a b"),
    "nested": {"list": [1, NONE, None, "x"]},
    "big": 9223372036854775807,
    "neg0": -0.0,
}


async def exact_rows(url: str, namespace: str, database: str, table: str) -> dict[str, Any]:
    client = await RpcClient.connect(url, role="secondary")
    try:
        await client.signin("root", "root")
        await client.use(namespace, database)
        rows = await table_rows(lambda: client.query(f"SELECT * FROM {table}"))
    finally:
        await client.close()
    return {str(row["id"]): row for row in rows}


def assert_exact(row: dict[str, Any]) -> None:
    for field, value in EXPECTED.items():
        got = row.get(field)
        assert type(got) is type(value) and got == value, (field, got, value)
    assert str(row["neg0"]) == "-0.0"  # the sign of zero kept


async def test_library_mode_carries_every_value_exactly(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    config = make_config(tmp_path, secondary_server.url)
    async with Replicator(config, registry=CollectorRegistry()) as rep:
        db = rep.wrap(primary)
        await db.query(f"CREATE vals:1 CONTENT {LITERAL}")
        await db.query(f"UPSERT vals:2 CONTENT {LITERAL}")
        await db.query_raw(f"BEGIN; CREATE vals:3 CONTENT {LITERAL}; COMMIT")
        await rep.flush(timeout=60)
    replica = await exact_rows(secondary_server.url, NAMESPACE, DATABASE, "vals")
    assert sorted(replica) == ["vals:1", "vals:2", "vals:3"]
    for row in replica.values():
        assert_exact(row)


async def test_daemon_mode_carries_every_value_exactly(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db, syncd = await events_daemon(primary_server, secondary_server, syncd_factory)
    try:
        await db.query(f"CREATE events:1 CONTENT {LITERAL}")
        # RETURN NONE: the test's own SDK connection cannot decode 0ns (its bug).
        await db.query("CREATE events:2 CONTENT {ttl: 0ns, n: 1} RETURN NONE")
        replica = await polled(
            lambda: exact_rows(secondary_server.url, NAMESPACE, DATABASE, "events"),
            lambda rows: len(rows) == 2,
            60,
        )
        assert_exact(replica["events:1"])
        assert replica["events:2"]["ttl"] == Duration(0, 0)
    finally:
        syncd.stop()
        await db.close()
