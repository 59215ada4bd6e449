"""``syncd demo``: replication end to end on this machine, with no config and no server.

What happens, in about ``duration`` seconds plus a few:

1. a secondary is started as a child process (the devserver on 127.0.0.1,
   with a ``surrealkv://`` store in a temporary directory, so its data
   survives a kill), and an embedded primary (``mem://``) is opened here;
2. a workload writes through :meth:`Replicator.wrap` at a steady rate: notes
   in ``kv_memories`` saved the way the original application saves them
   (DELETE + CREATE, a new id each time, natural key ``[user_id, key]``)
   and ``events`` records;
3. about a third of the way in the secondary is killed with SIGKILL; writes
   go on, the backlog builds in memory and spills to the on-disk spool; a
   few seconds later it is restarted on the same port and the backlog drains;
4. the writes stop, the pipeline is flushed, five events are deleted on the
   primary (the secondary keeps them: it is an archive), and the two
   databases are verified against each other.

Nothing is left running: the child is stopped in a ``finally`` (also after
Ctrl-C), and the temporary directory is removed unless ``--keep`` is given or
something failed, in which case the demo says where its files are.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from surrealdb import AsyncSurreal, RecordID

from syncd.config import Config
from syncd.dev.demoview import DemoView, Sample
from syncd.dev.process import DevServerProcess
from syncd.service.replicator import Replicator
from syncd.surreal.endpoints import DirectCaller
from syncd.tools.report import print_report
from syncd.tools.verify import Verifier, VerifyOptions, VerifyReport
from syncd.words import plural

__all__ = ["DemoOptions", "Timeline", "demo_config", "run_demo"]

NAMESPACE = "demo"
DATABASE = "main"
# The original application's unique index: the reason natural keys matter.
_INDEX = "DEFINE INDEX IF NOT EXISTS kv_natural ON kv_memories FIELDS user_id, key UNIQUE"
_TICK = 0.05  # the workload writes in small bursts this far apart
_DELETED = 5  # events deleted on the primary before the verification


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs."""

    duration: float = 20.0  # seconds of writes
    engine: int = 2  # the SurrealDB generation of both databases: 2 (2.3.10) or 3 (3.2.4)
    rate: int = 300  # writes per second
    keep: bool = False  # keep the temporary directory


@dataclass(frozen=True)
class Timeline:
    """When the secondary is killed and restarted, in seconds from the start (pure)."""

    kill_at: float
    restart_at: float
    end_at: float

    @classmethod
    def for_duration(cls, duration: float) -> Timeline:
        """Kill at 30% of the run, for a quarter of it (2 to 5 seconds)."""
        kill = 0.3 * duration
        outage = min(5.0, max(2.0, 0.25 * duration))
        return cls(kill_at=kill, restart_at=min(kill + outage, 0.8 * duration), end_at=duration)


def demo_config(secondary_url: str, password: str, state_dir: Path) -> Config:
    """The demo's configuration: quick retries, a small queue (so the spool shows)."""
    return Config.from_mapping(
        {
            "secondary_url": secondary_url,
            "secondary_user": "root",
            "secondary_pass": password,
            "secondary_namespace": NAMESPACE,
            "secondary_database": DATABASE,
            "primary_url": "mem://",
            "primary_namespace": NAMESPACE,
            "primary_database": DATABASE,
            "tables": {"kv_memories": {"key": ["user_id", "key"]}, "events": {}},
            "state_dir": str(state_dir),
            "metrics_listen": "127.0.0.1:0",
            "queue_size": 500,
            "health_check_interval": "1s",
            "reconnect_backoff": "500ms",
            "connect_timeout": "2s",
            "write_timeout": "2s",
            "query_timeout": "500ms",
            "sync_retry_interval": "200ms",
            "batch_timeout": "5ms",
            "drain_timeout": "5s",
        }
    )


