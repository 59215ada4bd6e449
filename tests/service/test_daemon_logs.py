"""What ``syncd run`` writes to its log when records are refused: no values, keys or record ids.

A real daemon between two real database processes dead-letters records that
hold distinctive values; every JSON line it wrote, at debug level, is then
searched for them. The whole error is in the dead-letter file (mode 0600).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.keys import key_hash
from tests.support.daemon import connect
from tests.support.replica import connect_secondary

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# Each would show up in a log line that quoted a value, a natural key or a record id.
SECRETS = ("CONTENT-7f3a", "CONTENT-91bd", "USER-c0ffee", "NOTE-deadbeef", "ID-5ec12e7")


async def test_refused_records_leave_no_value_key_or_id_in_any_log_line(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    admin = await connect_secondary(secondary_server.url)
    await admin.query(
        "DEFINE TABLE events SCHEMAFULL; DEFINE FIELD n ON events TYPE int;"
        "DEFINE TABLE kv SCHEMAFULL; DEFINE FIELD n ON kv TYPE int;"
        "DEFINE FIELD user_id ON kv TYPE string; DEFINE FIELD key ON kv TYPE string"
    )
    await admin.close()
    db = await connect(primary_server.url)
    await db.query("DEFINE TABLE events CHANGEFEED 1d; DEFINE TABLE kv CHANGEFEED 1d")
    # Copied by the first start's backfill: its log line counts them.
    await db.query("FOR $i IN [1, 2, 3, 4, 5, 6] { CREATE events CONTENT {id: $i, n: $i} }")
    syncd = syncd_factory(
        primary_server.url,
        secondary_server.url,
        tables={"events": {}, "kv": {"key": ["user_id", "key"]}},
        log_level="debug",
        sync_max_retries=2,
        sync_retry_interval="50ms",
    )
    syncd.start()
    syncd.wait_ready()
    await db.query("CREATE events CONTENT {id: 'ID-5ec12e7', n: 'CONTENT-7f3a'}")
    await db.query(
        "CREATE kv SET user_id = 'USER-c0ffee', key = 'NOTE-deadbeef', n = 'CONTENT-91bd'"
    )
    dlq = syncd.state / "deadletters.jsonl"
    deadline = time.monotonic() + 60
    # Polling another process's file: there is no event to wait on.
    while time.monotonic() < deadline:
        if await anyio.to_thread.run_sync(count_lines, dlq) == 2:
            break
        await anyio.sleep(0.1)
    assert syncd.terminate() == 0
    await db.close()
    check(dlq, syncd.log)


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def check(dlq: Path, log: Path) -> None:
    """The whole errors are in the dead-letter file; no log line holds a secret."""
    letters = [json.loads(line) for line in dlq.read_text().splitlines()]
    assert len(letters) == 2, log.read_text()
    assert dlq.stat().st_mode & 0o777 == 0o600
    assert {"CONTENT-7f3a", "CONTENT-91bd"} <= {
        secret for secret in SECRETS for letter in letters if secret in letter["error"]
    }
    lines = log.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is JSON
    for line in lines:
        for secret in SECRETS:
            assert secret not in line, line
    refused = [e for e in events if e["event"] in ("operation_rejected", "operation_dead_lettered")]
    assert {e["event"] for e in refused} == {"operation_rejected", "operation_dead_lettered"}
    hashes = {key_hash(letter["key"]) for letter in letters}
    for entry in refused:
        assert entry["table"] in ("events", "kv")
        assert entry["key_hash"] in hashes
        assert entry["error_kind"] == "field_type"
        assert "key" not in entry and "error" not in entry
    done = [e for e in events if e["event"] == "backfill_table_done" and e["table"] == "events"]
    assert done and done[0]["records"] == 6  # a count, not "[redacted]"
