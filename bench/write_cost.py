"""Scenario 1 — cost to the application: a write through ``rep.wrap`` vs straight to the primary.

Both arms write single records, one after the other, to the same embedded
primary, in the same process, while the replicator runs (connected to a live
secondary). The bare arm calls the SDK connection; the wrapped arm calls the
wrapper, so it also pays for capture, the queue, and the workers sharing the
event loop to ship the writes. Rounds alternate the arms' order; between
arms the replicator is flushed, so neither arm inherits the other's backlog.

Besides latency, each arm's CPU time is counted (this process, flush
included), and the secondary's: here the secondary runs on the same two cores
as the application, which a production secondary does not.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from surrealdb import RecordID

from bench.common import (
    RECORD_SHAPE,
    Result,
    Target,
    config_summary,
    content,
    interleaved,
    median,
    percentile,
    ratio,
    replicator,
    scratch_dir,
    secondary_process,
)
from tests.support.replica import embedded_primary

ARMS = ("bare", "wrapped")


def process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of stat (utime, stime), counted after the ")" of the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(*, rounds: int, writes: int) -> Result:
    """``rounds`` rounds of ``writes`` sequential single-record upserts per arm."""
    result = Result("write_cost", "Cost to the application (write latency)")
    latencies: dict[str, list[float]] = {arm: [] for arm in ARMS}
    round_medians: dict[str, list[float]] = {arm: [] for arm in ARMS}
    # CPU seconds per arm: this process (the application and syncd), and the
    # secondary's process, which shares this machine's two cores here.
    own_cpu: dict[str, float] = dict.fromkeys(ARMS, 0.0)
    secondary_cpu: dict[str, float] = dict.fromkeys(ARMS, 0.0)
    with secondary_process() as server, scratch_dir("write") as state:
        rep = replicator(state, server.url)
        async with embedded_primary() as primary, rep:
            wrapped = rep.wrap(primary)
            targets: dict[str, Any] = {"bare": primary, "wrapped": wrapped}
            # Warm both paths (first calls compile queries, open the socket).
            for n in range(50):
                await primary.upsert(RecordID("warm_bare", n), content(n))
                await wrapped.upsert(RecordID("warm_wrapped", n), content(n))
            await rep.flush(timeout=60)
            for index, arm in interleaved(rounds, ARMS):
                db = targets[arm]
                table = f"w_{arm}"
                sample: list[float] = []
                base = index * writes
                cpu, server_cpu = time.process_time(), process_cpu(server.pid)
                for n in range(base, base + writes):
                    body = content(n)
                    started = time.perf_counter()
                    await db.upsert(RecordID(table, n), body)
                    sample.append(time.perf_counter() - started)
                await rep.flush(timeout=60)
                own_cpu[arm] += time.process_time() - cpu
                secondary_cpu[arm] += process_cpu(server.pid) - server_cpu
                latencies[arm].extend(sample)
                round_medians[arm].append(median(sample))
            applied = rep.metrics.snapshot()["applied"]
            result.setup = {
                "rounds": rounds,
                "writes_per_arm_per_round": writes,
                "record": RECORD_SHAPE,
                "primary": 'embedded AsyncSurreal("mem://"), same process',
                "secondary": "devserver process on 127.0.0.1 (mem://)",
                "write": "await db.upsert(RecordID(table, n), record), back to back",
                **config_summary(rep.config),
            }
    bare, wrapped_lat = latencies["bare"], latencies["wrapped"]
    f = result.figures
    f["bare_median_us"] = median(bare) * 1e6
    f["bare_p99_us"] = percentile(bare, 99) * 1e6
    f["wrapped_median_us"] = median(wrapped_lat) * 1e6
    f["wrapped_p99_us"] = percentile(wrapped_lat, 99) * 1e6
    f["median_ratio"] = ratio(f["wrapped_median_us"], f["bare_median_us"])
    f["p99_ratio"] = ratio(f["wrapped_p99_us"], f["bare_p99_us"])
    # The same ratio per round, then the median of those: robust to a noisy round.
    per_round = [
        ratio(w, b) for w, b in zip(round_medians["wrapped"], round_medians["bare"], strict=True)
    ]
    f["median_ratio_of_rounds"] = median(per_round)
    f["replicated_writes"] = float(applied)
    total = rounds * writes
    f["bare_cpu_us_per_write"] = own_cpu["bare"] / total * 1e6
    f["wrapped_cpu_us_per_write"] = own_cpu["wrapped"] / total * 1e6
    f["cpu_ratio"] = ratio(f["wrapped_cpu_us_per_write"], f["bare_cpu_us_per_write"])
    f["secondary_cpu_us_per_wrapped_write"] = secondary_cpu["wrapped"] / total * 1e6
    result.targets = [Target("median_ratio", "<=", 1.05), Target("p99_ratio", "<=", 1.2)]
    return result
