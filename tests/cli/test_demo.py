"""``syncd demo`` end to end, as CI runs it: no terminal, then interrupted with Ctrl-C."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncd.dev.demo import Timeline
from tests.support.tools import syncd

SAMPLE_LINE = re.compile(r"^\s*\d+\.\ds  writes\s+\d+", re.MULTILINE)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def children_and_workdir(output: str) -> tuple[list[int], Path]:
    """The devserver pids the demo reported, and its temporary directory."""
    pids = [int(p) for p in re.findall(r"\bpid (\d+)", output)]
    store = re.search(r"\(store (\S+)/secondary\)", output)
    assert pids and store, output
    return pids, Path(store[1])


def test_timeline_kills_a_third_in_and_restarts_before_the_end() -> None:
    for duration in (5.0, 8.0, 20.0, 50.0):
        t = Timeline.for_duration(duration)
        assert 0 < t.kill_at < t.restart_at < t.end_at == duration
        assert 2.0 <= t.restart_at - t.kill_at <= 5.0 or t.restart_at == 0.8 * duration


@pytest.mark.integration
@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["2", "3"])
def test_demo_without_a_terminal_prints_plain_lines_and_leaves_nothing(
    tmp_path: Path, engine: str
) -> None:
    result = syncd("demo", "--duration", "6", "--engine", engine, cwd=tmp_path, timeout=100)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in result.stderr
    assert "\x1b[" not in out  # no live view, no colours: plain lines
    assert len(SAMPLE_LINE.findall(out)) >= 4  # about one a second
    for event in (
        ">> secondary killed (SIGKILL, pid",
        ">> secondary restarted on the same port",
        "backlog drained",
        "the secondary keeps them",
        "primary and secondary agree",
    ):
        assert event in out, out
    assert re.search(r"metrics were served at http://127\.0\.0\.1:\d+/metrics", out)
    assert re.search(r"events\s+│\s+\d+\s+│\s+0\s+│\s+0\s+│\s+5\s+│\s+ok", out), out
    pids, workdir = children_and_workdir(out)
    # The first secondary and its restart (and, on 3.x, the served primary).
    assert len(set(pids)) == (2 if engine == "2" else 3), out
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
