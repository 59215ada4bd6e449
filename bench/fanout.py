"""Drain with 1, 2 and 3 secondaries: how fast one backlog reaches every secondary.

Three devserver processes serve the same engine generation, all pinned to
the secondary's core (this machine has 2 cores; in production each secondary
is a machine of its own, so here they compete for one core and the figures
are a floor). Per arm, a Replicator configured with a ``secondaries:`` list of
the first 1, 2 or 3 of them:

- every secondary is paused (``rep.pause()``), ``backlog`` operations are
  captured — each replica keeps ``queue_size`` in memory and spools the rest,
  as in an outage — and left a moment for the spill writers;
- ``rep.resume()`` starts the clock; it stops when the last secondary has
  applied all of them (each replica's finish is timed too); every record is
  then counted on every secondary.

Pause and resume rather than stopping the servers: the clock then holds only
the drain, not N reconnects that would finish at different moments.

The engine's in-process limit (``bench.engine_limit``, its own process on the
secondary's core) runs as one more arm of the same rounds. Figures: the rate
(records/s delivered to *every* secondary: backlog / time), its ratio to the
1-secondary rate and to the engine limit, and the aggregate (N * backlog /
time) over the limit — one core of engine work shared by N secondaries cannot
exceed about 1x.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from prometheus_client import CollectorRegistry

from bench import engine_limit
from bench.common import (
    APP_CORE,
    DATABASE,
    NAMESPACE,
    PASSWORD,
    RECORD_SHAPE,
    SECONDARY_CORE,
    USER,
    PinnedServer,
    Result,
    can_pin,
    count_rows,
    direct_secondary,
    engine_default,
    median,
    ratio,
    record,
    scratch_dir,
)
from bench.drain import rotated
from syncd.config import Config
from syncd.service.replicator import Replicator

COUNTS = (1, 2, 3)
_CAPTURE_CHUNK = 1000


def arm_name(count: int) -> str:
    """The name of the arm draining to ``count`` secondaries."""
    return f"n{count}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (every thread), from /proc; NaN elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fanout_config(state: Path, urls: Sequence[str], **overrides: Any) -> Config:
    """The bench configuration with a ``secondaries:`` list, one entry per URL (s1, s2, ...)."""
    data: dict[str, Any] = {
        "secondaries": [
            {
                "name": f"s{index}",
                "url": url,
                "user": USER,
                "pass": PASSWORD,
                "namespace": NAMESPACE,
                "database": DATABASE,
                "priority": index,
            }
            for index, url in enumerate(urls, start=1)
        ],
        "state_dir": str(state),
        "metrics_listen": None,
        "reconnect_backoff": "1s",
    }
    data.update(overrides)
    return Config.from_mapping(data)


async def drain_to(
    urls: Sequence[str], table: str, backlog: int, pids: Sequence[int] = ()
) -> dict[str, Any]:
    """Capture ``backlog`` operations with every secondary paused, resume, time the drain.

    ``pids``: the secondaries' processes, whose CPU during the drain is reported
    beside this process's (which side's core is the bottleneck).
    """
    with scratch_dir("fanout") as state:
        rep = Replicator(fanout_config(state, urls), registry=CollectorRegistry())
        async with rep:
            with anyio.fail_after(60):
                for replica in rep.fanout:
                    await replica.secondary.wait_up()
            rep.pause()
            for start in range(0, backlog, _CAPTURE_CHUNK):
                end = min(backlog, start + _CAPTURE_CHUNK)
                rep.fanout.capture(record(table, n) for n in range(start, end))
                await anyio.lowlevel.checkpoint()
            await anyio.sleep(0.2)  # let the spill writers hand their buffers to the spools
            spooled = rep.fanout.spool_depth
            finished: dict[str, float] = {}

            async def finish(replica: Any, target: int) -> None:
                await replica.wait_finished(target)
                finished[replica.name] = anyio.current_time()

            cpu_before = time.process_time(), sum(cpu_seconds(pid) for pid in pids)
            started = anyio.current_time()
            rep.resume()
            with anyio.fail_after(600):
                async with anyio.create_task_group() as tg:
                    for replica in rep.fanout:
                        tg.start_soon(finish, replica, replica.queue.last_seq)
                await rep.flush(timeout=600)
            wall = anyio.current_time() - started
            app_cpu = time.process_time() - cpu_before[0]
            secondaries_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before[1]
    for url in urls:
        async with direct_secondary(url) as db:
            arrived = await count_rows(db, table)
            with anyio.fail_after(60):  # the servers live through every arm: free their memory
                await db.query(f"REMOVE TABLE {table}")
        if arrived != backlog:
            raise RuntimeError(f"fanout: {arrived} of {backlog} records reached {url}")
    times = sorted(t - started for t in finished.values())
    return {
        "seconds": times[-1],
        "first_seconds": times[0],
        "spooled_at_start": spooled,
        "app_cpu_share": app_cpu / wall,
        "secondaries_cpu_share": secondaries_cpu / wall,
    }


async def run(*, rounds: int, backlog: int, limit_chunk: int | None = None) -> Result:
    """1, 2 and 3 secondaries and the engine limit, interleaved, ``rounds`` times.

    ``limit_chunk``: rows per request of the limit; None: the engine's best,
    found first on 10,000 rows (quick mode gives 100 and skips that).
    """
    engine = engine_default()
    result = Result("fanout", "Drain to 1, 2 and 3 secondaries at once")
    arms = ["engine_limit", *(arm_name(n) for n in COUNTS)]
    rates: dict[str, list[float]] = {arm: [] for arm in arms}
    spread: dict[str, list[float]] = {arm_name(n): [] for n in COUNTS}
    app_cpu: dict[str, list[float]] = {arm_name(n): [] for n in COUNTS}
    secondaries_cpu: dict[str, list[float]] = {arm_name(n): [] for n in COUNTS}
    spooled: list[float] = []
    pin = SECONDARY_CORE if can_pin() else None
    chunk = limit_chunk
    if chunk is None:
        calibration = await anyio.to_thread.run_sync(
            functools.partial(engine_limit.run_subprocess, engine, min(backlog, 10_000), pin)
        )
        chunk = int(calibration["chunk"])
    with ExitStack() as stack:
        servers = []
        for _ in range(max(COUNTS)):
            server = PinnedServer(pin, engine)
            stack.callback(server.stop)
            servers.append(server.start())
        urls = [server.url for server in servers]
        for index, arm in rotated(rounds, arms):
            if arm == "engine_limit":
                out = await anyio.to_thread.run_sync(
                    functools.partial(engine_limit.run_subprocess, engine, backlog, pin, chunk)
                )
                rates[arm].append(out["records_per_s"])
                result.setup["engine_version"] = out["version"]
                continue
            count = int(arm[1:])
            pids = [server.pid for server in servers[:count] if server.pid is not None]
            drained = await drain_to(urls[:count], f"f_{arm}_{index}", backlog, pids)
            rates[arm].append(backlog / drained["seconds"])
            spread[arm].append(drained["seconds"] - drained["first_seconds"])
            spooled.append(drained["spooled_at_start"] / count)
            app_cpu[arm].append(drained["app_cpu_share"])
            secondaries_cpu[arm].append(drained["secondaries_cpu_share"])
    f = result.figures
    limit = median(rates["engine_limit"])
    one = median(rates[arm_name(1)])
    f["engine_limit_records_per_s"] = limit
    for count in COUNTS:
        arm = arm_name(count)
        rate = median(rates[arm])
        f[f"{arm}_records_per_s"] = rate
        f[f"{arm}_ratio_to_one"] = ratio(rate, one)
        f[f"{arm}_ratio_to_limit"] = ratio(rate, limit)
        f[f"{arm}_aggregate_ratio_to_limit"] = ratio(count * rate, limit)
        f[f"{arm}_finish_spread_seconds"] = median(spread[arm])
        # CPU seconds per wall second during the drain: 1.0 is one whole core.
        f[f"{arm}_app_cpu_cores"] = median(app_cpu[arm])
        f[f"{arm}_secondaries_cpu_cores"] = median(secondaries_cpu[arm])
    for arm in arms:
        result.series[f"fanout_{arm}"] = [[float(i), r] for i, r in enumerate(rates[arm])]
    result.notes.append(
        "rate = backlog / seconds until every secondary holds it; "
        + ", ".join(
            f"{arm_name(n)} {f[f'{arm_name(n)}_records_per_s']:,.0f}/s "
            f"({f[f'{arm_name(n)}_ratio_to_one']:.2f}x of n1)"
            for n in COUNTS
        )
        + f"; engine limit {limit:,.0f}/s"
    )
    result.setup.update(
        {
            "engine": engine,
            "backlog_records": backlog,
            "rounds": rounds,
            "record": RECORD_SHAPE,
            "engine_limit_chunk": chunk,
            "settings": "syncd defaults (4 workers per secondary, batch 100, queue_size 10000)",
            "spooled_per_secondary_at_start": median(spooled),
            "secondaries": (
                "3 devserver processes (mem://), each arm uses the first 1, 2 or 3 of them "
                "through a secondaries: list, a fresh table per arm"
            ),
            "cores": (
                f"application (this process) on core {APP_CORE}; every secondary devserver "
                f"and the engine-limit process on core {SECONDARY_CORE}: N secondaries share "
                "one core"
                if pin is not None
                else "not pinned"
            ),
            "clock": "from resume() to the last secondary holding every record",
            "cpu_cores": (
                "CPU seconds per wall second during the drain: of this process (syncd, "
                "core 0) and of the arm's secondary processes together (core 1)"
            ),
        }
    )
    return result
