"""Scenarios 3 and 4 — end-to-end lag at a steady write rate, and catch-up after an outage.

An application writes single records through the wrapper at a fixed rate
(1,000 writes/s), paced on an absolute schedule so a slow write does not lower
the rate. Each operation carries ``enqueued_at``, stamped right after the
primary answered (the commit); a probe on the queue's ``finish`` — which a
worker calls when the secondary has acknowledged a batch — records
``acknowledged - enqueued_at`` for every operation. That is the lag the
``syncd_end_to_end_lag_seconds`` histogram measures, but exact per operation
rather than bucketed; at the end the secondary is counted to check every
record arrived.

Catch-up: the same writer runs, the secondary is stopped for the outage and
started again; the drain time runs from syncd's reconnection until every
operation enqueued before it has been applied. Its rate is compared with the
limit (hand-batched ``FOR`` UPSERTs of as many records, same secondary) measured
before and after in the same run.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import anyio.to_thread
from surrealdb import RecordID

from bench import engine_limit
from bench.common import (
    RECORD_SHAPE,
    SECONDARY_CORE,
    Result,
    Target,
    can_pin,
    config_summary,
    content,
    count_rows,
    direct_secondary,
    engine_default,
    median,
    percentile,
    ratio,
    replicator,
    scratch_dir,
    secondary_process,
)
from syncd.service.replicator import Replicator
from syncd.sink.operation import Operation
from tests.support.replica import embedded_primary

BIN_SECONDS = 0.25
_RETRIES = 5


class Probe:
    """Records, for every operation a worker finishes, when and how late it was applied."""

    def __init__(self, rep: Replicator) -> None:
        """Wrap the first queue's ``finish`` (workers call it once the secondary acknowledged)."""
        self.applied: list[tuple[float, float]] = []  # (acknowledged at, lag), unix seconds
        original: Callable[[int, Sequence[Operation]], None] = rep.fanout.first.queue.finish

        def finish(lane: int, ops: Sequence[Operation]) -> None:
            now = time.time()
            self.applied.extend((now, now - op.enqueued_at) for op in ops)
            original(lane, ops)

        setattr(rep.fanout.first.queue, "finish", finish)  # noqa: B010 - an instance-level probe

    def lags(self, since: float = 0.0, until: float = math.inf) -> list[float]:
        """Lags of operations enqueued in ``[since, until)`` (unix seconds)."""
        return [lag for at, lag in self.applied if since <= at - lag < until]


class Sampler:
    """Samples the queue every ``interval`` seconds: memory depth, spooled, applied."""

    def __init__(self, rep: Replicator, interval: float = 0.05) -> None:
        """Bind to ``rep``; call :meth:`run` in a task."""
        self._rep = rep
        self._interval = interval
        self.samples: list[tuple[float, int, int]] = []  # (unix time, depth, spooled)

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            queue = self._rep.fanout.first.queue
            self.samples.append((time.time(), queue.depth, queue.spooled))
            await anyio.sleep(self._interval)


class PacedWriter:
    """Writes single records through ``db`` at ``rate`` per second until stopped.

    Write ``n`` is due at ``start + n / rate`` (an absolute schedule: a slow
    write does not lower the rate); ``concurrency`` tasks share the schedule,
    as an application's concurrent requests would.
    """

    def __init__(self, db: Any, table: str, rate: float, concurrency: int = 8) -> None:
        """Configure; :meth:`run` writes."""
        self._db, self._table, self._rate = db, table, rate
        self._concurrency = concurrency
        self.written = 0
        self.started = 0.0
        self.stopped = 0.0
        self.write_seconds: list[float] = []
        self.committed: dict[int, float] = {}  # write number -> unix time it returned
        self.retries = 0
        self._next = 0
        self._stop = anyio.Event()

    def stop(self) -> None:
        """Finish after the writes in progress."""
        self._stop.set()

    async def run(self, seconds: float = math.inf) -> None:
        """Write until :meth:`stop` or ``seconds`` have passed."""
        self.started = anyio.current_time()
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self._concurrency):
                    tg.start_soon(self._write_loop, self.started + seconds)
        finally:
            self.stopped = anyio.current_time()

    async def _write_loop(self, deadline: float) -> None:
        while not self._stop.is_set():
            n = self._next
            due = self.started + n / self._rate
            if due >= deadline:
                return
            self._next += 1
            delay = due - anyio.current_time()
            if delay > 0:
                await anyio.sleep(delay)
            begun = time.perf_counter()
            await self._upsert(n)
            self.committed[n] = time.time()
            self.write_seconds.append(time.perf_counter() - begun)
            self.written += 1

    async def _upsert(self, n: int) -> None:
        # Concurrent transactions on the embedded engine now and then fail with
        # a retriable read/write conflict; an application retries, so do we.
        for attempt in range(_RETRIES):
            try:
                await self._db.upsert(RecordID(self._table, n), content(n, time.time()))
                return
            except Exception as exc:
                if "can be retried" not in str(exc) or attempt == _RETRIES - 1:
                    raise
                self.retries += 1

    @property
    def achieved_rate(self) -> float:
        """Writes per second actually made."""
        return ratio(self.written, self.stopped - self.started)

    @property
    def concurrency(self) -> int:
        """Concurrent writer tasks."""
        return self._concurrency


