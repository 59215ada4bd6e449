"""``syncd pause`` / ``syncd resume`` against a real ``syncd run`` process between two databases.

Paused through the CLI, the daemon applies nothing while writes go on on the
primary; its feed is read until the queue is full (the feed is the buffer);
SIGTERM and a restart keep the pause; ``syncd resume`` lets the secondary
converge. A wrong token is refused (exit 2), no daemon is "unknown" (exit 3).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.pipeline.pause import PauseFile
from tests.support.daemon import SyncdProcess, converge, events_daemon
from tests.support.replica import secondary_rows
from tests.support.tools import write_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOKEN = "control-token-for-tests"
QUEUE = 50


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``python -m syncd ARGS`` with no SYNCD_* variables but ``env``: (exit, stdout, stderr)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    result = await anyio.run_process(
        [sys.executable, "-m", "syncd", *args], env={**clean, **(env or {})}, check=False
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def daemon_status(syncd: SyncdProcess) -> dict[str, Any]:
    code, body = syncd.http("/status")
    assert code == 200, body
    status: dict[str, Any] = json.loads(body)
    return status


async def untouched(url: str, expected: dict[str, Any], seconds: float) -> None:
    """The secondary keeps exactly ``expected`` for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert await secondary_rows(url, "events") == expected
        await anyio.sleep(0.4)


async def queue_reaches(syncd: SyncdProcess, depth: int, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while daemon_status(syncd)["queue_depth"] < depth:
        assert time.monotonic() < deadline, daemon_status(syncd)
        await anyio.sleep(0.1)


async def test_pause_survives_a_restart_and_resume_converges(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any
) -> None:
    db, syncd = await events_daemon(
        primary_server, secondary_server, syncd_factory, control_token=TOKEN, queue_size=QUEUE
    )
    config = str(syncd.config)
    url = secondary_server.url
    for i in range(20):
        await db.query(f"UPSERT events:{i} SET n = {i} RETURN NONE")
    await converge(db, url, "events")
    before = await secondary_rows(url, "events")

    # The token comes from the config; the daemon answers over loopback.
    code, out, err = await cli("pause", "-c", config)
    assert code == 0, err
    assert re.fullmatch(r"paused secondary since \d\d:\d\d:\d\d\n", out), out
    since = daemon_status(syncd)["secondary"]["paused_since"]
    assert isinstance(since, float)

    for i in range(100):  # updates of the first 20, and 80 new records
        await db.query(f"UPSERT events:{i} SET n = {1000 + i} RETURN NONE")
    # The feed is read while paused, until the queue is full; then it is the buffer.
    await queue_reaches(syncd, QUEUE)
    await untouched(url, before, seconds=2)
    status = daemon_status(syncd)
    assert status["queue_depth"] == QUEUE and status["spool_depth"] == 0
    assert status["secondary"]["paused"] is True
    metrics = syncd.http("/metrics")[1]
    assert 'syncd_paused{secondary="secondary"} 1.0' in metrics

    code, out, _ = await cli("status", "-c", config, "--json")
    assert code == 1  # degraded: nothing reaches the secondary
    assert any(r.startswith("secondary paused since") for r in json.loads(out)["reasons"])

    guess = "guessed-token-1234"
    code, _, err = await cli("pause", "-c", config, env={"SYNCD_CONTROL_TOKEN": guess})
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("syncd: the daemon at http://127.0.0.1:") and "refused" in err
    refusals = [line for line in syncd.log.read_text().splitlines() if "control_refused" in line]
    assert len(refusals) == 1 and '"client": "127.0.0.1"' in refusals[0], refusals
    assert guess not in err + syncd.log.read_text()
    assert TOKEN not in syncd.log.read_text()
    code, _, err = await cli("resume", "-c", config, "--secondary", "archive")
    assert (code, err) == (2, "syncd: unknown secondary 'archive' (configured: secondary)\n")

    started = time.monotonic()
    assert syncd.terminate() == 0
    assert time.monotonic() - started < 8  # paused: no drain to wait out
    paused_file = syncd.state / "paused.json"
    assert json.loads(paused_file.read_text())["paused"]["secondary"]["since"] == since

    code, out, err = await cli("pause", "-c", config)
    assert code == 3 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("syncd: no daemon answered at http://127.0.0.1:")

    syncd.start()
    syncd.wait_ready()
    status = daemon_status(syncd)
    assert status["secondary"]["paused"] is True
    assert status["secondary"]["paused_since"] == since
    await untouched(url, before, seconds=1.5)

    code, out, err = await cli("resume", "-c", config, "--secondary", "secondary")
    assert (code, out) == (0, "resumed secondary\n"), err
    await converge(db, url, "events")
    assert not paused_file.exists()
    assert daemon_status(syncd)["secondary"]["paused"] is False
    code, out, _ = await cli("resume", "-c", config)  # idempotent
    assert (code, out) == (0, "resumed secondary\n")
    assert syncd.terminate() == 0
    await db.close()


def test_no_daemon_is_exit_3(tmp_path: Path) -> None:
    config = tmp_path / "syncd.yaml"
    config.write_text('secondary_url: "ws://127.0.0.1:9/rpc"\nmetrics_listen: "127.0.0.1:9"\n')
    for command in ("pause", "resume"):
        code, out, err = anyio.run(cli, command, "-c", str(config))
        assert code == 3 and out == ""
        assert (
            err
            == f"syncd: no daemon answered at http://127.0.0.1:9/{command}: Connection refused\n"
        )


def test_tools_that_write_to_the_secondary_refuse_while_it_is_paused(tmp_path: Path) -> None:
    PauseFile(tmp_path / "state").save({"secondary": time.time()})
    config = write_config(tmp_path, primary=None, secondary=None, database="main")
    code, out, err = anyio.run(cli, "backfill", "-c", str(config))
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("syncd: the secondary is paused (since ")
    assert err.endswith("a backfill would write to it; run `syncd resume` first\n")