@dataclass
class _Run:
    """Shared state of one demo run."""

    rep: Replicator
    view: DemoView
    started: float = field(default_factory=time.monotonic)
    writes: int = 0
    events: list[int] = field(default_factory=list)  # the first event ids written
    phase: str = "writing"
    restarted_at: float | None = None
    drain_reported: bool = False
    peak_backlog: int = 0
    peak_spool: int = 0
    write_rate: float = 0.0
    _rate_mark: tuple[float, int] = (0.0, 0)  # (elapsed, writes) the rate is measured from

    def elapsed(self) -> float:
        """Seconds since the demo's writes started."""
        return time.monotonic() - self.started

    def sample(self) -> Sample:
        """The figures now; the write rate is refreshed every half second."""
        now, rep = self.elapsed(), self.rep
        then, writes_then = self._rate_mark
        if now - then >= 0.5:
            self.write_rate = (self.writes - writes_then) / (now - then)
            self._rate_mark = (now, self.writes)
        self.peak_backlog = max(self.peak_backlog, rep.queue_depth + rep.spool_depth)
        self.peak_spool = max(self.peak_spool, rep.spool_depth)
        return Sample(
            elapsed=now,
            phase=self.phase,
            writes=self.writes,
            write_rate=self.write_rate,
            applied=int(self.rep.metrics.snapshot()["applied"]),
            queue=rep.queue_depth,
            spool=rep.spool_depth,
            lag=rep.lag_seconds(),
            secondary_up=self.rep.secondary_up,
        )


async def _workload(run: _Run, db: Any, rate: int, stop: anyio.Event) -> None:
    per_tick = max(1, round(rate * _TICK))
    next_tick = time.monotonic()
    i = 0
    while not stop.is_set():
        for _ in range(per_tick):
            i += 1
            if i % 2:
                user, key = f"user{i % 7}", f"note{i % 40}"
                # The application's save: DELETE + CREATE, a new random id each time.
                await db.query(
                    "DELETE kv_memories WHERE user_id = $u AND key = $k", {"u": user, "k": key}
                )
                await db.create("kv_memories", {"user_id": user, "key": key, "text": f"v{i}"})
            else:
                await db.create(RecordID("events", i), {"kind": "demo", "n": i})
                if len(run.events) < _DELETED:
                    run.events.append(i)
            run.writes += 1
        next_tick += _TICK
        await anyio.sleep(max(0.0, next_tick - time.monotonic()))


async def _chaos(run: _Run, server: DevServerProcess, timeline: Timeline) -> None:
    await anyio.sleep(max(0.0, timeline.kill_at - run.elapsed()))
    pid = server.pid
    server.kill()
    run.phase = "secondary down"
    run.view.event(
        f"secondary killed (SIGKILL, pid {pid}); writes go on: the backlog builds "
        "in memory, then spills to the on-disk spool"
    )
    await anyio.sleep(max(0.0, timeline.restart_at - run.elapsed()))
    pid = await anyio.to_thread.run_sync(server.start)
    run.restarted_at = run.elapsed()
    run.phase = "draining the backlog"
    run.view.event(f"secondary restarted on the same port (pid {pid}); the backlog drains")


async def _watch(run: _Run, done: Callable[[], bool]) -> None:
    """Refresh the view until ``done()``; report when the backlog has drained."""
    while True:
        sample = run.sample()
        run.view.show(sample)
        drained = sample.queue + sample.spool < 50
        if run.restarted_at is not None and not run.drain_reported and drained:
            run.drain_reported = True
            took = sample.elapsed - run.restarted_at
            run.view.event(
                f"backlog drained {took:.1f}s after the restart (peak: "
                f"{plural(run.peak_backlog, 'operation')}, {run.peak_spool} of them on disk)"
            )
            run.phase = "writing"
        if done():
            return
        await anyio.sleep(0.25)


async def _replicate(
    run: _Run, primary: Any, server: DevServerProcess, options: DemoOptions
) -> None:
    timeline = Timeline.for_duration(options.duration)
    db = run.rep.wrap(primary)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_workload, run, db, options.rate, stop)
        tg.start_soon(_chaos, run, server, timeline)
        await _watch(run, lambda: run.elapsed() >= timeline.end_at)
        stop.set()
    run.write_rate, run.phase = 0.0, "flushing"
    run.view.event(f"writes stopped after {plural(run.writes, 'write')}; flushing")
    flushed = anyio.Event()

    async def flush() -> None:
        await run.rep.flush(timeout=60)
        flushed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(flush)
        await _watch(run, flushed.is_set)
    for n in run.events:
        await db.delete(RecordID("events", n))
    run.phase = "done"
    run.view.show(run.sample())
    run.view.event(
        f"deleted {plural(len(run.events), 'event')} on the primary: the secondary keeps "
        "them (deletes are not propagated; it is an archive)"
    )


