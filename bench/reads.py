"""Scenario 5 — merged reads: ``select`` through the wrapper vs the primary alone.

The table holds the same ``rows`` records on both databases (written through
the wrapper and flushed), so the merge deduplicates every row: the worst case
for the merge, and the steady state of a replica. Rounds alternate the arms.

Then the secondary is frozen (SIGSTOP: the port accepts, nothing answers) and
merged reads are timed against ``query_timeout``: they must come back with the
primary's rows alone, at the timeout and not much later.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import (
    RECORD_SHAPE,
    Result,
    Target,
    config_summary,
    interleaved,
    median,
    ratio,
    record,
    replicator,
    scratch_dir,
    secondary_process,
)
from tests.support.replica import embedded_primary

ARMS = ("primary_only", "merged")


async def run(*, rows: int, rounds: int, frozen_reads: int, query_timeout: float) -> Result:
    """Time ``rounds`` reads per arm, then ``frozen_reads`` with a frozen secondary."""
    result = Result("reads", f"Merged select of {rows} rows vs primary-only")
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    frozen: list[float] = []
    with secondary_process() as server, scratch_dir("reads") as state:
        rep = replicator(state, server.url, query_timeout=f"{query_timeout}s")
        async with embedded_primary() as primary, rep:
            wrapped = rep.wrap(primary)
            for start in range(0, rows, 500):
                await wrapped.insert("r", [record("r", n) for n in range(start, start + 500)])
            await rep.flush(timeout=60)
            readers: dict[str, Any] = {"primary_only": primary, "merged": wrapped}
            for _, arm in interleaved(2, ARMS):  # warm-up, not counted
                await readers[arm].select("r")
            for _, arm in interleaved(rounds, ARMS):
                started = time.perf_counter()
                got = await readers[arm].select("r")
                times[arm].append(time.perf_counter() - started)
                if len(got) != rows:
                    raise RuntimeError(f"{arm} read returned {len(got)} rows, not {rows}")
            outcomes_before = rep.metrics.snapshot()["merged_reads"]
            server.freeze()
            try:
                for _ in range(frozen_reads):
                    started = time.perf_counter()
                    got = await wrapped.select("r")
                    frozen.append(time.perf_counter() - started)
                    if len(got) != rows:
                        raise RuntimeError(f"frozen read returned {len(got)} rows")
            finally:
                server.thaw()
            merged_total = rep.metrics.snapshot()["merged_reads"] - outcomes_before
            setup = config_summary(rep.config)
    f = result.figures
    f["primary_only_median_ms"] = median(times["primary_only"]) * 1e3
    f["merged_median_ms"] = median(times["merged"]) * 1e3
    f["merged_ratio"] = ratio(f["merged_median_ms"], f["primary_only_median_ms"])
    per_round = [ratio(m, p) for p, m in zip(times["primary_only"], times["merged"], strict=True)]
    f["merged_ratio_of_rounds"] = median(per_round)
    f["frozen_max_s"] = max(frozen)
    f["frozen_median_s"] = median(frozen)
    f["frozen_ratio_to_timeout"] = ratio(max(frozen), query_timeout)
    f["frozen_reads"] = float(merged_total)
    result.setup = {
        "rows": rows,
        "rounds": rounds,
        "record": RECORD_SHAPE,
        "overlap": "every row on both databases (all deduplicated)",
        "frozen": f"secondary SIGSTOPped, {frozen_reads} merged reads, worst one reported",
        **setup,
    }
    result.targets = [
        Target("merged_ratio", "<=", 1.5),
        Target("frozen_ratio_to_timeout", "<=", 1.1),
    ]
    return result
