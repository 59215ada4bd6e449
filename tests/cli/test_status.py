"""``syncd status`` through the real entry point: of a running replicator, and of a stopped one."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry
from surrealdb import RecordID
from typer.testing import CliRunner, Result

from syncd.capture.checkpoint import Checkpoint, CheckpointFile
from syncd.cli.main import app
from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.pause import PauseFile
from syncd.pipeline.recopy import RecopyLedger
from syncd.pipeline.spool import Spool
from syncd.service.replicator import Replicator
from syncd.sink.operation import Operation
from syncd.words import at
from tests.support.replica import dead_url, make_config
from tests.support.secondaries import write_secondaries_config
from tests.support.tools import free_port, syncd, write_config

pytestmark = pytest.mark.timeout(120)


def op(n: int) -> Operation:
    return Operation(
        table="events", key=f"events:{n}", record={"id": RecordID("events", n), "n": n}, seq=n
    )


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.integration
async def test_status_of_a_running_replicator(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    port = free_port()
    config = make_config(tmp_path, secondary_server.url, metrics_listen=f"127.0.0.1:{port}")
    write_config(
        tmp_path,
        primary=None,
        secondary=secondary_server,
        database="main",
        state_dir=str(tmp_path / "state"),
        metrics_listen=f"127.0.0.1:{port}",
    )
    rep = Replicator(config, registry=CollectorRegistry())
    plain = rep.status
    # The daemon's /status adds its checkpoint; the library's has none to show.
    rep.status = lambda: {  # type: ignore[method-assign]
        **plain(),
        "checkpoint": {"position": 4242, "saved_at": time.time() - 3, "backfill": None},
    }
    async with rep:
        db = rep.wrap(primary)
        for i in range(30):
            await db.create(RecordID("events", i), {"n": i})
        await rep.flush(timeout=30)
        await anyio.sleep(1.1)  # the rates need a baseline at least a second old
        as_json, human = await anyio.to_thread.run_sync(
            lambda: (
                syncd("status", "-c", "syncd.yaml", "--json", cwd=tmp_path),
                syncd("status", "-c", "syncd.yaml", cwd=tmp_path),
            )
        )
    assert as_json.returncode == 0, as_json.stderr
    info = json.loads(as_json.stdout)
    assert (info["health"], info["reasons"]) == ("healthy", [])
    assert info["source"] == "daemon" and info["daemon_running"]
    assert info["secondary"]["up"] is True
    assert (info["queue_depth"], info["spool_depth"], info["dead_letters"]) == (0, 0, 0)
    assert info["lag_seconds"] == 0
    assert info["checkpoint"]["position"] == 4242
    rates = info["rates"]
    assert rates["window_seconds"] > 0
    assert rates["applied_per_second"] > 0 and rates["enqueued_per_second"] > 0
    assert rates["dead_lettered_per_second"] == 0
    assert human.returncode == 0, human.stderr
    text = " ".join(human.stdout.split())
    assert f"daemon at http://127.0.0.1:{port}/status" in text
    assert "secondary │ up since" in text
    assert "position 4242, saved 3s ago" in text
    assert "applied" in text and "/s" in text


@pytest.mark.integration
async def test_status_of_a_degraded_replicator_exits_1_with_reasons(tmp_path: Path) -> None:
    port = free_port()
    config = make_config(
        tmp_path, dead_url(), metrics_listen=f"127.0.0.1:{port}", status_lag_threshold="1s"
    )
    write_config(
        tmp_path,
        primary=None,
        secondary=None,
        database="main",
        state_dir=str(tmp_path / "state"),
        metrics_listen=f"127.0.0.1:{port}",
        status_lag_threshold="1s",
    )
    async with Replicator(config, registry=CollectorRegistry()) as rep:
        rep.fanout.capture([{"id": RecordID("events", 1), "n": 1}])  # waits: the secondary is down
        await anyio.sleep(1.2)  # older than status_lag_threshold
        as_json, human = await anyio.to_thread.run_sync(
            lambda: (
                syncd("status", "-c", "syncd.yaml", "--json", cwd=tmp_path),
                syncd("status", "-c", "syncd.yaml", cwd=tmp_path),
            )
        )
    assert as_json.returncode == 1, as_json.stderr
    info = json.loads(as_json.stdout)
    assert info["health"] == "degraded"
    assert info["reasons"][0].startswith("secondary down: ")
    assert re.fullmatch(r"lag \d+\.\ds over status_lag_threshold \(1s\)", info["reasons"][1])
    assert info["ready"] == {"ok": True, "reason": "ready"}  # down for less than readyz's 30s
    assert human.returncode == 1
    assert "health │ degraded: secondary down" in " ".join(human.stdout.split())


def cli(tmp_path: Path, *args: str) -> Result:
    """The command line in-process (typer's runner), for the tests that need no database."""
    return CliRunner().invoke(app, [*args, "-c", str(tmp_path / "syncd.yaml")])


def test_status_of_a_stopped_daemon_reads_the_state_dir_without_changing_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    spool = Spool(state / "spool")
    spool.open()
    spool.append([op(n) for n in range(1, 8)])
    assert len(spool.read(2)) == 2
    spool.confirm(2)  # applied: 5 left
    spool.close()
    dlq = DeadLetterFile(state / "deadletters.jsonl")
    for n in (1, 2):
        dlq.append(op(n), "refused", first_failed_at=time.time())
    with dlq.path.open("a") as f:
        f.write("{torn line\n")
    CheckpointFile(state).save(Checkpoint(position=1234, saved_at=time.time() - 90))
    ledger = RecopyLedger(state / "spool.resync")  # a library whose disk was full
    ledger.open()
    ledger.mark("events", 9)
    ledger.close()
    write_config(
        tmp_path,
        primary=None,
        secondary=None,
        database="main",
        metrics_listen=f"127.0.0.1:{free_port()}",  # nothing answers there
    )
    before = snapshot(state)
    result = cli(tmp_path, "status", "--json")
    assert result.exit_code == 3, result.stderr  # unknown: no daemon answered
    info = json.loads(result.stdout)
    assert info["health"] == "unknown"
    assert info["reasons"][1:] == ["5 operations waiting in the spool", "2 dead letters"]
    assert info["source"] == "state_dir" and not info["daemon_running"]
    assert "no daemon answered" in info["note"]
    assert (info["spool_depth"], info["dead_letters"], info["dead_letters_malformed"]) == (5, 2, 1)
    assert info["checkpoint"]["position"] == 1234
    assert info["resync_pending"] == ["events"]
    assert info["secondary"]["up"] is None and info["lag_seconds"] is None
    text = " ".join(cli(tmp_path, "status").stdout.split())
    assert "spool │ 5 operations" in text
    assert "re-sync │ events" in text
    assert "2 entries (+1 malformed line)" in text
    assert re.search(r"position 1234, saved 1m3\ds ago", text), text
    assert "unknown (no daemon answering)" in text
    assert snapshot(state) == before  # read-only
    (state / "checkpoint.json").unlink()
    assert "checkpoint │ none" in " ".join(cli(tmp_path, "status").stdout.split())


def test_status_of_a_stopped_daemon_shows_a_persisted_pause(tmp_path: Path) -> None:
    since = time.time() - 120
    PauseFile(tmp_path / "state").save({"secondary": since})
    write_config(tmp_path, primary=None, secondary=None, database="main")  # metrics disabled
    result = cli(tmp_path, "status", "--json")
    assert result.exit_code == 3, result.stderr
    info = json.loads(result.stdout)
    assert info["secondary"]["paused"] is True and info["secondary"]["paused_since"] == since
    assert any(r.startswith("the secondary is paused since") for r in info["reasons"])
    assert "paused since" in " ".join(cli(tmp_path, "status").stdout.split())
    (tmp_path / "state" / "paused.json").write_text("{torn")
    info = json.loads(cli(tmp_path, "status", "--json").stdout)  # reported, not fatal
    assert info["secondary"]["paused"] is None
    assert any(r.startswith("pause file ") for r in info["reasons"])


def test_status_with_no_state_dir_at_all(tmp_path: Path) -> None:
    write_config(tmp_path, primary=None, secondary=None, database="main")  # metrics disabled
    result = cli(tmp_path, "status", "--json")
    assert result.exit_code == 3, result.stderr  # no daemon, no state: unknown
    info = json.loads(result.stdout)
    assert info["health"] == "unknown"
    assert (info["spool_depth"], info["dead_letters"], info["checkpoint"]) == (0, 0, None)
    assert "metrics_listen is disabled" in info["note"]
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["verify"],
        ["dlq", "list"],
        ["dlq", "show", "1"],
        ["dlq", "replay"],
        ["dlq", "purge"],
    ],
)
def test_a_missing_config_file_is_one_line_and_exit_2(tmp_path: Path, command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "-c", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.stderr == f"syncd: config {tmp_path / 'nope.yaml'}: file not found\n"
    assert result.stdout == ""


def two_secondaries(tmp_path: Path, **extra: Any) -> None:
    write_secondaries_config(
        tmp_path,
        primary=None,
        database="main",
        secondaries={"archive": "ws://127.0.0.1:10/rpc", "analytics": "ws://127.0.0.1:11/rpc"},
        **extra,
    )


def secondary_status(name: str, **changes: Any) -> dict[str, Any]:
    """One entry of ``/status``'s ``secondaries``, as Replica.status() gives it: up, idle."""
    entry: dict[str, Any] = {
        "name": name,
        "priority": 1,
        "up": True,
        "since": time.time() - 60,
        "last_error": "",
        "failure": None,
        "version": "surrealdb-2.3.10",
        "tested": True,
        "paused": False,
        "paused_since": None,
        "joining": False,
        "lag_seconds": 0.0,
        "queue_depth": 0,
        "spool_depth": 0,
        "resync_pending": [],
        "dead_letters": 0.0,
        "applied": 10.0,
    }
    entry.update(changes)
    return entry


@contextlib.contextmanager
def serving(body: dict[str, Any]) -> Iterator[int]:
    """A daemon's HTTP endpoint answering ``GET /status`` with ``body``; yields its port."""
    data = json.dumps(body).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/status" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_status_names_each_secondary_paused_or_down(tmp_path: Path) -> None:
    paused_since = time.time() - 300
    archive = secondary_status(
        "archive", paused=True, paused_since=paused_since, queue_depth=40, lag_seconds=300.0
    )
    analytics = secondary_status(
        "analytics",
        priority=2,
        up=False,
        last_error="ConnectionRefusedError: [Errno 111]",
        failure="refused",
        spool_depth=7,
        dead_letters=2.0,
    )
    body = {
        "ready": {"ok": True, "reason": "ready"},
        "secondary": archive,
        "secondaries": [archive, analytics],
        "primary": {"up": True, "since": time.time() - 60, "failure": None},
        "lag_seconds": 300.0,
        "queue_depth": 40,
        "spool_depth": 7,
        "resync_pending": [],
        "dead_letters": 2.0,
        "rates": {"window_seconds": 60, "dead_lettered_per_second": 0.0},
        "checkpoint": {"position": 12, "saved_at": time.time(), "backfill": None},
    }
    with serving(body) as port:
        two_secondaries(tmp_path, metrics_listen=f"127.0.0.1:{port}")
        result = cli(tmp_path, "status", "--json")
        human = cli(tmp_path, "status")
    assert result.exit_code == 1, result.stderr
    info = json.loads(result.stdout)
    assert info["health"] == "degraded"
    assert info["reasons"][0] == "secondary analytics down: ConnectionRefusedError: [Errno 111]"
    assert info["reasons"][1].startswith("secondary archive paused since ")
    assert info["reasons"][1].endswith("(syncd resume --secondary archive)")
    assert info["reasons"][2] == "secondary archive lag 300.0s over status_lag_threshold (60s)"
    assert len(info["reasons"]) == 3  # dead letters present, not growing
    assert [(s["name"], s["up"], s["paused"]) for s in info["secondaries"]] == [
        ("archive", True, True),
        ("analytics", False, False),
    ]
    assert (info["secondaries"][1]["spool_depth"], info["secondaries"][1]["dead_letters"]) == (7, 2)
    assert info["secondary"]["paused"] is True  # the first, as before
    assert human.exit_code == 1
    text = " ".join(human.stdout.replace("│", " ").split())  # cells wrap at 80 columns
    assert "secondary archive up since" in text
    assert "ago; `syncd resume --secondary archive` to continue)" in text
    assert "backlog 40 in memory + 0 on disk" in text
    assert "secondary analytics down since" in text and "2 dead letters" in text


def test_status_of_a_stopped_daemon_reads_each_secondarys_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    spool = Spool(state / "secondaries" / "analytics" / "spool")
    spool.open()
    spool.append([op(n) for n in range(1, 4)])
    spool.close()
    dlq = DeadLetterFile(state / "secondaries" / "archive" / "deadletters.jsonl")
    dlq.append(op(1), "refused", first_failed_at=time.time())
    since = time.time() - 60
    PauseFile(state).save({"analytics": since})
    two_secondaries(tmp_path)  # metrics disabled: no daemon
    result = cli(tmp_path, "status", "--json")
    assert result.exit_code == 3, result.stderr
    info = json.loads(result.stdout)
    assert [
        (s["name"], s["spool_depth"], s["dead_letters"], s["paused"]) for s in info["secondaries"]
    ] == [("archive", 0, 1, False), ("analytics", 3, 0, True)]
    assert (info["spool_depth"], info["dead_letters"]) == (3, 1)
    assert info["reasons"][1:] == [
        "3 operations waiting in the spool (analytics 3)",
        "1 dead letters (archive 1)",
        f"secondary analytics is paused since {at(since)}",
    ]
    text = " ".join(cli(tmp_path, "status").stdout.split())
    assert "secondary analytics │ unknown (no daemon answering); paused since" in text