async def _open_primary(served: DevServerProcess | None, password: str) -> Any:
    """The application's connection: the SDK's embedded 2.x engine, or a served 3.x one."""
    if served is None:
        primary: Any = AsyncSurreal("mem://")
        await primary.connect()
    else:  # the SDK embeds only 2.x: a 3.x primary is served by a child process
        primary = AsyncSurreal(served.url)
        await primary.connect()
        await primary.signin({"username": "root", "password": password})
    await primary.use(NAMESPACE, DATABASE)
    return primary


async def _demo(
    server: DevServerProcess,
    served: DevServerProcess | None,
    workdir: Path,
    password: str,
    options: DemoOptions,
    console: Console,
) -> tuple[VerifyReport, str | None]:
    config = demo_config(server.url, password, workdir / "state")
    primary = await _open_primary(served, password)
    try:
        await primary.query(_INDEX)
        async with Replicator(config) as rep:
            with anyio.fail_after(10):
                await rep.secondary.wait_up()
            await rep.secondary.call(lambda c: c.query(_INDEX), 10)
            metrics = None if rep.http is None else f"{rep.http.url}/metrics"
            console.print(f"metrics: {metrics or 'not served (port taken)'}", soft_wrap=True)
            title = (
                f"syncd demo — {options.duration:.0f}s of writes, the secondary killed mid-stream"
            )
            with DemoView(console, title) as view:
                await _replicate(_Run(rep, view), primary, server, options)
            console.print("verifying: every record of the primary against the secondary ...")
            verifier = Verifier(config, DirectCaller(primary), rep.secondary, VerifyOptions())
            report = await verifier.run()
        return report, metrics
    finally:
        with anyio.CancelScope(shield=True):
            await primary.close()
            # The embedded engine can abort the process at exit when torn down
            # right after close() (a Rust panic); a short pause avoids it.
            await anyio.sleep(0.1)


def run_demo(options: DemoOptions, console: Console) -> int:
    """Run the demo; 0 when primary and secondary agree at the end, 1 otherwise."""
    workdir = Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    password = secrets.token_urlsafe(16)  # the child's root password: generated, never shown
    server = DevServerProcess(
        f"surrealkv://{workdir / 'secondary'}",
        user="root",
        password=password,
        log_path=workdir / "secondary.log",
        engine=options.engine,
    )
    served = None
    if options.engine != 2:
        served = DevServerProcess(
            "mem://",
            user="root",
            password=password,
            log_path=workdir / "primary.log",
            engine=options.engine,
        )
    keep = options.keep
    try:
        pid = server.start()
        if served is None:
            console.print("primary: embedded in this process (mem://, 2.x)", soft_wrap=True)
        else:
            ppid = served.start()
            console.print(
                f"primary: devserver child process, pid {ppid}, engine {options.engine}",
                soft_wrap=True,
            )
        console.print(
            f"secondary: devserver child process, pid {pid}, at {server.url} "
            f"(store {workdir / 'secondary'})",
            soft_wrap=True,
        )
        report, metrics = anyio.run(_demo, server, served, workdir, password, options, console)
    except Exception:
        keep = True  # the child's log and the state are what explains a failure
        raise
    finally:
        server.stop()
        if served is not None:
            served.stop()
        if keep:
            console.print(f"demo files kept in {workdir}", soft_wrap=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(console, report, "verify: primary against secondary")
    if report.consistent:
        extra = sum(t.tally.extra for t in report.tables)
        console.print(
            f"primary and secondary agree: every record written during the outage reached the "
            f"secondary; {plural(extra, 'deleted record')} kept there as an archive",
            soft_wrap=True,
        )
    else:
        console.print("primary and secondary DO NOT agree (see above)", soft_wrap=True)
    if metrics:
        console.print(f"metrics were served at {metrics} while the demo ran", soft_wrap=True)
    return 0 if report.consistent else 1
