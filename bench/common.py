"""What every scenario shares: the records, the databases, the configuration, the statistics.

Rules of the suite:

- every figure is a ratio of two runs made side by side in one process, in
  interleaved rounds (A B, B A, A B, ...), reduced by the median: this machine
  is shared and noisy, so an absolute number from one run means little;
- the secondary is a devserver (the embedded engine served on 127.0.0.1, see
  ``syncd.dev.devserver``) in its own process, the primary an embedded
  ``AsyncSurreal("mem://")`` in this one, as an application would have it;
- every process started here is stopped in a ``finally``.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from prometheus_client import CollectorRegistry
from surrealdb import AsyncSurreal, RecordID

from syncd.config import Config
from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.service.replicator import Replicator
from syncd.surreal.rpc import RpcClient

NAMESPACE = "bench"
DATABASE = "main"
USER = "root"
PASSWORD = "root"
VALUE_CHARS = 120
LIMIT_CHUNK = 2000
LIMIT_QUERY = "FOR $r IN $rows { UPSERT $r.id CONTENT $r RETURN NONE }"
NAIVE_QUERY = "UPSERT $r.id CONTENT $r RETURN NONE"

RECORD_SHAPE = (
    "{id: table:n, user_id: 'u<n%100>', key: 'k<n>', value: <120 chars>, n: int, "
    "tags: [2 strings], ts: float} - about 230 bytes as CBOR"
)


def record(table: str, n: int, ts: float = 0.0) -> dict[str, Any]:
    """One benchmark record (about 230 bytes as CBOR), with its record id."""
    return {
        "id": RecordID(table, n),
        "user_id": f"u{n % 100}",
        "key": f"k{n}",
        "value": "x" * VALUE_CHARS,
        "n": n,
        "tags": ["alpha", "beta"],
        "ts": ts,
    }


def content(n: int, ts: float = 0.0) -> dict[str, Any]:
    """The same record without its id, as an application passes it to ``upsert``."""
    row = record("_", n, ts)
    del row["id"]
    return row


def records(table: str, start: int, count: int) -> list[dict[str, Any]]:
    """``count`` records of ``table`` numbered from ``start``."""
    return [record(table, n) for n in range(start, start + count)]


# -- statistics -------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values."""
    return statistics.median(values) if values else math.nan


def ratio(a: float, b: float) -> float:
    """``a / b``, NaN when ``b`` is zero or either is NaN."""
    if b == 0 or math.isnan(a) or math.isnan(b):
        return math.nan
    return a / b


def interleaved(rounds: int, arms: Sequence[str]) -> Iterator[tuple[int, str]]:
    """``(round, arm)`` pairs, the arms' order reversed every other round (ABBA...)."""
    for index in range(rounds):
        order = arms if index % 2 == 0 else list(reversed(arms))
        for arm in order:
            yield index, arm


# -- results ----------------------------------------------------------------


@dataclass
class Target:
    """A target on one figure: ``figure op limit`` (op is ``<=``, ``<`` or ``>=``)."""

    figure: str
    op: str
    limit: float

    def met(self, value: float) -> bool:
        """Whether ``value`` meets the target (NaN never does)."""
        if math.isnan(value):
            return False
        if self.op == "<=":
            return value <= self.limit
        if self.op == "<":
            return value < self.limit
        return value >= self.limit


@dataclass
class Result:
    """What one scenario reports: how it was set up, its figures, its targets."""

    id: str
    title: str
    setup: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: str = "ok"
    seconds: float = 0.0
    series: dict[str, list[list[float]]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The JSON form (series are written separately, they are long)."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "setup": self.setup,
            "figures": {k: _finite(v) for k, v in self.figures.items()},
            "targets": [
                {
                    "figure": t.figure,
                    "op": t.op,
                    "limit": t.limit,
                    "value": _finite(self.figures.get(t.figure, math.nan)),
                    "met": t.met(self.figures.get(t.figure, math.nan)),
                }
                for t in self.targets
            ],
            "notes": self.notes,
        }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


# -- cores --------------------------------------------------------------------

#: Where the application (this process, the primary, syncd) and the secondary
#: run: in production they are different machines, here different cores.
APP_CORE, SECONDARY_CORE = 0, 1
# Counted at import, before the bench pins itself to one core.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def can_pin() -> bool:
    """Whether there are two cores to pin the two sides to (and ``--no-pin`` was not given)."""
    if os.environ.get("SYNCD_BENCH_NO_PIN"):
        return False
    return hasattr(os, "sched_setaffinity") and _CORES >= 2


def pin_process(pid: int, core: int) -> None:
    """Pin every thread of ``pid`` (the engine's threads too) to ``core``; no-op without 2 cores."""
    if not can_pin() and pid != 0:
        return
    tasks = [pid]
    if pid != 0:
        with contextlib.suppress(OSError):
            tasks = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    for task in tasks:
        with contextlib.suppress(OSError):  # a thread that just ended
            os.sched_setaffinity(task, {core})


