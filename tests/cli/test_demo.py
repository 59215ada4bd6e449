"""``syncd demo`` end to end, as CI runs it, on both engines: no terminal, then interrupted
with Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from syncd.dev.demo import SECONDARIES, demo_config
from syncd.dev.demoplan import Timeline
from tests.support.tools import syncd

SAMPLE_LINE = re.compile(r"^\s*\d+\.\ds  writes\s+\d+", re.MULTILINE)
SECONDARY_LINE = re.compile(r"^ {8}(archive|analytics) +(up|DOWN|PAUSED) +applied", re.MULTILINE)
VERIFIED_EVENTS = re.compile(r"events\s+│\s+(\d+)\s+│\s+0\s+│\s+0\s+│\s+5\s+│\s+ok")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def children_and_workdir(output: str) -> tuple[list[int], Path]:
    """The devserver pids the demo reported, and its temporary directory."""
    pids = [int(p) for p in re.findall(r"\bpid (\d+)", output)]
    workdir = re.search(r"^workdir: (\S+)$", output, re.MULTILINE)
    assert pids and workdir, output
    return pids, Path(workdir[1])


def summary_of(output: str) -> dict[str, Any]:
    """The demo's ``summary: {...}`` line."""
    lines = [line for line in output.splitlines() if line.startswith("summary: ")]
    assert len(lines) == 1, output
    data: dict[str, Any] = json.loads(lines[0].removeprefix("summary: "))
    return data


def test_timeline_kills_pauses_then_restarts_and_resumes_before_the_end() -> None:
    for duration in (5.0, 8.0, 20.0, 50.0):
        t = Timeline.for_duration(duration)
        # The pause falls inside the kill's outage: a while with neither applied to.
        assert 0 < t.kill_at < t.pause_at < t.restart_at < t.resume_at < t.end_at == duration
        assert t.end_at - t.resume_at >= 0.25 * duration  # time left to drain under load


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["2", "3"])
def test_demo_kills_one_secondary_pauses_the_other_and_both_end_equal_to_the_primary(
    tmp_path: Path, engine: str
) -> None:
    result = syncd("demo", "--duration", "6", "--engine", engine, cwd=tmp_path, timeout=100)
    config = demo_config({name: "ws://127.0.0.1:1" for name, _ in SECONDARIES}, "-", tmp_path)
    in_flight = config.sync_workers * config.sync_batch_size
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in result.stderr
    assert "\x1b[" not in out  # no live view, no colours: plain lines
    assert len(SAMPLE_LINE.findall(out)) >= 4  # about one a second
    states = SECONDARY_LINE.findall(out)  # a line per secondary under each sample
    assert len(states) == 2 * len(SAMPLE_LINE.findall(out)), out
    assert ("archive", "DOWN") in states and ("analytics", "PAUSED") in states, out
    for event in (
        ">> archive killed (SIGKILL, pid",
        '>> analytics paused (rep.pause(secondary="analytics"))',
        ">> archive restarted on the same port",
        '>> analytics resumed (rep.resume("analytics"))',
        ">> archive drained",
        ">> analytics drained",
        "the primary's row wins",
        "the secondaries keep them",
        "archive: equal to the primary, record by record",
        "analytics: equal to the primary, record by record",
        "every secondary equals the primary",
    ):
        assert event in out, out
    assert re.search(r"metrics were served at http://127\.0\.0\.1:\d+/metrics", out)

    summary = summary_of(out)
    writes = summary["writes"]
    # What the workload wrote, worked out here: odd writes save one of 140
    # notes (7 users x 40 keys, odd i only), even ones create an event; five
    # events are deleted. Plus the probe note the merged read looks at.
    assert writes > 280, out
    assert summary["primary_records"] == {"kv_memories": 141, "events": writes // 2 - 5}, out
    assert summary["flushed"] is True
    assert [s["name"] for s in summary["secondaries"]] == ["archive", "analytics"]
    for s in summary["secondaries"]:
        assert s["equal"] is True, s
        for table, expected in summary["primary_records"].items():
            tally = s["tables"][table]
            assert tally["primary_records"] == expected, (s["name"], table, tally)
            assert tally["missing"] == tally["differing"] == 0, (s["name"], table, tally)
        assert s["tables"]["events"]["extra"] == 5  # the deleted events: kept, an archive
        # Most of what was written during the outage waited, then drained: only
        # batches already sent when it began may finish during it (the pause and
        # the kill hold the rest), however slow a loaded machine makes them.
        assert s["applied_during_outage"] <= in_flight, s
        assert s["peak_backlog"] > s["applied_during_outage"], s
        assert s["drain_seconds"] is not None and s["drain_seconds"] >= 0, s
    archive, analytics = summary["secondaries"]
    assert (archive["outage"], analytics["outage"]) == ("killed", "paused")
    # The demo holds 500 operations in memory (queue_size): a backlog that
    # outgrew them went to disk. On a loaded machine fewer writes may be made
    # during the outage; then memory alone held them, which says nothing wrong.
    if archive["peak_backlog"] > 500:
        assert archive["peak_spool"] > 0, archive
    # Both tables' verification, once per secondary, in the printed tables too.
    assert VERIFIED_EVENTS.findall(out) == [str(writes // 2 - 5)] * 2, out

    read = summary["merged_read"]
    assert read["ok"] is True and read["rows"] == 1, read
    assert (read["text"], read["paused_text"]) == ("v2", "v1"), read  # the primary's row won
    assert read["outcomes"]["analytics"] == "merged", read
    assert read["outcomes"]["archive"].startswith("primary_only"), read  # down: left out

    pids, workdir = children_and_workdir(out)
    # Both secondaries and archive's restart (and, on 3.x, the served primary).
    assert len(set(pids)) == (3 if engine == "2" else 4), out
    assert not any(alive(pid) for pid in pids)
    assert not workdir.exists()  # the temporary directory is gone


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_ctrl_c_stops_the_child_and_cleans_up(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "demo", "--duration", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + 60
    try:
        # Interrupt once the workload runs: a sample line after the first.
        while len(SAMPLE_LINE.findall(seen.decode())) < 2:
            assert time.monotonic() < deadline, seen.decode()
            if select.select([proc.stdout], [], [], 1.0)[0]:
                chunk = os.read(proc.stdout.fileno(), 4096)
                assert chunk, seen.decode()
                seen += chunk
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = (seen + rest).decode()
    assert proc.returncode == 130, out + err.decode()
    assert "Traceback" not in err.decode()
    pids, workdir = children_and_workdir(out)
    assert not any(alive(pid) for pid in pids)
    assert not workdir.exists()
