"""Scenario 6 — memory: peak RSS while a large backlog builds during an outage.

Runs in a child process (``python -m bench.memory --child ...``) so the
resident set is syncd's own: the child starts a Replicator whose secondary is
a closed port on 127.0.0.1 (an outage from the first second), then enqueues
``ops`` operations through ``Replicator.capture`` — the wrapper's path once
the primary has answered; the primary is left out so its own memory does not
count — in chunks of 1,000, yielding to the event loop between chunks as an
application's writes would. The queue holds ``queue_size`` operations in
memory; the rest must go to the spool. The peak is the kernel's ``VmHWM``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

from bench.common import RECORD_SHAPE, Result, Target, ratio, record, replicator, scratch_dir

_CHUNK = 1000


def _status_kb(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def _spool_payload_bytes(spool: Path) -> int:
    """Bytes of the spool's segment files, less their 16-byte headers: frames only."""
    segments = list(spool.glob("seg-*.spool"))
    return sum(p.stat().st_size for p in segments) - 16 * len(segments)


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _child(ops: int, state: Path, port: int) -> dict[str, Any]:
    rep = replicator(state, f"ws://127.0.0.1:{port}", connect_timeout="500ms")
    async with rep:
        baseline_kb = _status_kb("VmRSS")
        started = time.perf_counter()
        for start in range(0, ops, _CHUNK):
            rep.fanout.capture(record("m", n) for n in range(start, min(ops, start + _CHUNK)))
            await anyio.lowlevel.checkpoint()
        enqueue_seconds = time.perf_counter() - started
        out = {
            "baseline_rss_kb": baseline_kb,
            "peak_rss_kb": _status_kb("VmHWM"),
            "rss_kb": _status_kb("VmRSS"),
            "in_memory": rep.fanout.queue_depth,
            "spooled": rep.fanout.spool_depth,
            "spool_bytes": _spool_payload_bytes(state / "spool"),
            "enqueue_seconds": enqueue_seconds,
            "queue_size": rep.config.queue_size,
        }
    return out


def child_main(argv: list[str]) -> int:
    """Entry point of the child process; prints one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--child", action="store_true", required=True)
    parser.add_argument("--ops", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from syncd.logs import configure_logging

    configure_logging("error", json=False)
    out = anyio.run(_child, args.ops, args.state, args.port)
    print(json.dumps(out), flush=True)
    return 0


def run(*, ops: int) -> Result:
    """Run the child with ``ops`` operations and report its peak RSS and the spool's size."""
    result = Result("memory", f"Peak RSS while a {ops:,}-operation backlog builds")
    with scratch_dir("memory") as state:
        cmd = [sys.executable, "-m", "bench.memory", "--child", "--ops", str(ops)]
        cmd += ["--state", str(state / "state"), "--port", str(closed_port())]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=900, cwd=Path(__file__).parent.parent
        )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child exited {proc.returncode}: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    f = result.figures
    f["peak_rss_mb"] = out["peak_rss_kb"] / 1024
    f["baseline_rss_mb"] = out["baseline_rss_kb"] / 1024
    f["growth_mb"] = (out["peak_rss_kb"] - out["baseline_rss_kb"]) / 1024
    f["spooled"] = float(out["spooled"])
    f["in_memory"] = float(out["in_memory"])
    # Every operation is written ahead to the spool, those held in memory too.
    f["spool_bytes_per_op"] = ratio(out["spool_bytes"], out["spooled"] + out["in_memory"])
    f["enqueue_us_per_op"] = out["enqueue_seconds"] / ops * 1e6
    result.setup = {
        "operations": ops,
        "record": RECORD_SHAPE,
        "queue_size": out["queue_size"],
        "enqueue": "Replicator.capture in chunks of 1,000 (the wrapper's path), secondary down",
        "process": "a child process of its own; peak = VmHWM of /proc/self/status",
    }
    result.targets = [Target("peak_rss_mb", "<=", 250.0)]
    return result


if __name__ == "__main__":
    sys.stdout.flush()
    code = child_main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)
