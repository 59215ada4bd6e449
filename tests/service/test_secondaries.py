"""Several secondaries, each replicated independently: killed, frozen and paused at once.

Three secondaries behind one daemon, on both engine generations, with writes
going on throughout: ``archive`` is killed and restarted, ``analytics`` frozen
(SIGSTOP) and thawed, ``backup`` paused across a daemon restart. While one is
out the others keep up; at the end every secondary equals the primary, record
by record.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from surrealdb import RecordID

from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.daemon import SyncdProcess, connect, converge, secondary_entry
from tests.support.replica import rows_by_id, secondary_rows

pytestmark = pytest.mark.integration

NAMES = ("archive", "analytics", "backup")


@pytest.fixture
def three(tmp_path: Path, engine: int) -> Iterator[list[ServerProcess]]:
    """Three secondaries served on loopback, stores that survive a restart."""
    servers = [
        ServerProcess(store=f"surrealkv://{tmp_path / name}", engine=engine) for name in NAMES
    ]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.thaw()
            server.stop()


async def events_daemon(
    tmp_path: Path, primary: ServerProcess, secondaries: dict[str, ServerProcess]
) -> tuple[Any, SyncdProcess]:
    """A primary connection with a feed on ``events``, and a started daemon replicating
    it to ``secondaries`` (priorities in the order given)."""
    db = await connect(primary.url)
    await db.query("DEFINE TABLE events CHANGEFEED 1d")
    entries = [secondary_entry(n, s, p) for p, (n, s) in enumerate(secondaries.items())]
    daemon = SyncdProcess(
        tmp_path, f"{primary.url}/rpc", None, secondaries=entries, tables={"events": {}}
    )
    daemon.start()
    return db, daemon


def status(daemon: SyncdProcess) -> dict[str, dict[str, Any]]:
    """``/status``'s secondaries by name."""
    code, body = daemon.http("/status")
    assert code == 200, body
    return {entry["name"]: entry for entry in json.loads(body)["secondaries"]}


def control(daemon: SyncdProcess, verb: str, name: str) -> None:
    """``syncd pause|resume --secondary NAME`` against the running daemon."""
    done = subprocess.run(
        [sys.executable, "-m", "syncd", verb, "-c", str(daemon.config), "--secondary", name],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def writer(db: Any, stop: anyio.Event, written: list[int]) -> None:
    """Create and update records until told to stop (40 hot records, then new ones)."""
    n = 0
    while not stop.is_set():
        i = n % 40 if n % 3 else 1000 + n
        await db.query("UPSERT $rid SET n = $n", {"rid": RecordID("events", i), "n": n})
        n += 1
        written[0] = n
        await anyio.sleep(0.01)


async def wait_for(predicate: Any, what: str, within: float = 60) -> None:
    """Until ``predicate()`` (sync) is true; fail naming ``what``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        await anyio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_three_secondaries_one_killed_one_frozen_one_paused_across_a_restart(
    tmp_path: Path, primary_server: ServerProcess, three: list[ServerProcess]
) -> None:
    archive, analytics, backup = three
    db, daemon = await events_daemon(tmp_path, primary_server, dict(zip(NAMES, three, strict=True)))
    try:
        daemon.wait_ready()
        stop, written = anyio.Event(), [0]
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer, db, stop, written)
            await wait_for(lambda: written[0] > 50, "the first writes")

            # archive killed: the other two keep up while it is down.
            archive.kill()
            await wait_for(lambda: not status(daemon)["archive"]["up"], "archive seen down")
            mark = written[0]
            await wait_for(lambda: written[0] > mark + 100, "writes while archive is down")
            await converge_now(db, analytics, backup)

            # analytics frozen too: backup alone keeps up.
            analytics.freeze()
            mark = written[0]
            await wait_for(lambda: written[0] > mark + 100, "writes while analytics is frozen")
            await converge_now(db, backup)

            # backup paused, then the daemon restarted: the pause holds across it.
            control(daemon, "pause", "backup")
            assert status(daemon)["backup"]["paused"] is True
            paused_at = written[0]
            await wait_for(lambda: written[0] > paused_at + 100, "writes while paused")
            assert daemon.terminate() == 0
            daemon.start()
            daemon.wait_ready()
            after = status(daemon)
            assert after["backup"]["paused"] is True and after["backup"]["paused_since"]
            held = await secondary_rows(f"{backup.url}/rpc", "events")
            # A batch in flight when the pause came may land; nothing later does.
            assert held and max(row["n"] for row in held.values()) < paused_at + 50

            # Back: archive restarted, analytics thawed; both catch up, backup stays paused.
            archive.restart()
            analytics.thaw()
            mark = written[0]
            await wait_for(lambda: written[0] > mark + 100, "writes after the outages")
            await converge_now(db, archive, analytics)
            assert status(daemon)["backup"]["paused"] is True

            control(daemon, "resume", "backup")
            stop.set()
        for server in three:
            await converge(db, f"{server.url}/rpc", "events", within=60)
        final = status(daemon)
        assert all(final[n]["up"] and not final[n]["paused"] for n in NAMES), final
        assert daemon.terminate() == 0
    finally:
        daemon.stop()
        await db.close()


async def converge_now(db: Any, *servers: ServerProcess) -> None:
    """Every one of ``servers`` catches up with the primary's ``events`` as they are now.

    Writes go on meanwhile, so a record may be newer there than the snapshot:
    each must reach at least the snapshot's ``n`` (they only grow).
    """
    expected = await rows_by_id(db, "events")
    for server in servers:
        deadline = time.monotonic() + 60
        behind: list[str] = list(expected)
        while behind and time.monotonic() < deadline:
            held = await secondary_rows(f"{server.url}/rpc", "events")
            behind = [k for k, row in expected.items() if held.get(k, {}).get("n", -1) < row["n"]]
            await anyio.sleep(0.2)
        assert not behind, f"{server.url}: {len(behind)} of {len(expected)} records behind"


def applied(daemon: SyncdProcess, name: str) -> float:
    """``syncd_operations_applied_total`` of secondary ``name``, over every table."""
    code, body = daemon.http("/metrics")
    assert code == 200
    prefix = "syncd_operations_applied_total{"
    return sum(
        float(line.split()[-1])
        for line in body.splitlines()
        if line.startswith(prefix) and f'secondary="{name}"' in line
    )


async def test_after_a_restart_each_secondary_skips_what_it_had_applied(
    tmp_path: Path, primary_server: ServerProcess, three: list[ServerProcess]
) -> None:
    archive, analytics, _ = three
    db, daemon = await events_daemon(
        tmp_path, primary_server, {"archive": archive, "analytics": analytics}
    )
    try:
        daemon.wait_ready()
        control(daemon, "pause", "analytics")
        for i in range(300):
            await db.upsert(RecordID("events", i), {"n": i})
        await converge(db, f"{archive.url}/rpc", "events")
        # The checkpoint keeps archive's own position, past the common (paused) one.
        await wait_for(
            lambda: (
                "archive"
                in json.loads((daemon.state / "checkpoint.json").read_text()).get("applied", {})
            ),
            "archive's own position in the checkpoint",
        )
        assert daemon.terminate() == 0
        daemon.start()
        daemon.wait_ready()
        control(daemon, "resume", "analytics")
        await converge(db, f"{analytics.url}/rpc", "events")
        # The feed was read again from analytics' position; archive took none of it again.
        assert applied(daemon, "analytics") >= 300
        assert applied(daemon, "archive") == 0
        assert daemon.terminate() == 0
    finally:
        daemon.stop()
        await db.close()
