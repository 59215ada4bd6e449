"""The Replicator: owns the pipeline — queue, workers, secondary connection, metrics.

Usage (the public contract): ``async with syncd.Replicator(config) as rep:
db = rep.wrap(primary); ...; await rep.flush(timeout=30)`` (see the README).

Every captured operation is in the spool under ``state_dir`` before the
application's write returns (see :mod:`syncd.pipeline.queue`): an application
killed at any moment loses nothing, and the next start on the same
``state_dir`` delivers what was not applied, in order.

Start-up order matters and is explicit: the spool is opened (so operations left
by an earlier run come first), then the connection manager, the spool's run
task, the workers and the re-sync task are started in one task group.
Start-up never waits for the secondary: if it is down, operations wait on disk
until it is back.

Shutdown (``__aexit__``): drain for up to ``drain_timeout`` while the secondary
is reachable, then stop the workers, tell the spool what finished and fsync it.
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
from syncd.metrics import Metrics
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.statedir import open_state, resync_file, state_error, state_files
from syncd.reads.merged import MergedReads
from syncd.service.connfailures import failure_label, refused
from syncd.service.httpserver import HttpEndpoint, serve
from syncd.service.pausing import Pausable, PauseControl
from syncd.service.pipeline import build_pipeline, drain
from syncd.service.rates import RateSampler
from syncd.sink.operation import Operation
from syncd.surreal.dialect import tested
from syncd.surreal.sdkvalues import from_sdk

log = structlog.get_logger("syncd.service.replicator")

# Counters whose last-minute rates status() reports (Metrics.snapshot() names).
_RATE_COUNTERS = ("applied", "enqueued", "dead_lettered")


class Replicator(Pausable):
    """Replicates captured writes to the secondary and merges reads from it."""

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
    ) -> None:
        """Build the pipeline; nothing is opened or started until ``async with``.

        ``resync=False`` (the daemon): operations the spool cannot take wait in
        memory instead of being recorded for a re-sync, as the changefeed
        delivers them again after a crash.
        """
        self.config = config
        self.metrics = Metrics(registry)
        self._serve_http = serve_http
        state = config.state_path
        spool_dir, dlq_path = state_files(state)
        # One-shot tools (backfill, repair) get a spool of their own, so they
        # can run beside the daemon; each spool is locked by one process.
        spool_dir = spool_dir.with_name(spool_name)
        self._lock_name = f"{spool_name}.lock"
        self._lock_fd: int | None = None
        self.deadletters = DeadLetterFile(dlq_path)
        parts = build_pipeline(
            config,
            self.metrics,
            self.deadletters,
            spool_dir=spool_dir,
            ledger_path=resync_file(state, spool_name) if resync else None,
            on_secondary_state=self._on_secondary_state,
        )
        self.queue, self.secondary, self.ledger = parts.queue, parts.secondary, parts.ledger
        #: The one key rule, shared by capture, the executor and merged reads.
        self.keys = parts.keys
        self.workers, self.resyncer = parts.workers, parts.resyncer
        self.pauses = PauseControl(state, self.metrics, workers=self.workers)  # pause, resume
        self.reads = MergedReads(
            self.secondary,
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
        self.metrics.set_lag_source(self.queue.lag_seconds)
        self.metrics.set_dead_letter_source(self.deadletters.live_count)
        self.metrics.secondary_up.set(0)

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> Replicator:
        """Open the state, start the connection manager and the workers.

        Raises:
            ConfigError: ``state_dir`` is unusable (a file, read-only, locked).
        """
        state = self.config.state_path
        self._lock_fd = open_state(state, self._lock_name)
        try:
            self.pauses.start()  # before any worker runs: a persisted pause holds from the start
            if self.ledger is not None:
                await anyio.to_thread.run_sync(self.ledger.open)
            await anyio.to_thread.run_sync(self.queue.open)
            # Counted once off the event loop; scrapes then count only what changed.
            await anyio.to_thread.run_sync(self.deadletters.live_count)
        except OSError as exc:
            self._unlock()
            raise state_error(state, exc) from None
        except BaseException:
            if self.ledger is not None:
                self.ledger.close()
            self._unlock()
            raise
        if self.resyncer is not None and self.ledger:
            self.resyncer.ledger_changed(self.ledger.tables())
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
                await anyio.to_thread.run_sync(self.queue.close)
                self._unlock()
                raise
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            if self.config.sync_enabled:
                await tg.start(self.secondary.run)
                await tg.start(self.queue.run)
                for worker in self.workers:
                    await tg.start(worker.run)
                if self.resyncer is not None:
                    await tg.start(self.resyncer.run)
                # Let the first attempt finish so the first reads can merge; a
                # down or silent secondary costs at most connect_timeout here.
                with anyio.move_on_after(self.config.connect_timeout):
                    await self.secondary.wait_first_attempt()
        except BaseException:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        self._started = True
        self._ready = self._ready_on_start
        log.info(
            "replicator_started",
            workers=len(self.workers),
            spooled=self.queue.spooled,
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
        # Sealed on the event loop, so no put can race the persist thread.
        self.queue.seal()
        # The task group must be exited in the scope it was entered in, so
        # this step cannot sit inside the shield.
        tg.cancel_scope.cancel()
        try:
            await tg.__aexit__(None, None, None)
        finally:
            # Whatever a task did, what is pending in memory reaches the disk.
            with anyio.CancelScope(shield=True):
                persisted = await anyio.to_thread.run_sync(self.queue.persist)
                await anyio.to_thread.run_sync(self.queue.close)
                if self.ledger is not None:
                    await anyio.to_thread.run_sync(self.ledger.close)
                self._unlock()
                if self.http is not None:
                    self.http.stop()
        log.info("replicator_stopped", drained=drained, persisted=persisted)

    async def _drain(self, seconds: float) -> bool:
        if not self.config.sync_enabled:
            return True
        held = refused(self.secondary) is not None or self.pauses.is_paused()
        return await drain(self.queue, self.secondary, seconds, held=held)

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing releases the flock

    # -- public API --------------------------------------------------------

    def wrap(self, primary: Any) -> ReplicatedConnection:
        """Wrap a connected SDK connection: writes replicate, reads merge.

        A re-sync (after the spool could not keep some operations) reads the
        primary through the connection wrapped last.
        """
        if self.resyncer is not None:
            self.resyncer.primary = primary
        return ReplicatedConnection(primary, self, self.reads)

    # The contract spells it ``flush(timeout=30)``; the deadline is applied
    # inside with anyio.fail_after, as ASYNC109 asks.
    async def flush(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        """Wait until everything enqueued so far is applied or dead-lettered.

        That includes a re-sync of the tables whose operations the spool could
        not keep. Paused secondaries are not waited for: with the only one paused,
        it returns at once. ``TimeoutError`` after ``timeout`` seconds (``None``:
        wait as long as it takes).
        """
        target = self.queue.last_seq
        try:
            with anyio.fail_after(timeout):
                await self.pauses.unless_all_paused(lambda: self._finished(target))
        except TimeoutError:
            pending = self.ledger.tables() if self.ledger is not None else []
            raise TimeoutError(
                f"flush: not everything was applied within {timeout}s "
                f"({self.queue.depth} in memory, {self.queue.spooled} spooled, "
                f"re-sync pending: {pending or 'none'}, "
                f"secondary {'up' if self.secondary.is_up else 'down'})"
            ) from None

    async def _finished(self, target: int) -> None:
        await self.queue.wait_finished(target)
        if self.resyncer is not None:
            await self.resyncer.wait_done()

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
        if self.queue.closed:
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
        self.queue.put_many(ops)  # one write to the spool for the whole call
        return len(ops)

    def enqueue(self, ops: Iterable[Operation]) -> None:
        """Enqueue ready-made operations (daemon, backfill, replay)."""
        self.queue.put_many(ops)

    def room(self) -> int:
        """How many more operations fit in memory; 0 while the spool refuses writes."""
        if not self.queue.writable:
            return 0
        return self.config.queue_size - self.queue.depth - self.queue.spooled

    def safe_position(self, newest: int) -> int:
        """The feed position through which every operation is applied or dead-lettered."""
        return self.queue.positions.safe_through(newest)

    @property
    def queue_depth(self) -> int:
        """Operations pending in memory."""
        return self.queue.depth

    @property
    def spool_depth(self) -> int:
        """Operations waiting in the spool."""
        return self.queue.spooled

    def lag_seconds(self) -> float:
        """Age of the oldest operation not yet applied; 0 when idle."""
        return self.queue.lag_seconds()

    @property
    def secondary_up(self) -> bool:
        """Whether the secondary is currently reachable."""
        return self.secondary.is_up

    def count_uncaptured(self, reason: str) -> None:
        """Count a write whose records the wrapper could not see."""
        self.metrics.uncaptured_writes.labels(reason).inc()
        log.warning("write_not_captured", reason=reason)

    # -- health ------------------------------------------------------------

    def _on_secondary_state(self, up: bool) -> None:
        self.metrics.secondary_up.set(1 if up else 0)
        self.metrics.secondary_state_since.set(time.time())

    def mark_ready(self) -> None:
        """Declare start-up finished (for owners that start with ``ready_on_start=False``)."""
        self._ready = True

    def readiness(self) -> tuple[bool, str]:
        """``/readyz``: not ready while starting or while the secondary is down too long."""
        failure = refused(self.secondary)
        if not self._ready:
            return False, "starting" if failure is None else f"starting: {failure}"
        if self._tg is None:
            return False, "stopping"
        problem = self.health_problem() if self.health_problem is not None else None
        if problem is not None or failure is not None:
            return False, str(problem or failure)
        down_for = time.time() - self.secondary.since
        if not self.secondary.is_up and down_for > self.config.readyz_down_threshold:
            return False, f"secondary down for {down_for:.0f}s"
        return True, "ready"

    def status(self) -> dict[str, object]:
        """A snapshot for ``/status`` and ``syncd status`` (``rates``: over about the last
        minute; ``status_extra``, set by the daemon, adds keys such as ``checkpoint``)."""
        snapshot = self.metrics.snapshot()
        rates = self._rates.observe(
            time.monotonic(), {name: snapshot.get(name, 0.0) for name in _RATE_COUNTERS}
        )
        ready, why = self.readiness()
        return {
            "ready": {"ok": ready, "reason": why},
            "secondary": {
                "up": self.secondary.is_up,
                "since": self.secondary.since,
                "last_error": self.secondary.last_error,
                "failure": failure_label(self.secondary),
                "version": self.secondary.server_version,
                "tested": tested(self.secondary.server_version),
                **self.pauses.status(),  # paused, paused_since
            },
            "lag_seconds": self.queue.lag_seconds(),
            "queue_depth": self.queue.depth,
            "spool_depth": self.queue.spooled,
            "resync_pending": self.ledger.tables() if self.ledger is not None else [],
            "dead_letters": snapshot.get("dead_letters", 0.0),
            "rates": rates.as_dict(),
            "metrics": snapshot,
            **(self.status_extra() if self.status_extra is not None else {}),
        }