class PinnedServer(ServerProcess):
    """A devserver whose every (re)start is pinned to one core."""

    def __init__(self, core: int | None, engine: int | None = None) -> None:
        super().__init__(store="mem://", user=USER, password=PASSWORD, engine=engine)
        self.core = core

    def start(self, timeout: float = 20.0) -> ServerProcess:
        super().start(timeout)
        if self.core is not None and self.pid is not None and can_pin():
            pin_process(self.pid, self.core)
        return self


def engine_default() -> int:
    """The engine generation the devservers serve unless told (``SYNCD_DEVSERVER_ENGINE``)."""
    return int(os.environ.get("SYNCD_DEVSERVER_ENGINE", "2"))


# -- databases ----------------------------------------------------------------


@contextmanager
def secondary_process(
    engine: int | None = None, core: int | None = SECONDARY_CORE
) -> Iterator[ServerProcess]:
    """A devserver process (``mem://`` store) on 127.0.0.1, pinned to ``core``, stopped after.

    ``engine`` None: ``SYNCD_DEVSERVER_ENGINE`` (the bench's ``--engines`` sets it).
    """
    server = PinnedServer(core, engine)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def direct_secondary(url: str, *, rpc: bool = False) -> AsyncIterator[Any]:
    """A plain SDK connection to the secondary (or syncd's ``RpcClient``), for limits and checks."""
    db: Any
    with anyio.fail_after(20):
        if rpc:
            db = await RpcClient.connect(url, role="secondary", call_timeout=120)
            await db.signin(USER, PASSWORD)
        else:
            db = AsyncSurreal(url)
            await db.connect()
            await db.signin({"username": USER, "password": PASSWORD})
        await db.use(NAMESPACE, DATABASE)
    try:
        yield db
    finally:
        with anyio.move_on_after(5):
            await db.close()


async def count_rows(db: Any, table: str) -> int:
    """Rows in ``table`` on ``db``."""
    with anyio.fail_after(60):
        rows = await db.query(f"SELECT count() AS n FROM {table} GROUP ALL")
    return int(rows[0]["n"]) if rows else 0


def bench_config(state: Path, secondary_url: str, **overrides: Any) -> Config:
    """syncd's defaults, pointed at the bench secondary; only the HTTP endpoint is off.

    Reconnect backoff is capped at 1 s (default 10 s) so an outage ends when
    the secondary is back, not up to 10 s later; scenarios say when they
    override anything else.
    """
    data: dict[str, Any] = {
        "secondary_url": secondary_url,
        "secondary_user": USER,
        "secondary_pass": PASSWORD,
        "secondary_namespace": NAMESPACE,
        "secondary_database": DATABASE,
        "state_dir": str(state),
        "metrics_listen": None,
        "reconnect_backoff": "1s",
    }
    data.update(overrides)
    return Config.from_mapping(data)


def replicator(state: Path, secondary_url: str, **overrides: Any) -> Replicator:
    """A Replicator with its own metrics registry and the bench configuration."""
    return Replicator(bench_config(state, secondary_url, **overrides), registry=CollectorRegistry())


def config_summary(config: Config) -> dict[str, Any]:
    """The settings a reader needs to reproduce a figure."""
    return {
        "sync_workers": config.sync_workers,
        "sync_batch_size": config.sync_batch_size,
        "batch_timeout_s": config.batch_timeout,
        "queue_size": config.queue_size,
        "reconnect_backoff_s": config.reconnect_backoff,
        "query_timeout_s": config.query_timeout,
    }


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"syncd-bench-{prefix}-") as name:
        yield Path(name)


async def send_limit(
    url: str,
    table: str,
    start: int,
    count: int,
    *,
    fast_client: bool = False,
    chunk: int = LIMIT_CHUNK,
) -> float:
    """The drain limit: send the records by one hand-batched ``FOR`` per 2,000 rows.

    With the SDK's ``query_raw`` (the limit the targets use), or with
    ``fast_client`` through syncd's own client (:class:`RpcClient`: a stricter
    limit, the SDK's pure-Python codec no longer slows the client). Returns
    the seconds taken (records are built before the clock starts).
    """
    rows = records(table, start, count)
    chunks = [rows[i : i + chunk] for i in range(0, len(rows), chunk)]
    async with direct_secondary(url, rpc=fast_client) as db:
        started = anyio.current_time()
        for chunk in chunks:
            with anyio.fail_after(120):
                await db.query_raw(LIMIT_QUERY, {"rows": chunk})
        return anyio.current_time() - started


async def send_naive(url: str, table: str, start: int, count: int) -> float:
    """The naive baseline: one UPSERT per round trip. Returns the seconds taken."""
    rows = records(table, start, count)
    async with direct_secondary(url) as db:
        started = anyio.current_time()
        for row in rows:
            with anyio.fail_after(30):
                await db.query_raw(NAIVE_QUERY, {"r": row})
        return anyio.current_time() - started
