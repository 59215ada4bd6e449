"""The library's operational edges: a bad state_dir, what rejections log, the live DLQ count."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from prometheus_client import CollectorRegistry
from surrealdb import RecordID

import syncd
from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.keys import key_hash
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.sink.operation import Operation
from tests.support.replica import connect_secondary, dead_url, make_config
from tests.support.tools import free_port, write_config
from tests.support.tools import syncd as syncd_cli

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("layout", ["file", "under_a_file"])
async def test_an_unusable_state_dir_is_a_config_error(tmp_path: Path, layout: str) -> None:
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" if layout == "file" else tmp_path / "file" / "state"
    config = make_config(tmp_path, dead_url(), state_dir=str(state))
    with pytest.raises(syncd.ConfigError) as info:
        async with syncd.Replicator(config, registry=CollectorRegistry()):
            pass
    problem = "is a file, not a directory" if layout == "file" else "lies under a file"
    assert str(info.value).startswith(f"state_dir {state}: {problem}")


async def strict_secondary(url: str) -> None:
    admin = await connect_secondary(url)
    try:
        await admin.query(
            "DEFINE TABLE strict SCHEMAFULL; DEFINE FIELD n ON strict TYPE int;"
            "DEFINE FIELD user_id ON strict TYPE option<string>;"
        )
    finally:
        await admin.close()


@pytest.mark.integration
@pytest.mark.parametrize("show_ids", [False, True])
async def test_rejections_log_kind_and_key_hash_not_values(
    tmp_path: Path,
    primary: Any,
    secondary_server: ServerProcess,
    capsys: pytest.CaptureFixture[str],
    show_ids: bool,
) -> None:
    await strict_secondary(secondary_server.url)
    saved = structlog.get_config()
    # What an application that never configured structlog runs: no redactor
    # behind the worker, so the worker alone must keep the values out.
    structlog.reset_defaults()
    try:
        config = make_config(
            tmp_path,
            secondary_server.url,
            sync_max_retries=2,
            tables={"strict": {"key": ["user_id"]}},
            log_record_ids=show_ids,
        )
        async with syncd.Replicator(config, registry=CollectorRegistry()) as rep:
            db = rep.wrap(primary)
            await db.create(
                RecordID("strict", "ID-SECRET-1"), {"n": "VALUE-SECRET", "user_id": "KEY-SECRET"}
            )
            await rep.flush(timeout=30)
        seen = capsys.readouterr()
    finally:
        structlog.configure(**saved)
    text = seen.out + seen.err
    assert "operation_rejected" in text and "operation_dead_lettered" in text
    digest = key_hash('strict|["KEY-SECRET"]')
    assert digest in text and "error_kind=field_type" in text
    if show_ids:  # debugging: the key and the secondary's whole error
        assert "key='strict|[\"KEY-SECRET\"]'" in text and "VALUE-SECRET" in text
    else:
        for secret in ("VALUE-SECRET", "KEY-SECRET", "ID-SECRET-1"):
            assert secret not in text, secret
    letter = json.loads((tmp_path / "state" / "deadletters.jsonl").read_text())
    assert "VALUE-SECRET" in letter["error"]  # the whole error, for the operator, in the file


def scrape(port: int) -> tuple[float, float]:
    """``syncd_dead_letters`` from /metrics and ``dead_letters`` from /status."""
    base = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        text = response.read().decode()
    gauge = next(float(x.split()[1]) for x in text.splitlines() if x.startswith("syncd_dead_"))
    with urllib.request.urlopen(base + "/status", timeout=5) as response:
        status = json.loads(response.read())
    return gauge, float(status["dead_letters"])


@pytest.mark.integration
async def test_the_dead_letter_count_follows_the_file(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    await strict_secondary(secondary_server.url)
    port = free_port()
    config = make_config(
        tmp_path, secondary_server.url, sync_max_retries=1, metrics_listen=f"127.0.0.1:{port}"
    )
    async with syncd.Replicator(config, registry=CollectorRegistry()) as rep:
        db = rep.wrap(primary)
        for n in range(3):
            await db.create(RecordID("strict", n), {"n": f"not a number {n}"})
        await rep.flush(timeout=30)
        assert await anyio.to_thread.run_sync(scrape, port) == (3, 3)
        # Another process adds one (as a repair's adoption would)...
        other = DeadLetterFile(tmp_path / "state" / "deadletters.jsonl")
        op = Operation("strict", "strict:9", {"id": RecordID("strict", 9), "n": "x"})
        await anyio.to_thread.run_sync(lambda: other.append(op, "refused", first_failed_at=0.0))
        assert await anyio.to_thread.run_sync(scrape, port) == (4, 4)
        # ...and an operator purges them with the CLI, while the replicator runs.
        write_config(
            tmp_path,
            primary=None,
            secondary=secondary_server,
            database="main",
            state_dir=str(tmp_path / "state"),
        )
        purge = await anyio.to_thread.run_sync(
            lambda: syncd_cli("dlq", "purge", "--yes", "-c", "syncd.yaml", cwd=tmp_path)
        )
        assert purge.returncode == 0, purge.stderr
        assert await anyio.to_thread.run_sync(scrape, port) == (0, 0)
        assert rep.status()["dead_letters"] == 0
