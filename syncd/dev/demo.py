"""``syncd demo``: replication to two secondaries end to end, with no config and no server.

What happens, in about ``duration`` seconds plus a few:

1. two secondaries are started as child processes (the devserver on
   127.0.0.1, each with a ``surrealkv://`` store in a temporary directory, so
   its data survives a kill): ``archive`` (priority 1) and ``analytics``
   (priority 2); an embedded primary (``mem://``) is opened here;
2. :func:`~syncd.dev.demoscript.replicate` runs a workload through
   :meth:`Replicator.wrap` and the plan of :mod:`syncd.dev.demoplan`:
   ``archive`` is killed with SIGKILL (its backlog builds in memory, then
   spills to its spool, while ``analytics`` keeps up); ``analytics`` is paused
   (capture goes on, nothing is applied to it); a merged read shows reads
   still work, the primary's row winning over the paused secondary's stale
   one; ``archive`` is restarted on the same port and drains; ``analytics``
   is resumed and drains;
3. the writes stop, the pipeline is flushed, five events are deleted on the
   primary (the secondaries keep them: they are archives), and each
   secondary is verified against the primary, record by record;
   :mod:`syncd.dev.demoreport` prints the outcome, and the exit status says
   whether every secondary equals the primary.

Nothing is left running: the children are stopped in a ``finally`` (also
after Ctrl-C), and the temporary directory is removed unless ``--keep`` is
given or something failed, in which case the demo says where its files are.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from surrealdb import AsyncSurreal

from syncd.config import Config
from syncd.dev.demoplan import KILLED, PAUSED
from syncd.dev.demoreport import DemoResult, print_result
from syncd.dev.demoscript import PROBE, DemoRun, replicate, save_note
from syncd.dev.demoview import DemoView
from syncd.dev.process import DevServerProcess
from syncd.interrupts import run_until_interrupted
from syncd.service.replicator import Replicator
from syncd.surreal.endpoints import DirectCaller
from syncd.tools.verify import Verifier, VerifyOptions

__all__ = ["DemoOptions", "demo_config", "run_demo"]

NAMESPACE = "demo"
DATABASE = "main"
#: The secondaries, lowest priority number (first in merged reads) first.
SECONDARIES = ((KILLED, 1), (PAUSED, 2))
# The original application's unique index: the reason natural keys matter.
_INDEX = "DEFINE INDEX IF NOT EXISTS kv_natural ON kv_memories FIELDS user_id, key UNIQUE"


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs."""

    duration: float = 20.0  # seconds of writes
    engine: int = 2  # the SurrealDB generation of every database: 2 (2.3.10) or 3 (3.2.4)
    rate: int = 300  # writes per second
    keep: bool = False  # keep the temporary directory


