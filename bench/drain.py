"""Scenario 2 — drain throughput: how fast syncd empties a backlog into the secondary.

A backlog of ``backlog`` operations is built while the secondary is stopped
(the queue holds ``queue_size`` in memory, the rest spills to the spool, as
in a real outage); then the secondary is started and the clock runs from the
moment syncd's connection is up until ``flush`` returns.

Against it, in the same rounds and on the same secondary (restarted empty
before every arm):

- the *limit*: the same records sent straight by one hand-batched
  ``FOR $r IN $rows { UPSERT $r.id CONTENT $r RETURN NONE }`` per 2,000 rows
  over one connection;
- the same limit with syncd's request encoder instead of the SDK's (a
  stricter limit, reported alongside: the SDK's pure-Python encoder slows
  the plain client);
- the *naive* baseline: one ``UPSERT`` per round trip (on fewer records: it
  is slow; its rate is what matters).

Other worker and batch settings run in the same rounds, to find the best.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.lowlevel

from bench.common import (
    RECORD_SHAPE,
    Result,
    Target,
    count_rows,
    direct_secondary,
    median,
    ratio,
    record,
    replicator,
    scratch_dir,
    secondary_process,
    send_limit,
    send_naive,
)
from tests.support.server import ServerProcess

DEFAULT = (4, 100)
_CAPTURE_CHUNK = 1000


def rotated(rounds: int, arms: Sequence[str]) -> list[tuple[int, str]]:
    """Each round runs every arm, the order rotated and reversed round by round."""
    plan: list[tuple[int, str]] = []
    for index in range(rounds):
        shift = index % len(arms)
        order = list(arms[shift:]) + list(arms[:shift])
        if index % 2:
            order.reverse()
        plan.extend((index, arm) for arm in order)
    return plan


def arm_name(workers: int, batch: int) -> str:
    """The name of a syncd arm in the results."""
    return f"syncd_w{workers}_b{batch}"


async def drain_once(
    server: ServerProcess, table: str, backlog: int, workers: int, batch: int
) -> dict[str, float]:
    """Build a backlog with the secondary stopped, start it, time the drain."""
    server.stop()
    with scratch_dir("drain") as state:
        rep = replicator(state, server.url, sync_workers=workers, sync_batch_size=batch)
        async with rep:
            for start in range(0, backlog, _CAPTURE_CHUNK):
                rows = (
                    record(table, n) for n in range(start, min(backlog, start + _CAPTURE_CHUNK))
                )
                rep.capture(rows)
                await anyio.lowlevel.checkpoint()
            await anyio.sleep(0.2)  # let the spill writer hand its buffer to the spool
            spooled, in_memory = rep.spool_depth, rep.queue_depth
            server.start()
            listening = anyio.current_time()
            with anyio.fail_after(60):
                await rep.secondary.wait_up()
            up = anyio.current_time()
            with anyio.fail_after(600):
                await rep.flush(timeout=600)
            done = anyio.current_time()
    async with direct_secondary(server.url) as db:
        arrived = await count_rows(db, table)
    if arrived != backlog:
        raise RuntimeError(f"drain: {arrived} of {backlog} records reached the secondary")
    return {
        "seconds": done - up,
        "reconnect_seconds": up - listening,
        "spooled_at_start": float(spooled),
        "in_memory_at_start": float(in_memory),
    }


async def run(
    *, rounds: int, backlog: int, naive_records: int, settings: Sequence[tuple[int, int]]
) -> Result:
    """Interleave limit, naive and every ``(workers, batch)`` setting, ``rounds`` times."""
    result = Result("drain", "Drain throughput vs the hand-batched limit")
    syncd_arms = {arm_name(w, b): (w, b) for w, b in [DEFAULT, *settings]}
    arms = ["limit", "limit_fast_client", "naive", *syncd_arms]
    rates: dict[str, list[float]] = {arm: [] for arm in arms}
    extra: dict[str, list[float]] = {"reconnect_seconds": [], "spooled_at_start": []}
    with secondary_process() as server:
        for index, arm in rotated(rounds, arms):
            table = f"d_{arm}_{index}"
            if arm.startswith("limit"):
                server.restart()
                fast = arm == "limit_fast_client"
                seconds = await send_limit(server.url, table, 0, backlog, fast_client=fast)
                rates[arm].append(backlog / seconds)
            elif arm == "naive":
                server.restart()
                seconds = await send_naive(server.url, table, 0, naive_records)
                rates[arm].append(naive_records / seconds)
            else:
                workers, batch = syncd_arms[arm]
                out = await drain_once(server, table, backlog, workers, batch)
                rates[arm].append(backlog / out["seconds"])
                if (workers, batch) == DEFAULT:
                    extra["reconnect_seconds"].append(out["reconnect_seconds"])
                    extra["spooled_at_start"].append(out["spooled_at_start"])
    f = result.figures
    limit = median(rates["limit"])
    f["limit_records_per_s"] = limit
    f["limit_fast_client_records_per_s"] = median(rates["limit_fast_client"])
    f["naive_records_per_s"] = median(rates["naive"])
    for arm in syncd_arms:
        f[f"{arm}_records_per_s"] = median(rates[arm])
        f[f"{arm}_ratio"] = ratio(median(rates[arm]), limit)
    default = arm_name(*DEFAULT)
    f["default_ratio"] = f[f"{default}_ratio"]
    f["speedup_over_naive"] = ratio(f[f"{default}_records_per_s"], f["naive_records_per_s"])
    best = max(syncd_arms, key=lambda a: f[f"{a}_records_per_s"])
    f["best_ratio"] = f[f"{best}_ratio"]
    f["default_ratio_to_fast_client_limit"] = ratio(
        f[f"{default}_records_per_s"], f["limit_fast_client_records_per_s"]
    )
    f["best_ratio_to_fast_client_limit"] = ratio(
        f[f"{best}_records_per_s"], f["limit_fast_client_records_per_s"]
    )
    f["reconnect_seconds"] = median(extra["reconnect_seconds"])
    result.setup = {
        "backlog_records": backlog,
        "naive_records": naive_records,
        "rounds": rounds,
        "record": RECORD_SHAPE,
        "settings": [{"workers": w, "batch": b, "arm": a} for a, (w, b) in syncd_arms.items()],
        "default": {"workers": DEFAULT[0], "batch": DEFAULT[1]},
        "best": {"workers": syncd_arms[best][0], "batch": syncd_arms[best][1], "arm": best},
        "queue_size": 10000,
        "spooled_at_start": median(extra["spooled_at_start"]),
        "secondary": "devserver process on 127.0.0.1 (mem://), restarted empty for every arm",
        "clock": "from syncd's connection up to flush() returning",
        "limit": f"one FOR ... UPSERT per 2,000 rows, one connection ({backlog} records)",
        "limit_fast_client": "the same, the request encoded by syncd's encoder, not the SDK's",
    }
    result.notes.append(
        f"best setting: {syncd_arms[best][0]} workers, batch {syncd_arms[best][1]} "
        f"({f[f'{best}_ratio']:.2f}x the limit; default {f['default_ratio']:.2f}x)"
    )
    result.targets = [Target("default_ratio", ">=", 0.8)]
    return result