def lag_series(probe: Probe, origin: float) -> dict[str, list[list[float]]]:
    """Per ``BIN_SECONDS`` bin of acknowledgement time: p50/p99/max lag (ms) and rate."""
    bins: dict[int, list[float]] = {}
    for at, lag in probe.applied:
        bins.setdefault(int((at - origin) / BIN_SECONDS), []).append(lag)
    rows: list[list[float]] = []
    for index in range(min(bins, default=0), max(bins, default=-1) + 1):
        lags = bins.get(index, [])
        t = round(index * BIN_SECONDS, 3)
        if lags:
            p50, p99, top = (percentile(lags, 50), percentile(lags, 99), max(lags))
            rows.append([t, p50 * 1e3, p99 * 1e3, top * 1e3, len(lags) / BIN_SECONDS])
        else:
            rows.append([t, math.nan, math.nan, math.nan, 0.0])
    return {"lag_ms_p50_p99_max_and_applied_per_s": rows}


async def run_lag(*, rate: float, seconds: float) -> Result:
    """Scenario 3: write at ``rate`` for ``seconds``; lag of every operation."""
    result = Result("lag", f"End-to-end lag at {rate:.0f} writes/s")
    with secondary_process() as server, scratch_dir("lag") as state:
        rep = replicator(state, server.url)
        async with embedded_primary() as primary, rep:
            await primary.query("DEFINE TABLE lag SCHEMALESS")
            probe = Probe(rep)
            writer = PacedWriter(rep.wrap(primary), "lag", rate)
            origin = time.time()
            await writer.run(seconds)
            await rep.flush(timeout=60)
            histogram = rep.metrics.snapshot()
            setup = config_summary(rep.config)
        async with direct_secondary(server.url) as db:
            arrived = await count_rows(db, "lag")
    lags = probe.lags()
    f = result.figures
    f["achieved_writes_per_s"] = writer.achieved_rate
    f["writes"] = float(writer.written)
    f["arrived_on_secondary"] = float(arrived)
    f["lag_p50_ms"] = percentile(lags, 50) * 1e3
    f["lag_p99_ms"] = percentile(lags, 99) * 1e3
    f["lag_max_ms"] = max(lags, default=math.nan) * 1e3
    count = histogram["end_to_end_seconds_count"]
    f["histogram_mean_ms"] = ratio(histogram["end_to_end_seconds_sum"], count) * 1e3
    f["write_p99_us"] = percentile(writer.write_seconds, 99) * 1e6
    f["write_conflict_retries"] = float(writer.retries)
    result.setup = {
        "rate_writes_per_s": rate,
        "writer_tasks": writer.concurrency,
        "seconds": seconds,
        "record": RECORD_SHAPE,
        "primary": 'embedded AsyncSurreal("mem://"), same process, through rep.wrap',
        "secondary": "devserver process on 127.0.0.1 (mem://)",
        "lag": "secondary acknowledged (worker sees the answer) - enqueued_at (primary answered)",
        **setup,
    }
    if arrived != writer.written:
        result.notes.append(f"only {arrived} of {writer.written} records reached the secondary")
    result.series = lag_series(probe, origin)
    result.targets = [Target("lag_p99_ms", "<", 50.0)]
    return result


