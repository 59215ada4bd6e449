"""``python -m bench``: run the benchmark scenarios, print a table, write JSON and a plot.

    python -m bench                 # full: about 10 minutes
    python -m bench --quick         # under a minute, small counts; for CI
    python -m bench --only drain,lag --out /tmp/r.json
    python -m bench --only write_cost,lag --engines 2,3   # each scenario once per engine
    python -m bench --only fanout      # drain to 1, 2 and 3 secondaries, side by side

The drain scenario always measures every engine of ``--engines`` itself, side
by side with each engine's in-process limit. The application (this process,
its primary, syncd) is pinned to core 0 and every secondary to core 1 when
the machine has two cores (``--no-pin`` to leave scheduling alone).

Exit status: 0 when every scenario ran (whether or not it met its target:
targets are reported, never asserted), 1 when a scenario failed to run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio

from bench import daemon, drain, fanout, lag, memory, reads, write_cost
from bench.common import APP_CORE, SECONDARY_CORE, Result, can_pin, pin_process
from bench.report import plot, plot_drain, table, write_json


@dataclass(frozen=True)
class Mode:
    """Counts and durations of one run mode."""

    write_rounds: int
    writes_per_round: int
    drain_rounds: int
    drain_backlog: int
    naive_records: int
    drain_settings: tuple[tuple[int, int], ...]
    limit_chunk: int | None
    lag_seconds: float
    catchup_warm: float
    catchup_outage: float
    limit_rounds: int
    read_rows: int
    read_rounds: int
    frozen_reads: int
    query_timeout: float
    memory_ops: int
    daemon_seconds: float
    fanout_rounds: int
    fanout_backlog: int


FULL = Mode(
    write_rounds=10,
    writes_per_round=1000,
    drain_rounds=2,
    drain_backlog=100_000,
    naive_records=0,
    drain_settings=((4, 500),),
    limit_chunk=None,
    lag_seconds=30.0,
    catchup_warm=3.0,
    catchup_outage=30.0,
    limit_rounds=1,
    read_rows=1000,
    read_rounds=30,
    frozen_reads=3,
    query_timeout=2.0,
    memory_ops=500_000,
    daemon_seconds=20.0,
    fanout_rounds=2,
    fanout_backlog=100_000,
)
QUICK = Mode(
    write_rounds=2,
    writes_per_round=200,
    drain_rounds=1,
    drain_backlog=2000,
    naive_records=0,
    drain_settings=(),
    limit_chunk=100,
    lag_seconds=3.0,
    catchup_warm=1.0,
    catchup_outage=2.0,
    limit_rounds=1,
    read_rows=1000,
    read_rounds=4,
    frozen_reads=1,
    query_timeout=0.5,
    memory_ops=20_000,
    daemon_seconds=3.0,
    fanout_rounds=1,
    fanout_backlog=1000,
)

Runner = Callable[[Mode], Awaitable[Result]]
#: The engine generations of this run (``--engines``); the drain scenario covers them all.
ENGINES: list[int] = [2, 3]
#: Scenarios that run once per engine (the others have no secondary, or cover every engine).
PER_ENGINE = {"write_cost", "lag", "catchup", "reads", "daemon", "fanout"}


async def _memory(mode: Mode) -> Result:
    return await anyio.to_thread.run_sync(lambda: memory.run(ops=mode.memory_ops))


SCENARIOS: dict[str, tuple[str, Runner]] = {
    "write_cost": (
        "Cost to the application (write latency)",
        lambda m: write_cost.run(rounds=m.write_rounds, writes=m.writes_per_round),
    ),
    "drain": (
        "Drain throughput vs the hand-batched limit",
        lambda m: drain.run(
            rounds=m.drain_rounds,
            backlog=m.drain_backlog,
            naive_records=m.naive_records,
            settings=m.drain_settings,
            engines=ENGINES,
            limit_chunk=m.limit_chunk,
            ws_limit=m.limit_chunk is None,  # quick mode: the in-process limit only
        ),
    ),
    "fanout": (
        "Drain to 1, 2 and 3 secondaries at once",
        lambda m: fanout.run(
            rounds=m.fanout_rounds,
            backlog=m.fanout_backlog,
            limit_chunk=m.limit_chunk,
        ),
    ),
    "lag": (
        "End-to-end lag at 1,000 writes/s",
        lambda m: lag.run_lag(rate=1000.0, seconds=m.lag_seconds),
    ),
    "catchup": (
        "Catch-up after an outage at 1,000 writes/s",
        lambda m: lag.run_catchup(
            rate=1000.0,
            warm=m.catchup_warm,
            outage=m.catchup_outage,
            limit_rounds=m.limit_rounds,
        ),
    ),
    "reads": (
        "Merged reads",
        lambda m: reads.run(
            rows=m.read_rows,
            rounds=m.read_rounds,
            frozen_reads=m.frozen_reads,
            query_timeout=m.query_timeout,
        ),
    ),
    "memory": ("Peak RSS while a backlog builds", _memory),
    "daemon": ("Daemon (syncd run)", lambda m: daemon.run(seconds=m.daemon_seconds)),
}


async def _run_all(names: list[str], mode: Mode, engines: list[int]) -> list[Result]:
    results: list[Result] = []
    for name in names:
        title, runner = SCENARIOS[name]
        for engine in engines if name in PER_ENGINE else [None]:
            suffix = f"@e{engine}" if engine is not None and len(engines) > 1 else ""
            if engine is not None:  # every devserver of the scenario serves this engine
                os.environ["SYNCD_DEVSERVER_ENGINE"] = str(engine)
            print(f"running {name}{suffix} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            load_before = os.getloadavg()[0]
            try:
                result = await runner(mode)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                notes = [f"{type(exc).__name__}: {exc}"]
                result = Result(name, title, status="error", notes=notes)
            result.seconds = time.perf_counter() - started
            if engine is not None:
                result.id += suffix
                result.title += f" (engine {engine})" if suffix else ""
                result.setup["engine"] = engine
            result.setup["load_average_1min_before"] = round(load_before, 2)
            result.setup["load_average_1min_after"] = round(os.getloadavg()[0], 2)
            results.append(result)
    return results


def _meta(
    args: argparse.Namespace, argv: list[str], started_at: str, seconds: float
) -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "mode": "quick" if args.quick else "full",
        "started": started_at,
        "seconds": round(seconds, 1),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "surrealdb": version("surrealdb"),
        "syncd": version("syncd"),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the scenarios, report; see the module docstring."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, under a minute")
    parser.add_argument("--out", type=Path, default=Path("bench-results/results.json"))
    parser.add_argument("--plot", type=Path, help="PNG path (default: next to --out)")
    parser.add_argument(
        "--only", help=f"comma-separated scenarios among: {', '.join(SCENARIOS)}", default=""
    )
    parser.add_argument(
        "--engines", default="2,3", help="engine generations of the secondary (2, 3 or 2,3)"
    )
    parser.add_argument(
        "--per-engine",
        default=None,
        help="engines for the scenarios other than drain (default: --engines; quick: the first)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    args = parser.parse_args(argv)
    engines = [int(e) for e in args.engines.split(",") if e.strip()]
    if not engines or any(e not in (2, 3) for e in engines):
        parser.error("--engines takes 2, 3 or 2,3")
    ENGINES[:] = engines
    if args.per_engine is not None:
        per_engine = [int(e) for e in args.per_engine.split(",") if e.strip()]
    else:
        per_engine = engines[:1] if args.quick else engines
    pinned = not args.no_pin and can_pin()
    if pinned:  # before any thread or child: they inherit it
        pin_process(0, APP_CORE)
    else:
        os.environ["SYNCD_BENCH_NO_PIN"] = "1"
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    from syncd.logs import configure_logging

    # syncd logs outages and reconnects at warning: the scenarios cause them on purpose.
    configure_logging("error", json=False)
    mode = QUICK if args.quick else FULL
    started, started_at = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_before = os.getloadavg()
    results = anyio.run(_run_all, names, mode, per_engine)
    meta = _meta(args, argv, started_at, time.perf_counter() - started)
    meta["engines"] = {"drain": engines, "other_scenarios": per_engine}
    meta["cores"] = (
        f"application on core {APP_CORE}, secondaries on core {SECONDARY_CORE}"
        if pinned
        else "not pinned"
    )
    # Other work on this shared machine moves the absolute figures: say how busy it was.
    meta["load_average_1_5_15_before"] = [round(x, 2) for x in load_before]
    meta["load_average_1_5_15_after"] = [round(x, 2) for x in os.getloadavg()]
    print(table(results))
    write_json(args.out, results, meta)
    plot_path = args.plot or args.out.with_name("timeline.png")
    problem = plot(plot_path, results)
    print(f"results: {args.out}" + (f"; plot: {plot_path}" if problem is None else ""))
    if problem is not None:
        print(f"plot: {problem}")
    drain_problem = plot_drain(args.out.with_name("drain.png"), results)
    if drain_problem is None:
        print(f"drain plot: {args.out.with_name('drain.png')}")
    load = meta["load_average_1_5_15_after"]
    print(f"{meta['mode']} run took {meta['seconds']:.0f} s; load average after: {load}")
    return 1 if any(r.status == "error" for r in results) else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalisation: the embedded engine's Rust threads can
    # abort the process (exit 134) while Python tears down.
    os._exit(code)
