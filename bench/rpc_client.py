"""``python -m bench.rpc_client``: syncd's RpcClient against the SDK's WebSocket client.

Both talk to one devserver process (``mem://``), in interleaved rounds (A B,
B A, ...), reduced by the median, as the rest of the suite does. Figures:

- round trip: one ``RETURN 1`` query, sequential (microseconds per call);
- batch upsert: one ``FOR $r IN $rows { UPSERT ... }`` of 2,000 rows
  (about 230 bytes each), fresh ids every round (milliseconds per batch);
- batch read: ``SELECT *`` of those 2,000 rows (milliseconds).

Wall time includes the server's work (the same for both clients) and is at
the mercy of a shared machine; the client's own CPU time per call
(``*_cpu_ms``, ``time.process_time`` of this process) is what the client
changes, and is steady.

    python -m bench.rpc_client [--rounds 10] [--calls 300]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from bench.common import (
    LIMIT_CHUNK,
    LIMIT_QUERY,
    direct_secondary,
    interleaved,
    median,
    percentile,
    records,
    secondary_process,
)

ARMS = ("sdk", "rpc")


async def _timed(fn: Callable[[], Awaitable[Any]], cpu: list[float] | None = None) -> float:
    started, started_cpu = time.perf_counter(), time.process_time()
    with anyio.fail_after(120):
        await fn()
    if cpu is not None:
        cpu.append(time.process_time() - started_cpu)
    return time.perf_counter() - started


async def run(rounds: int, calls: int) -> dict[str, float]:
    """Measure both clients; returns the figures by name."""
    trips: dict[str, list[float]] = {arm: [] for arm in ARMS}
    upserts: dict[str, list[float]] = {arm: [] for arm in ARMS}
    reads: dict[str, list[float]] = {arm: [] for arm in ARMS}
    upsert_cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    read_cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    with secondary_process() as server:
        async with (
            direct_secondary(server.url) as sdk,
            direct_secondary(server.url, rpc=True) as rpc,
        ):
            clients = {"sdk": sdk, "rpc": rpc}
            for index, arm in interleaved(rounds, ARMS):
                db = clients[arm]
                for _ in range(calls):
                    trips[arm].append(await _timed(lambda db=db: db.query("RETURN 1")))
                table = f"{arm}_{index}"
                rows = records(table, 0, LIMIT_CHUNK)
                upserts[arm].append(
                    await _timed(
                        lambda db=db, rows=rows: db.query_raw(LIMIT_QUERY, {"rows": rows}),
                        upsert_cpu[arm],
                    )
                )
                sql = f"SELECT * FROM {table}"
                reads[arm].append(await _timed(lambda db=db, sql=sql: db.query(sql), read_cpu[arm]))
    figures: dict[str, float] = {}
    for arm in ARMS:
        figures[f"{arm}_round_trip_p50_us"] = median(trips[arm]) * 1e6
        figures[f"{arm}_round_trip_p99_us"] = percentile(trips[arm], 99) * 1e6
        figures[f"{arm}_upsert_2000_ms"] = median(upserts[arm]) * 1e3
        figures[f"{arm}_select_2000_ms"] = median(reads[arm]) * 1e3
        figures[f"{arm}_upsert_2000_cpu_ms"] = median(upsert_cpu[arm]) * 1e3
        figures[f"{arm}_select_2000_cpu_ms"] = median(read_cpu[arm]) * 1e3
    return figures


def main() -> None:
    """Parse the options, run, print one line per figure."""
    parser = argparse.ArgumentParser(prog="python -m bench.rpc_client", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds per client")
    parser.add_argument("--calls", type=int, default=300, help="round trips per round")
    args = parser.parse_args()
    figures = anyio.run(run, args.rounds, args.calls)
    for name, value in figures.items():
        print(f"{name:28} {value:10.1f}")
    ratios = ("round_trip_p50_us", "upsert_2000_ms", "select_2000_ms")
    for what in (*ratios, "upsert_2000_cpu_ms", "select_2000_cpu_ms"):
        print(f"{'sdk/rpc ' + what:28} {figures[f'sdk_{what}'] / figures[f'rpc_{what}']:10.2f}x")


if __name__ == "__main__":
    main()
