"""The blocking library's cost to a write: ``BlockingReplicator.wrap`` vs the bare connection.

Not one of the suite's scenarios (``python -m bench``): run it alone,
``python -m bench.blocking_cost [writes] [rounds]``. One blocking embedded
primary, a secondary in a devserver process; rounds alternate the arms' order
and the replicator is flushed between arms. Besides each arm's latency
(median of the rounds' p50 and p99), the application thread's own CPU time
per write is reported: on a loaded machine it is the steadier figure.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from surrealdb import RecordID, Surreal

from syncd import BlockingReplicator
from syncd.dev.process import DevServerProcess
from tests.support.replica import make_config


def arm(db: Any, tag: str, writes: int) -> tuple[float, float, float]:
    """(p50 µs, p99 µs, thread CPU µs per write) of ``writes`` sequential upserts."""
    took: list[int] = []
    cpu = time.thread_time_ns()
    for i in range(writes):
        start = time.perf_counter_ns()
        db.upsert(RecordID("events", f"{tag}{i % 500}"), {"n": i, "text": "x" * 200})
        took.append(time.perf_counter_ns() - start)
    cpu = time.thread_time_ns() - cpu
    took.sort()
    return took[len(took) // 2] / 1e3, took[int(len(took) * 0.99)] / 1e3, cpu / writes / 1e3


def main(writes: int = 2000, rounds: int = 5) -> None:
    """Print each arm's medians and the wrapped ÷ bare ratios."""
    server = DevServerProcess(store="mem://", engine=2)
    server.start()
    primary: Any = Surreal("mem://")
    primary.connect()
    primary.use("app", "main")
    results: dict[str, list[tuple[float, float, float]]] = {"bare": [], "wrapped": []}
    try:
        config = make_config(Path(tempfile.mkdtemp()), server.url)
        with BlockingReplicator(config, registry=CollectorRegistry()) as rep:
            arms = {"bare": primary, "wrapped": rep.wrap(primary)}
            for name, db in arms.items():
                arm(db, f"warm{name}", writes // 4)
            for r in range(rounds):
                for name in ("bare", "wrapped") if r % 2 == 0 else ("wrapped", "bare"):
                    results[name].append(arm(arms[name], name, writes))
                    rep.flush(timeout=120)
    finally:
        primary.close()
        server.stop()
    figures = {
        name: [statistics.median(r[i] for r in rows) for i in range(3)]
        for name, rows in results.items()
    }
    for name, (p50, p99, cpu) in figures.items():
        print(f"{name:8} p50 {p50:8.1f} µs  p99 {p99:8.1f} µs  thread CPU {cpu:7.1f} µs/write")
    bare, wrapped = figures["bare"], figures["wrapped"]
    print(
        f"wrapped / bare: p50 {wrapped[0] / bare[0]:.2f}x  p99 {wrapped[1] / bare[1]:.2f}x  "
        f"thread CPU {wrapped[2] / bare[2]:.2f}x"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