async def run_catchup(*, rate: float, warm: float, outage: float, limit_rounds: int) -> Result:
    """Scenario 4: an ``outage``-second secondary outage under a steady write load."""
    result = Result("catchup", f"Catch-up after a {outage:.0f} s outage at {rate:.0f} writes/s")
    limit_rates: list[float] = []
    expected = int(rate * outage)
    engine = engine_default()
    core = SECONDARY_CORE if can_pin() else None
    with secondary_process() as server, scratch_dir("catchup") as state:
        # The limit: the engine's own, in-process, at its best request size.
        first = await anyio.to_thread.run_sync(
            functools.partial(engine_limit.run_subprocess, engine, expected, core)
        )
        limit_rates.append(first["records_per_s"])
        rep = replicator(state, server.url)
        async with embedded_primary() as primary, rep:
            await primary.query("DEFINE TABLE catchup SCHEMALESS")
            probe = Probe(rep)
            sampler = Sampler(rep)
            writer = PacedWriter(rep.wrap(primary), "catchup", rate)
            origin = time.time()
            async with anyio.create_task_group() as tg:
                tg.start_soon(sampler.run)
                tg.start_soon(writer.run)
                await anyio.sleep(warm)
                down_at = time.time()
                # In a thread: stopping and starting a process blocks for up to
                # a second, which must not stall the writers on the event loop.
                await anyio.to_thread.run_sync(server.stop)
                await anyio.sleep(outage)
                await anyio.to_thread.run_sync(server.start)
                listening_at = time.time()
                with anyio.fail_after(60):
                    await rep.fanout.first.secondary.wait_up()
                up_at = time.time()
                backlog = rep.fanout.queue_depth + rep.fanout.spool_depth
                spooled = rep.fanout.spool_depth
                through = rep.fanout.first.queue.last_seq
                with anyio.fail_after(600):
                    await rep.fanout.first.queue.wait_finished(through)
                caught_up_at = time.time()
                await anyio.sleep(min(3.0, warm))  # the steady state after, for the plot
                writer.stop()
                tg.cancel_scope.cancel()
            await rep.flush(timeout=120)
            setup = config_summary(rep.config)
        for _ in range(limit_rounds):
            again = await anyio.to_thread.run_sync(
                functools.partial(
                    engine_limit.run_subprocess, engine, backlog, core, int(first["chunk"])
                )
            )
            limit_rates.append(again["records_per_s"])
    drain_seconds = caught_up_at - up_at
    f = result.figures
    f["backlog_operations"] = float(backlog)
    f["spooled_at_reconnect"] = float(spooled)
    f["reconnect_seconds"] = up_at - listening_at
    f["drain_seconds"] = drain_seconds
    f["drain_records_per_s"] = ratio(backlog, drain_seconds)
    f["limit_records_per_s"] = median(limit_rates)
    f["limit_seconds_for_backlog"] = ratio(backlog, f["limit_records_per_s"])
    f["rate_ratio_to_limit"] = ratio(f["drain_records_per_s"], f["limit_records_per_s"])
    f["time_ratio_to_limit"] = ratio(drain_seconds, f["limit_seconds_for_backlog"])
    f["achieved_writes_per_s"] = writer.achieved_rate
    f["write_p99_us"] = percentile(writer.write_seconds, 99) * 1e6
    after = probe.lags(since=caught_up_at + 1.0)
    f["lag_p99_after_catchup_ms"] = percentile(after, 99) * 1e3
    result.setup = {
        "rate_writes_per_s": rate,
        "writer_tasks": writer.concurrency,
        "outage_seconds": outage,
        "warm_seconds": warm,
        "record": RECORD_SHAPE,
        "outage": "secondary process stopped (SIGTERM), restarted empty on the same port",
        "drain": "from syncd's reconnection until every operation enqueued before it is applied",
        "writes_during_drain": "continue at the same rate",
        "limit": (
            f"the engine's own in-process limit (python -m bench.engine_limit, engine {engine}, "
            f"{first['chunk']} rows per FOR ... UPSERT), as many records, before and after"
        ),
        **setup,
    }
    series = lag_series(probe, origin)
    series["queue_depth_and_spooled"] = [
        [round(t - origin, 3), float(depth), float(sp)] for t, depth, sp in sampler.samples
    ]
    series["events_s"] = [[down_at - origin, listening_at - origin, caught_up_at - origin]]
    result.series = series
    result.notes.append(
        "writes continue during the drain, so the drain competes with them for the CPU"
    )
    result.targets = [Target("rate_ratio_to_limit", ">=", 0.8)]
    return result
