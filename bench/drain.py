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

import functools
from collections.abc import Sequence

import anyio
import anyio.lowlevel
import anyio.to_thread

from bench import engine_limit
from bench.common import (
    APP_CORE,
    RECORD_SHAPE,
    SECONDARY_CORE,
    Result,
    Target,
    can_pin,
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
from syncd.dev.process import DevServerProcess as ServerProcess

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
                rep.fanout.capture(rows)
                await anyio.lowlevel.checkpoint()
            await anyio.sleep(0.2)  # let the spill writer hand its buffer to the spool
            spooled, in_memory = rep.fanout.spool_depth, rep.fanout.queue_depth
            server.start()
            listening = anyio.current_time()
            with anyio.fail_after(60):
                await rep.fanout.first.secondary.wait_up()
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
    *,
    rounds: int,
    backlog: int,
    naive_records: int,
    settings: Sequence[tuple[int, int]],
    engines: Sequence[int] = (2, 3),
    limit_chunk: int | None = None,
    ws_limit: bool = True,
) -> Result:
    """Per engine generation: its in-process limit, the WebSocket limit and every
    ``(workers, batch)`` setting of syncd, interleaved, ``rounds`` times.

    ``naive_records`` > 0 adds the one-UPSERT-per-round-trip baseline.
    ``limit_chunk``: rows per request of the limits; None: the engine's best,
    found first on 10,000 rows (quick mode gives 100 and skips that).
    """
    result = Result("drain", "Drain throughput vs the engine's own limit, per engine")
    syncd_arms = {arm_name(w, b): (w, b) for w, b in [DEFAULT, *settings]}
    arms = ["engine_limit", *(["limit_ws"] if ws_limit else []), *syncd_arms]
    arms += ["naive"] if naive_records else []
    f = result.figures
    pin = SECONDARY_CORE if can_pin() else None
    spooled: list[float] = []
    for engine in engines:
        rates: dict[str, list[float]] = {arm: [] for arm in arms}
        reconnects: list[float] = []
        # The engine's best request size, found once (on 10,000 rows) and used by
        # every limit arm below: the in-process one and the one over WebSocket.
        calibration = await anyio.to_thread.run_sync(
            functools.partial(engine_limit.run_subprocess, engine, min(backlog, 10_000), pin)
        )
        chunk = int(calibration["chunk"])
        result.setup[f"e{engine}_engine_limit_chunk"] = chunk
        result.setup[f"e{engine}_engine_limit_calibration"] = calibration[
            "calibration_records_per_s"
        ]
        with secondary_process(engine=engine) as server:
            for index, arm in rotated(rounds, arms):
                table = f"d_{arm}_{index}"
                if arm == "engine_limit":
                    out = await anyio.to_thread.run_sync(
                        functools.partial(engine_limit.run_subprocess, engine, backlog, pin, chunk)
                    )
                    rates[arm].append(out["records_per_s"])
                    result.setup[f"e{engine}_engine_version"] = out["version"]
                elif arm == "limit_ws":
                    server.restart()
                    seconds = await send_limit(
                        server.url, table, 0, backlog, fast_client=True, chunk=chunk
                    )
                    rates[arm].append(backlog / seconds)
                elif arm == "naive":
                    server.restart()
                    seconds = await send_naive(server.url, table, 0, naive_records)
                    rates[arm].append(naive_records / seconds)
                else:
                    workers, batch = syncd_arms[arm]
                    drained = await drain_once(server, table, backlog, workers, batch)
                    rates[arm].append(backlog / drained["seconds"])
                    if (workers, batch) == DEFAULT:
                        reconnects.append(drained["reconnect_seconds"])
                        spooled.append(drained["spooled_at_start"])
        e = f"e{engine}"
        limit = median(rates["engine_limit"])
        f[f"{e}_engine_limit_records_per_s"] = limit
        if ws_limit:
            f[f"{e}_ws_limit_records_per_s"] = median(rates["limit_ws"])
        for arm in syncd_arms:
            f[f"{e}_{arm}_records_per_s"] = median(rates[arm])
            f[f"{e}_{arm}_ratio"] = ratio(median(rates[arm]), limit)
        default = arm_name(*DEFAULT)
        best = max(syncd_arms, key=lambda a: f[f"{e}_{a}_records_per_s"])
        f[f"{e}_default_ratio"] = f[f"{e}_{default}_ratio"]
        f[f"{e}_best_ratio"] = f[f"{e}_{best}_ratio"]
        if ws_limit:
            f[f"{e}_ws_limit_ratio"] = ratio(f[f"{e}_ws_limit_records_per_s"], limit)
            f[f"{e}_default_ratio_to_ws_limit"] = ratio(
                f[f"{e}_{default}_records_per_s"], f[f"{e}_ws_limit_records_per_s"]
            )
        if naive_records:
            f[f"{e}_naive_records_per_s"] = median(rates["naive"])
        f[f"{e}_reconnect_seconds"] = median(reconnects)
        result.setup[f"e{engine}_best"] = best
        for arm in arms:
            result.series[f"drain_e{engine}_{arm}"] = [
                [float(i), r] for i, r in enumerate(rates[arm])
            ]
        result.notes.append(
            f"engine {engine}: limit {limit:,.0f}/s; default {f[f'{e}_default_ratio']:.2f}x, "
            f"best {best} {f[f'{e}_best_ratio']:.2f}x"
        )
        result.targets.append(Target(f"{e}_default_ratio", ">=", 0.8))
    result.setup.update(
        {
            "engines": list(engines),
            "backlog_records": backlog,
            "naive_records": naive_records,
            "rounds": rounds,
            "record": RECORD_SHAPE,
            "settings": [{"workers": w, "batch": b, "arm": a} for a, (w, b) in syncd_arms.items()],
            "default": {"workers": DEFAULT[0], "batch": DEFAULT[1]},
            "queue_size": 10000,
            "spooled_at_start": median(spooled),
            "secondary": "devserver process on 127.0.0.1 (mem://), restarted empty for every arm",
            "cores": (
                f"application (this process) on core {APP_CORE}, secondary devserver and the "
                f"engine-limit process on core {SECONDARY_CORE}"
                if pin is not None
                else "not pinned (fewer than 2 cores)"
            ),
            "clock": "from syncd's connection up to flush() returning",
            "engine_limit": (
                f"{backlog} records, one FOR ... UPSERT per request of the engine's best size "
                "(50-2,000 rows, tried on 10,000 rows first), frames pre-encoded, "
                "AsyncEmbeddedDB.execute() in-process in its own process "
                "(python -m bench.engine_limit)"
            ),
            "limit_ws": "the same batches over one WebSocket to the devserver, syncd's RpcClient",
        }
    )
    return result
