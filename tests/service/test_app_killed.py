"""An application killed at a random moment loses no acknowledged write (library mode).

A child process (:mod:`tests.support.app`) writes through ``rep.wrap(db)`` and
prints every write its primary acknowledged; the test kills it (SIGKILL, or
SIGTERM with no handler: no ``finally``, no drain), brings the secondary back,
starts a new Replicator on the same ``state_dir``, flushes, and checks the
secondary record by record.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.service.replicator import Replicator
from tests.support.replica import make_config, secondary_rows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]


class Acks:
    """What the application printed: acknowledged writes."""

    def __init__(self) -> None:
        self.events: list[int] = []
        self.hot: dict[int, int] = {}  # key -> newest acknowledged n

    def feed(self, line: str) -> None:
        parts = line.split()
        if parts[:1] == ["e"]:
            self.events.append(int(parts[1]))
        elif parts[:1] == ["h"]:
            self.hot[int(parts[1])] = int(parts[2])


def run_and_kill(
    tmp_path: Path, url: str, sig: signal.Signals, after: int, config: dict[str, object]
) -> Acks:
    """Start the application, let it acknowledge ``after`` writes, kill it with ``sig``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.app", str(tmp_path), url, json.dumps(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    acks = Acks()
    assert proc.stdout is not None
    fd, buffer, ready = proc.stdout.fileno(), b"", False
    deadline = time.monotonic() + 60
    try:
        while len(acks.events) < after:
            assert time.monotonic() < deadline, "the application did not write in time"
            if not select.select([fd], [], [], 1.0)[0]:
                continue
            chunk = os.read(fd, 65536)
            assert chunk, f"the application exited early ({proc.poll()})"
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                ready = ready or line == b"ready"
                acks.feed(line.decode())
        proc.send_signal(sig)
        # Whatever it printed before dying was acknowledged too.
        rest = buffer + proc.stdout.read()
        for line in rest.split(b"\n"):
            acks.feed(line.decode())
        assert proc.wait(30) == -sig, "the application was not killed by the signal"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert ready
    return acks


async def check_secondary(url: str, acks: Acks) -> dict[str, int]:
    """Assert every acknowledged write is on the secondary; return counts for the report."""
    events = await secondary_rows(url, "events")
    missing = [n for n in acks.events if f"events:{n}" not in events]
    assert not missing, f"{len(missing)} of {len(acks.events)} acknowledged writes lost"
    for n in acks.events:
        row = events[f"events:{n}"]
        assert row["n"] == n and len(row["text"]) == 150, f"events:{n} differs"
    hot = await secondary_rows(url, "hot")
    for key, n in acks.hot.items():
        # A write after the last acknowledged one may have landed too, never an older one.
        assert hot[f"hot:{key}"]["n"] >= n, f"hot:{key} went back in time"
    return {"acknowledged": len(acks.events), "on_secondary": len(events)}


@pytest.mark.parametrize(
    ("sig", "secondary", "config"),
    [
        (signal.SIGKILL, "down", {}),
        (signal.SIGTERM, "down", {}),
        (signal.SIGKILL, "frozen", {}),
        (signal.SIGKILL, "up", {}),
        # A small memory window: most of the backlog is only on disk, read back in order.
        (signal.SIGKILL, "down", {"queue_size": 100}),
        (signal.SIGKILL, "up", {"queue_size": 100, "sync_workers": 1}),
    ],
    ids=["kill-down", "term-down", "kill-frozen", "kill-up", "kill-down-window", "kill-up-window"],
)
async def test_killed_application_loses_no_acknowledged_write(
    tmp_path: Path,
    secondary_server: ServerProcess,
    sig: signal.Signals,
    secondary: str,
    config: dict[str, object],
) -> None:
    seed = random.randrange(1 << 30)
    after = random.Random(seed).randint(300, 3000)
    if secondary == "down":
        secondary_server.stop()
    elif secondary == "frozen":
        secondary_server.freeze()
    try:
        acks = run_and_kill(tmp_path, secondary_server.url, sig, after, config)
    finally:
        secondary_server.thaw()
    if secondary == "down":
        secondary_server.start()
    config = make_config(tmp_path, secondary_server.url)
    async with Replicator(config, registry=CollectorRegistry()) as rep:
        await rep.flush(timeout=90)
    counts = await check_secondary(secondary_server.url, acks)
    print(json.dumps({"seed": seed, "signal": sig.name, "secondary": secondary, **counts}))
