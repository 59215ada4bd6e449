"""The application's share of a wrapped write: ``rep.fanout.capture([record])``, secondary down.

``python -m bench.capture_cost [--calls N] [--rounds R]`` times ``N`` calls of
``rep.fanout.capture([row])`` with one ~230-byte record each (what the wrapper does
after the primary answered), with nothing listening at the secondary's URL,
so every operation stays in syncd: memory, then the spool. Prints one JSON
line: the median over rounds of the mean cost per call, and p50/p99 of the
single calls. Default settings otherwise (``queue_size`` 10,000).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import anyio.lowlevel
from prometheus_client import CollectorRegistry

from bench.common import record
from syncd.service.replicator import Replicator
from tests.support.replica import dead_url, make_config


async def one_round(calls: int) -> tuple[float, list[float]]:
    """Mean seconds per call over ``calls`` captures, and every call's own time."""
    with tempfile.TemporaryDirectory(prefix="syncd-capture-") as scratch:
        config = make_config(Path(scratch), dead_url(), drain_timeout="10ms")
        rows = [record("bench", n) for n in range(calls)]
        single: list[float] = []
        async with Replicator(config, registry=CollectorRegistry()) as rep:
            clock = time.perf_counter
            started = clock()
            for row in rows:
                t0 = clock()
                rep.fanout.capture([row])
                single.append(clock() - t0)
                if len(single) % 200 == 0:
                    await (
                        anyio.lowlevel.checkpoint()
                    )  # an application yields to the loop now and then
            total = clock() - started
        return total / calls, single


async def main(calls: int, rounds: int) -> None:
    """Run ``rounds`` rounds and print the figures."""
    means: list[float] = []
    singles: list[float] = []
    for _ in range(rounds):
        mean, single = await one_round(calls)
        means.append(mean)
        singles.extend(single)
    singles.sort()
    print(
        json.dumps(
            {
                "calls_per_round": calls,
                "rounds": rounds,
                "mean_us_per_call": round(statistics.median(means) * 1e6, 1),
                "p50_us": round(singles[len(singles) // 2] * 1e6, 1),
                "p99_us": round(singles[int(len(singles) * 0.99)] * 1e6, 1),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    anyio.run(main, args.calls, args.rounds)
