"""Scenario 7 — the daemon: ``syncd run`` tailing the primary's changefeed, lag end to end.

Both databases are devserver processes on 127.0.0.1 (the daemon needs a
primary it can reach over the network) and ``syncd run`` is a third process,
so nothing here shares an event loop with the daemon. A writer commits single
records to the primary at 1,000 writes/s and notes when each commit returned;
a poller reads the secondary every ``POLL`` seconds (a record-id range scan
from the oldest record not yet seen) and notes when each record first
appears. Lag = first seen on the secondary - commit returned; it includes the
changefeed poll (``changefeed_poll_interval``), the queue and the apply, and
is overstated by up to one poll interval (the measurement's resolution).
"""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import anyio
import yaml

from bench.common import (
    APP_CORE,
    DATABASE,
    NAMESPACE,
    PASSWORD,
    RECORD_SHAPE,
    SECONDARY_CORE,
    USER,
    Result,
    Target,
    can_pin,
    direct_secondary,
    percentile,
    pin_process,
    scratch_dir,
    secondary_process,
)
from bench.lag import PacedWriter
from bench.memory import closed_port

POLL = 0.01
RATE = 1000.0


def available() -> bool:
    """Whether this checkout has the daemon (``syncd.service.daemon``)."""
    return importlib.util.find_spec("syncd.service.daemon") is not None


#: ``SYNCD_BENCH_DAEMON_POLL=50ms``: run the daemon with another idle poll interval.
POLL_OVERRIDE = os.environ.get("SYNCD_BENCH_DAEMON_POLL", "")


def _config(state: Path, primary_url: str, secondary_url: str, metrics_port: int) -> Path:
    data = {
        "primary_url": f"{primary_url}/rpc",
        "primary_user": USER,
        "primary_pass": PASSWORD,
        "primary_namespace": NAMESPACE,
        "primary_database": DATABASE,
        "secondary_url": f"{secondary_url}/rpc",
        "secondary_user": USER,
        "secondary_pass": PASSWORD,
        "secondary_namespace": NAMESPACE,
        "secondary_database": DATABASE,
        "tables": {"dmn": {}},
        "state_dir": str(state / "state"),
        "metrics_listen": f"127.0.0.1:{metrics_port}",
        "reconnect_backoff": "1s",
        "log_level": "error",
    }
    if POLL_OVERRIDE:  # an experiment: the daemon's idle poll interval
        data["changefeed_poll_interval"] = POLL_OVERRIDE
    path = state / "syncd.yaml"
    path.write_text(yaml.safe_dump(data))
    path.chmod(0o600)
    return path


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def run(*, seconds: float) -> Result:
    """Start ``syncd run``, write for ``seconds`` at 1,000 writes/s, measure lag by polling."""
    result = Result("daemon", f"Daemon (syncd run): lag at {RATE:.0f} writes/s")
    if not available():
        result.status = "not_available"
        result.notes.append("syncd.service.daemon does not exist yet in this checkout")
        return result
    seen: dict[int, float] = {}
    total = int(RATE * seconds)
    with (
        secondary_process(core=None) as primary_server,
        secondary_process() as secondary_server,
        scratch_dir("daemon") as state,
    ):
        async with direct_secondary(primary_server.url) as primary:
            await primary.query("DEFINE TABLE dmn SCHEMALESS CHANGEFEED 1d")
            metrics_port = closed_port()
            path = _config(state, primary_server.url, secondary_server.url, metrics_port)
            proc = _start(path, state / "daemon.log")
            if can_pin():  # the daemon runs beside the secondary, off the application's core
                pin_process(proc.pid, SECONDARY_CORE)
            try:
                with anyio.fail_after(60):
                    while not await anyio.to_thread.run_sync(_ready, metrics_port):
                        if proc.poll() is not None:
                            tail = (state / "daemon.log").read_text(errors="replace")[-1500:]
                            raise RuntimeError(f"syncd run exited {proc.returncode}: {tail}")
                        await anyio.sleep(0.1)
                if can_pin():  # threads started since: pinned too
                    pin_process(proc.pid, SECONDARY_CORE)
                writer = PacedWriter(primary, "dmn", RATE)
                async with direct_secondary(secondary_server.url) as secondary:
                    # 3.x refuses a SELECT from a table it does not have yet.
                    await secondary.query("DEFINE TABLE IF NOT EXISTS dmn SCHEMALESS")

                    async def poll() -> None:
                        low = 0
                        while low < total:
                            got = await secondary.query(f"SELECT VALUE n FROM dmn:{low}..")
                            now = time.time()
                            for n in got:
                                seen.setdefault(int(n), now)
                            while low in seen:
                                low += 1
                            await anyio.sleep(POLL)

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(writer.run, seconds)
                        with anyio.fail_after(seconds + 120):
                            await poll()
            finally:
                _stop(proc)
    committed = writer.committed
    lags = [seen[n] - committed[n] for n in committed if n in seen]
    f = result.figures
    f["writes"] = float(total)
    f["arrived_on_secondary"] = float(len(seen))
    f["lag_p50_ms"] = percentile(lags, 50) * 1e3
    f["lag_p99_ms"] = percentile(lags, 99) * 1e3
    f["lag_max_ms"] = max(lags, default=math.nan) * 1e3
    f["achieved_writes_per_s"] = writer.achieved_rate
    # Keeping up: every write arrived, and the lag stays bounded (no backlog grows).
    f["arrived_ratio"] = len(seen) / total if total else math.nan
    f["achieved_ratio_to_asked"] = writer.achieved_rate / RATE
    result.targets = [Target("lag_p99_ms", "<", 100.0), Target("arrived_ratio", ">=", 1.0)]
    result.setup = {
        "rate_writes_per_s": RATE,
        "writer_tasks": writer.concurrency,
        "seconds": seconds,
        "record": RECORD_SHAPE,
        "primary": "devserver process on 127.0.0.1 (mem://), table with CHANGEFEED 1d",
        "secondary": "devserver process on 127.0.0.1 (mem://)",
        "daemon": "python -m syncd run, defaults (changefeed_poll_interval "
        f"{POLL_OVERRIDE or '50 ms, the default'}, 4 workers)",
        "cores": (
            f"writer and primary devserver on core {APP_CORE}; daemon and secondary "
            f"on core {SECONDARY_CORE}"
            if can_pin()
            else "not pinned"
        ),
        "resolution_ms": POLL * 1e3,
    }
    result.notes.append("lag includes up to one poll of the secondary (10 ms) on top")
    return result


def _start(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``syncd run`` in its own session, its output to ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon (it drains and exits), SIGKILL if it does not within 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