def demo_config(urls: dict[str, str], password: str, state_dir: Path) -> Config:
    """The demo's configuration: the two secondaries at ``urls`` (by name), quick
    retries, a small queue (so the spools show)."""
    secondaries = [
        {
            "name": name,
            "url": urls[name],
            "user": "root",
            "pass": password,
            "namespace": NAMESPACE,
            "database": DATABASE,
            "priority": priority,
        }
        for name, priority in SECONDARIES
    ]
    return Config.from_mapping(
        {
            "secondaries": secondaries,
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


async def _open_primary(served: DevServerProcess | None, password: str) -> Any:
    """The application's connection: the SDK's embedded 2.x engine, or a served 3.x one."""
    if served is None:
        primary: Any = AsyncSurreal("mem://")
        await primary.connect()
    else:  # the SDK embeds only 2.x: a 3.x primary is served by a child process
        primary = AsyncSurreal(served.rpc_url)
        await primary.connect()
        await primary.signin({"username": "root", "password": password})
    await primary.use(NAMESPACE, DATABASE)
    return primary


async def _demo(
    servers: dict[str, DevServerProcess],
    served: DevServerProcess | None,
    workdir: Path,
    password: str,
    options: DemoOptions,
    console: Console,
) -> DemoResult:
    config = demo_config({n: s.rpc_url for n, s in servers.items()}, password, workdir / "state")
    primary = await _open_primary(served, password)
    try:
        await primary.query(_INDEX)
        async with Replicator(config) as rep:
            for replica in rep.fanout:
                with anyio.fail_after(10):
                    await replica.secondary.wait_up()
                await replica.secondary.call(lambda c: c.query(_INDEX), 10)
            # The probe note, on every secondary before the script begins.
            await save_note(rep.wrap(primary), PROBE["u"], PROBE["k"], "v1")
            await rep.flush(timeout=10)
            metrics = None if rep.http is None else f"{rep.http.url}/metrics"
            console.print(f"metrics: {metrics or 'not served (port taken)'}", soft_wrap=True)
            title = (
                f"syncd demo — {options.duration:.0f}s of writes; {KILLED} killed, {PAUSED} paused"
            )
            with DemoView(console, title) as view:
                run = DemoRun(rep, view)
                flushed = await replicate(
                    run, primary, servers[KILLED], duration=options.duration, rate=options.rate
                )
            result = DemoResult(
                writes=run.writes,
                expected={
                    "kv_memories": len(run.notes) + 1,
                    "events": run.events - len(run.deleted),
                },
                outages=run.outages,
                read=run.read,
                flushed=flushed,
                metrics=metrics,
                applied={
                    str(e["name"]): int(e["applied"])
                    for e in rep.status()["secondaries"]  # type: ignore[attr-defined]
                },
                superseded={
                    name: int(rep.metrics.snapshot(secondary=name)["superseded"])
                    for name in rep.fanout.names
                },
            )
            names = " and ".join(rep.fanout.names)
            console.print(f"verifying: every record of the primary against {names} ...")

            async def verify(name: str) -> None:
                verifier = Verifier(
                    config,
                    DirectCaller(primary),
                    rep.fanout.get(name).secondary,
                    VerifyOptions(),
                )
                result.reports[name] = await verifier.run()

            async with anyio.create_task_group() as tg:
                for name in rep.fanout.names:
                    tg.start_soon(verify, name)
            # In the secondaries' order, whichever finished first.
            result.reports = {n: result.reports[n] for n in rep.fanout.names}
        return result
    finally:
        with anyio.CancelScope(shield=True):
            await primary.close()
            # The embedded engine can abort the process at exit when torn down
            # right after close() (a Rust panic); a short pause avoids it.
            await anyio.sleep(0.1)


def run_demo(options: DemoOptions, console: Console) -> int:
    """Run the demo; 0 when every secondary equals the primary at the end, 1 otherwise."""
    workdir = Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    password = secrets.token_urlsafe(16)  # the children's root password: generated, never shown
    servers = {
        name: DevServerProcess(
            f"surrealkv://{workdir / name}",
            user="root",
            password=password,
            log_path=workdir / f"{name}.log",
            engine=options.engine,
        )
        for name, _ in SECONDARIES
    }
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
    console.print(f"workdir: {workdir}", soft_wrap=True)
    try:
        # Each child takes a second or two to start (imports, its store): all at once.
        children = [*servers.values(), *([] if served is None else [served])]
        with ThreadPoolExecutor(len(children)) as pool:
            pids = list(pool.map(lambda child: child.start().pid, children))
        if served is None:
            console.print("primary: embedded in this process (mem://, 2.x)", soft_wrap=True)
        else:
            console.print(
                f"primary: devserver child process, pid {pids[-1]}, engine {options.engine}",
                soft_wrap=True,
            )
        for (name, priority), server, pid in zip(SECONDARIES, servers.values(), pids, strict=False):
            console.print(
                f"secondary {name} (priority {priority}): devserver child process, pid {pid}, "
                f"at {server.rpc_url}",
                soft_wrap=True,
            )
        # Ctrl-C (or SIGTERM) stops the run; the children are stopped below.
        result = run_until_interrupted(
            _demo,
            servers,
            served,
            workdir,
            password,
            options,
            console,
            signals=(signal.SIGINT, signal.SIGTERM),
        )
    except Exception:
        keep = True  # the children's logs and the state are what explains a failure
        raise
    finally:
        for server in servers.values():
            server.stop()
        if served is not None:
            served.stop()
        if keep:
            console.print(f"demo files kept in {workdir}", soft_wrap=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return print_result(console, result)
