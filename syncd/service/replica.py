"""One secondary's replica: its own spool, queue, workers, connection and dead letters.

Every secondary is replicated independently (the ``secondaries:`` list, or
the one the flat ``secondary_*`` keys configure): what one holds back — down,
frozen, slow, paused — waits in its own spool and never slows another. A
:class:`~syncd.service.replicator.Replicator` owns one :class:`Replica` per
secondary and hands every captured operation to each.

State: the flat secondary keeps its files in ``state_dir`` itself (where they
always were), a named one under ``state_dir/secondaries/<name>``
(:meth:`syncd.config.Config.secondary_state`). A secondary removed from the
config leaves its directory in place, unused.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import structlog
from anyio.abc import TaskGroup

from syncd.capture.recopier import Recopier
from syncd.config import Config
from syncd.metrics import Metrics
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.queue import SyncQueue
from syncd.pipeline.recopy import EVERY_TABLE, RecopyLedger
from syncd.pipeline.spool import Spool
from syncd.pipeline.statedir import resync_file, state_files
from syncd.pipeline.worker import Worker, WorkerSettings
from syncd.service.connfailures import failure_label, refused, reporter
from syncd.sink.executor import Executor
from syncd.surreal.connection import managed_connection
from syncd.surreal.dialect import tested

__all__ = ["Replica"]


class Replica:
    """The pipeline of one secondary (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        name: str,
        metrics: Metrics,
        *,
        priority: int = 0,
        spool_name: str = "spool",
        ledger: bool = True,
    ) -> None:
        """Build the parts; nothing is opened until :meth:`open`.

        ``config`` is the whole configuration (shared settings, and secondary
        ``name``'s own entry); ``metrics`` is already bound to ``name``.
        """
        self.name = name
        self.priority = priority
        self.config = config
        self.metrics = metrics
        #: This secondary's own directory: spool, dead letters, re-sync ledger.
        self.state_path = state = config.secondary_state(name)
        spool_dir, dlq_path = state_files(state)
        # One-shot tools (backfill, repair) get a spool of their own, so they
        # can run beside the daemon; each spool is locked by its process.
        spool_dir = spool_dir.with_name(spool_name)
        self.deadletters = DeadLetterFile(dlq_path)
        # Daemon and one-shot tools: no re-sync ledger (the feed, or running
        # the tool again, delivers what the disk could not take).
        self.ledger = RecopyLedger(resync_file(state, spool_name)) if ledger else None
        spool = Spool(
            spool_dir, max_bytes=config.spool_max_bytes, on_lost=metrics.spool_frames_lost.inc
        )
        self.queue = SyncQueue(
            lanes=config.sync_workers,
            capacity=config.queue_size,
            spool=spool,
            metrics=metrics,
            ledger=self.ledger,
            # Lost operations' tables are unknown: every replicated table.
            every_table=list(config.tables) if config.tables is not None else [EVERY_TABLE],
            fsync_interval=config.capture_fsync_interval,
        )
        self.secondary = managed_connection(
            config,
            "secondary",
            secondary=name,
            name=metrics.secondary,
            on_state=self._on_state,
            on_reconnect=metrics.reconnects.inc,
            on_failure=reporter(metrics, "secondary"),
        )
        executor = Executor(
            self.secondary,
            keys=config.key_rule(),
            versions=config.versions(),
            write_timeout=config.write_timeout,
            metrics=metrics,
        )
        settings = WorkerSettings.from_config(config)
        self.workers = [
            Worker(
                lane,
                queue=self.queue,
                executor=executor,
                conn=self.secondary,
                deadletters=self.deadletters,
                settings=settings,
                metrics=metrics,
            )
            for lane in range(config.sync_workers)
        ]
        self.recopier: Recopier | None = None
        if self.ledger is not None:
            self.recopier = Recopier(
                self.ledger,
                self.queue,
                self.secondary,
                config.key_rule(),
                metrics,
                query_seconds=config.write_timeout,
            )
            self.ledger.on_change = self.recopier.ledger_changed
        #: Workers not started until :meth:`release` (a secondary joining: its
        #: backlog waits while a backfill copies the tables to it first).
        self.held_back = False
        metrics.set_lag_source(self.queue.lag_seconds)
        metrics.set_dead_letter_source(self.deadletters.live_count)
        metrics.secondary_up.set(0)
        #: Called each time the secondary's connection comes up (the schema mirror).
        self.on_up: Callable[[], None] | None = None

    # -- lifecycle (the Replicator calls these in order) ----------------------

    def open(self) -> None:
        """Open the state (in a worker thread): ledger, spool, dead-letter count.

        Raises:
            OSError: the state directory cannot be made or read.
        """
        self.state_path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.ledger is not None:
            self.ledger.open()
        try:
            self.queue.open()
            # Counted once off the event loop; scrapes then count only what changed.
            self.deadletters.live_count()
        except BaseException:
            if self.ledger is not None:
                self.ledger.close()
            raise
        if self.recopier is not None and self.ledger:
            self.recopier.ledger_changed(self.ledger.tables())

    async def start(self, tg: TaskGroup) -> None:
        """Start the connection manager, the spool's run task, the workers, the re-sync."""
        # Tasks copy the context they are started in: every event they log
        # names this secondary.
        with structlog.contextvars.bound_contextvars(secondary=self.name):
            await tg.start(self.secondary.run)
            await tg.start(self.queue.run)
        if not self.held_back:
            await self._start_workers(tg)

    async def _start_workers(self, tg: TaskGroup) -> None:
        with structlog.contextvars.bound_contextvars(secondary=self.name):
            for worker in self.workers:
                await tg.start(worker.run)
            if self.recopier is not None:
                await tg.start(self.recopier.run)

    async def release(self, tg: TaskGroup) -> None:
        """Start applying what was held back (see :attr:`held_back`); once only."""
        if self.held_back:
            self.held_back = False
            await self._start_workers(tg)

    async def drain(self, seconds: float, *, paused: bool) -> bool:
        """Wait up to ``seconds`` for what is queued now to be applied; whether it was."""
        if paused or self.held_back or refused(self.secondary) is not None:
            return False  # a wrong password does not heal in a grace period, nor a pause end
        target = self.queue.last_seq
        if self.queue.finished_through(target):
            return True  # nothing to drain: no grace period for a secondary that is down
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.secondary.is_up:
                # Nothing drains while the secondary is down; a short grace
                # covers a reconnect in progress, the spool covers the rest.
                with anyio.move_on_after(min(2.0, deadline - time.monotonic())):
                    await self.secondary.wait_up()
                if not self.secondary.is_up:
                    return False
            with anyio.move_on_after(min(0.5, max(0.0, deadline - time.monotonic()))):
                await self.queue.wait_finished(target)
                return True
        return False

    def persist(self) -> int:
        """Stop taking puts and write what memory holds to the spool (a worker thread)."""
        return self.queue.persist()

    def close(self) -> None:
        """Close the spool and the ledger (a worker thread)."""
        self.queue.close()
        if self.ledger is not None:
            self.ledger.close()

    # -- flow ---------------------------------------------------------------

    def room(self) -> int:
        """How many more operations fit in memory; 0 while the spool refuses writes."""
        if not self.queue.writable:
            return 0
        return self.config.queue_size - self.queue.depth - self.queue.spooled

    def applied_through(self, newest: int) -> int:
        """The feed position through which every operation was applied or dead-lettered
        (``newest``: the newest position read, when nothing is pending)."""
        return self.queue.positions.safe_through(newest)

    async def wait_finished(self, target: int) -> None:
        """Until every operation up to ``target`` (a seq of this queue) is finished."""
        await self.queue.wait_finished(target)
        if self.recopier is not None:
            await self.recopier.wait_done()

    def resync_pending(self) -> list[str]:
        """Tables whose operations the spool could not keep, waiting for a re-sync."""
        return self.ledger.tables() if self.ledger is not None else []

    @property
    def is_up(self) -> bool:
        """Whether the secondary is reachable now."""
        return self.secondary.is_up

    @property
    def held(self) -> bool:
        """Whether nothing can be applied now: down, or its credentials refused."""
        return not self.secondary.is_up or refused(self.secondary) is not None

    # -- health ---------------------------------------------------------------

    def _on_state(self, up: bool) -> None:
        self.metrics.secondary_up.set(1 if up else 0)
        self.metrics.secondary_state_since.set(time.time())
        if up and self.on_up is not None:
            self.on_up()

    def refusal(self) -> str | None:
        """The secondary's refusal of syncd's credentials, if that keeps it down (the
        message names the secondary when there are several)."""
        failure = refused(self.secondary)
        return None if failure is None else str(failure)

    def down_too_long(self, threshold: float) -> str | None:
        """Says so when the secondary has been unreachable longer than ``threshold``
        (not when it is refusing the credentials: :meth:`refusal` says that)."""
        down_for = time.time() - self.secondary.since
        if not self.secondary.is_up and down_for > threshold and self.refusal() is None:
            return f"{self.secondary.label} down for {down_for:.0f}s"
        return None

    def status(self, pause: dict[str, object]) -> dict[str, object]:
        """This secondary's part of ``status()``: state, lag, backlog, pause."""
        snapshot = self.metrics.snapshot(self.name)
        return {
            "name": self.name,
            "priority": self.priority,
            "up": self.secondary.is_up,
            "since": self.secondary.since,
            "last_error": self.secondary.last_error,
            "failure": failure_label(self.secondary),
            "version": self.secondary.server_version,
            "tested": tested(self.secondary.server_version),
            **pause,  # paused, paused_since
            "joining": self.held_back,
            "lag_seconds": self.queue.lag_seconds(),
            "queue_depth": self.queue.depth,
            "spool_depth": self.queue.spooled,
            "resync_pending": self.resync_pending(),
            "dead_letters": snapshot.get("dead_letters", 0.0),
            "applied": snapshot.get("applied", 0.0),
        }

    async def wait_first_attempt(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the first connection attempt to finish."""
        with anyio.move_on_after(seconds):
            await self.secondary.wait_first_attempt()
