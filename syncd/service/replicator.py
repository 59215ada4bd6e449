"""The Replicator: one replica per secondary (queue, workers, connection), reads, metrics.

Usage (the public contract): ``async with syncd.Replicator(config) as rep:
db = rep.wrap(primary); ...; await rep.flush(timeout=30)`` (see the README).

Every captured operation is in the spool under ``state_dir`` before the
application's write returns (see :mod:`syncd.pipeline.queue`): an application
killed at any moment loses nothing, and the next start on the same
``state_dir`` delivers what was not applied, in order.

Every secondary has a :class:`~syncd.service.replica.Replica` of its own
(spool, queue, workers, connection, dead letters); a captured operation is
handed to each, so one secondary down, frozen, slow or paused holds back only
its own backlog.

Start-up order matters and is explicit: the spools are opened (so operations
left by an earlier run come first), then each replica's connection manager,
spool task, workers and re-sync task are started in one task group. Start-up
never waits for a secondary: if it is down, operations wait on disk until it
is back.

Shutdown (``__aexit__``): every replica drains for up to ``drain_timeout``
while its secondary is reachable, then the workers stop and each spool is told
what finished and fsynced.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup
from prometheus_client import CollectorRegistry

from syncd.capture.wrapper import ReplicatedConnection
from syncd.config import Config
from syncd.errors import ConfigError
from syncd.pipeline.queue import SyncQueue
from syncd.pipeline.statedir import open_state, state_error
from syncd.reads.merged import MergedReads, Source
from syncd.service.httpserver import HttpEndpoint, serve
from syncd.service.pausing import Pausable, PauseControl
from syncd.service.rates import RateSampler
from syncd.service.replica import Replica
from syncd.service.replicas import ReplicaSet
from syncd.sink.operation import Operation
from syncd.surreal.connection import ManagedConnection
from syncd.surreal.sdkvalues import from_sdk

log = structlog.get_logger("syncd.service.replicator")

# Counters whose last-minute rates status() reports (Metrics.snapshot() names).
_RATE_COUNTERS = ("applied", "enqueued", "dead_lettered")


class Replicator(Pausable):
    """Replicates captured writes to every secondary and merges reads from them."""

    def __init__(
        self,
        config: Config,
        *,
        registry: CollectorRegistry | None = None,
        serve_http: bool = True,
        ready_on_start: bool = True,
        http_required: bool = False,
        spool_name: str = "spool",
        resync: bool = True,
        only: str | None = None,
    ) -> None:
        """Build every replica; nothing is opened or started until ``async with``.

        ``resync=False`` (the daemon): operations the spool cannot take wait in
        memory instead of being recorded for a re-sync, as the changefeed
        delivers them again after a crash. ``only``: replicate to that
        secondary alone (one-shot tools' ``--secondary``).

        Raises:
            ConfigError: ``only`` names no configured secondary.
        """
        self.config = config
        #: One replica per secondary (or ``only`` that one), lowest priority number first.
        self.replicas = ReplicaSet.build(
            config, registry, only=only, spool_name=spool_name, resync=resync
        )
        self.metrics = self.replicas.first.metrics
        self._serve_http = serve_http
        self._lock_name = f"{spool_name}.lock"
        self._lock_fd: int | None = None
        #: The one key rule, shared by capture, the executors and merged reads.
        self.keys = config.key_rule()
        self.pauses = PauseControl(
            config.state_path,
            self.metrics,
            workers={r.name: r.workers for r in self.replicas},
            names=[r.name for r in self.replicas],
        )
        self.reads = MergedReads(
            [Source(r.name, r.secondary) for r in self.replicas],
            self.keys,
            query_timeout=config.query_timeout,
            metrics=self.metrics,
            active=lambda: self.config.sync_enabled and self._started,
            newest=config.newest_fields(),
        )
        self.http: HttpEndpoint | None = None
        self._tg: TaskGroup | None = None
        self._started = False
        self._ready_on_start = ready_on_start
        self._http_required = http_required
        self._ready = False
        #: Extra fields for :meth:`status` (the daemon adds its checkpoint).
        self.status_extra: Callable[[], dict[str, object]] | None = None
        #: A problem that makes the whole process unready (the daemon's stuck feed).
        self.health_problem: Callable[[], str | None] | None = None
        # Sampled by status() itself, so the rates need no task of their own;
        # the first sample (all zeros) makes the first answer "since start".
        self._rates = RateSampler()
        self._rates.observe(time.monotonic(), dict.fromkeys(_RATE_COUNTERS, 0.0))

    # The first (lowest priority number) secondary's parts, as the one
    # secondary of the flat config was reached before there were several;
    # the others through replicas / replica(name).

    @property
    def queue(self) -> SyncQueue:
        """The first secondary's queue."""
        return self.replicas.first.queue

    @property
    def secondary(self) -> ManagedConnection:
        """The first secondary's managed connection."""
        return self.replicas.first.secondary

    def replica(self, name: str) -> Replica:
        """The replica of secondary ``name``; ``KeyError`` if there is none."""
        return self.replicas.get(name)

    def hold(self, names: Iterable[str]) -> None:
        """Before ``async with``: keep these secondaries' backlogs until :meth:`release`."""
        for name in names:
            self.replicas.get(name).held_back = True

    async def release(self, name: str) -> None:
        """Start applying to secondary ``name``, held back since the start."""
        if self._tg is not None:
            await self.replicas.get(name).release(self._tg)

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> Replicator:
        """Open the state, start every replica's connection manager and workers.

        Raises:
            ConfigError: ``state_dir`` is unusable (a file, read-only, locked).
        """
        state = self.config.state_path
        self._lock_fd = open_state(state, self._lock_name)
        try:
            self.pauses.start()  # before any worker runs: a persisted pause holds from the start
            await self.replicas.open()
        except OSError as exc:
            self._unlock()
            raise state_error(state, exc) from None
        except BaseException:
            self._unlock()
            raise
        if self._serve_http and self.config.metrics_listen:
            try:
                self.http = serve(
                    self.config.metrics_listen,
                    self.metrics.registry,
                    ready=self.readiness,
                    status=self.status,
                    required=self._http_required,
                    control=self.pauses.endpoint(self.config.control_token),
                )
            except ConfigError:
                await self.replicas.close()
                self._unlock()
                raise
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            if self.config.sync_enabled:
                # A down or silent secondary costs at most connect_timeout here.
                await self.replicas.start(tg, self.config.connect_timeout)
        except BaseException:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        self._started = True
        self._ready = self._ready_on_start
        log.info(
            "replicator_started",
            secondaries=[r.name for r in self.replicas],
            workers=sum(len(r.workers) for r in self.replicas),
            spooled=self.spool_depth,
            sync_enabled=self.config.sync_enabled,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Drain within ``drain_timeout``, then persist what is left and stop."""
        tg, self._tg = self._tg, None
        if tg is None:
            return
        with anyio.CancelScope(shield=True):
            drained = await self._drain(self.config.drain_timeout)
        # Sealed on the event loop, so no put can race the persist threads.
        self.replicas.seal()
        # The task group must be exited in the scope it was entered in, so
        # this step cannot sit inside the shield.
        tg.cancel_scope.cancel()
        persisted = 0
        try:
            await tg.__aexit__(None, None, None)
        finally:
            # Whatever a task did, what is pending in memory reaches the disk.
            with anyio.CancelScope(shield=True):
                persisted = await self.replicas.persist_and_close()
                self._unlock()
                if self.http is not None:
                    self.http.stop()
        log.info("replicator_stopped", drained=drained, persisted=persisted)

    async def _drain(self, seconds: float) -> bool:
        if not self.config.sync_enabled:
            return True
        return await self.replicas.drain(seconds, self.pauses.is_paused)

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing releases the flock

    # -- public API --------------------------------------------------------

    def wrap(self, primary: Any) -> ReplicatedConnection:
        """Wrap a connected SDK connection: writes replicate, reads merge.

        A re-sync (after a spool could not keep some operations) reads the
        primary through the connection wrapped last.
        """
        for replica in self.replicas:
            if replica.resyncer is not None:
                replica.resyncer.primary = primary
        return ReplicatedConnection(primary, self, self.reads)

    # The contract spells it ``flush(timeout=30)``; the deadline is applied
    # inside with anyio.fail_after, as ASYNC109 asks.
    async def flush(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        """Wait until everything enqueued so far is applied or dead-lettered.

        On every secondary that is not paused (a paused one is not waited for,
        and one paused while this waits stops being waited for); that includes
        a re-sync of the tables whose operations a spool could not keep.
        ``TimeoutError`` after ``timeout`` seconds (``None``: wait as long as
        it takes), naming what each secondary still holds.
        """
        try:
            with anyio.fail_after(timeout):
                await self.replicas.wait_finished(self.pauses.unless_paused)
        except TimeoutError:
            left = self.replicas.holding(self.pauses.is_paused)
            raise TimeoutError(
                f"flush: not everything was applied within {timeout}s ({left})"
            ) from None

    def capture(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        source: str = "wrapper",
        copy: Callable[[Any], Any] = from_sdk,
    ) -> int:
        """Enqueue the given records (as the primary returned them); return how many.

        ``copy`` copies each row before it is queued; by default it also turns
        the SDK's values into syncd's, so a key is computed from what is sent
        whoever built the row. Rows without a record id, or of tables not
        replicated, are skipped.
        """
        if not self.config.sync_enabled:
            return 0
        if self.replicas.closed:
            # The primary committed: the application's write must not fail
            # because syncd has stopped. Counted and logged, not raised.
            self.count_uncaptured("replicator_closed")
            return 0
        ops = []
        for row in rows:
            # Copied (and converted) first: the key is computed from what is sent.
            op = Operation.from_row(copy(row), self.keys, source=source)
            if op is None or not self.config.replicates(op.table):
                continue
            ops.append(op)
        self.replicas.enqueue(ops)  # one write to each spool for the whole call
        return len(ops)

    def enqueue(self, ops: Iterable[Operation]) -> None:
        """Enqueue ready-made operations (daemon, backfill, replay) for every secondary."""
        self.replicas.enqueue(ops)

    def room(self) -> int:
        """How many more operations the daemon may read from the feed now
        (:meth:`ReplicaSet.room <syncd.service.replicas.ReplicaSet.room>`)."""
        return self.replicas.room()

    @property
    def queue_depth(self) -> int:
        """Operations pending in memory, every secondary together."""
        return self.replicas.queue_depth

    @property
    def spool_depth(self) -> int:
        """Operations waiting in the spools, every secondary together."""
        return self.replicas.spool_depth

    def lag_seconds(self) -> float:
        """Age of the oldest operation not yet applied on any secondary; 0 when idle."""
        return self.replicas.lag_seconds()

    @property
    def secondary_up(self) -> bool:
        """Whether every secondary is currently reachable."""
        return all(r.is_up for r in self.replicas)

    def count_uncaptured(self, reason: str) -> None:
        """Count a write whose records the wrapper could not see."""
        self.metrics.uncaptured_writes.labels(reason).inc()
        log.warning("write_not_captured", reason=reason)

    # -- health ------------------------------------------------------------

    def mark_ready(self) -> None:
        """Declare start-up finished (for owners that start with ``ready_on_start=False``)."""
        self._ready = True

    @property
    def is_ready(self) -> bool:
        """Whether start-up has finished (:meth:`mark_ready`)."""
        return self._ready

    def readiness(self) -> tuple[bool, str]:
        """``/readyz``: not ready while starting, or while a secondary is refused or down
        longer than ``readyz_down_threshold`` (the reason names it)."""
        refusals = [p for r in self.replicas if (p := r.refusal()) is not None]
        if not self._ready:
            # What holds the start up (a refused password, a primary out of
            # reach), not just "starting": the operator reads this first.
            problem = self.health_problem() if self.health_problem is not None else None
            why = [*refusals, *([problem] if problem else [])]
            return False, "starting" if not why else f"starting: {why[0]}"
        if self._tg is None:
            return False, "stopping"
        problem = self.health_problem() if self.health_problem is not None else None
        if problem is not None:
            return False, problem
        threshold = self.config.readyz_down_threshold
        downs = [p for r in self.replicas if (p := r.down_too_long(threshold)) is not None]
        if refusals or downs:
            return False, "; ".join(refusals + downs)
        return True, "ready"

    def status(self) -> dict[str, object]:
        """A snapshot for ``/status`` and ``syncd status`` (``rates``: over about the last
        minute; ``status_extra``, set by the daemon, adds keys such as ``checkpoint``).

        ``secondaries`` has one entry per secondary (state, lag, backlog, pause);
        ``secondary`` is the first of them, and the totals add them up.
        """
        snapshot = self.metrics.snapshot()
        rates = self._rates.observe(
            time.monotonic(), {name: snapshot.get(name, 0.0) for name in _RATE_COUNTERS}
        )
        ready, why = self.readiness()
        each = [r.status(self.pauses.status(r.name)) for r in self.replicas]
        return {
            "ready": {"ok": ready, "reason": why},
            "secondary": each[0],
            "secondaries": each,
            "lag_seconds": self.lag_seconds(),
            "queue_depth": self.queue_depth,
            "spool_depth": self.spool_depth,
            "resync_pending": self.replicas.resync_pending(),
            "dead_letters": snapshot.get("dead_letters", 0.0),
            "rates": rates.as_dict(),
            "metrics": snapshot,
            **(self.status_extra() if self.status_extra is not None else {}),
        }
