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
from collections.abc import Callable, Iterable

import anyio
import structlog
from anyio.abc import TaskGroup

from syncd.config import Config
from syncd.metrics import Metrics
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.statedir import resync_file, state_files
from syncd.service.connfailures import failure_label, refused
from syncd.service.pipeline import build_pipeline, drain
from syncd.sink.operation import Operation
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
        resync: bool = True,
    ) -> None:
        """Build the parts; nothing is opened until :meth:`open`.

        ``config`` is the whole configuration; the replica keeps its flat view
        for secondary ``name`` (:meth:`~syncd.config.Config.for_secondary`).
        ``metrics`` is already bound to ``name``.
        """
        self.name = name
        self.priority = priority
        self.config = config.for_secondary(name)
        self.metrics = metrics
        state = self.config.state_path
        spool_dir, dlq_path = state_files(state)
        # One-shot tools (backfill, repair) get a spool of their own, so they
        # can run beside the daemon; each spool is locked by its process.
        spool_dir = spool_dir.with_name(spool_name)
        self.deadletters = DeadLetterFile(dlq_path)
        parts = build_pipeline(
            self.config,
            metrics,
            self.deadletters,
            spool_dir=spool_dir,
            ledger_path=resync_file(state, spool_name) if resync else None,
            on_secondary_state=self._on_state,
        )
        self.queue, self.secondary, self.ledger = parts.queue, parts.secondary, parts.ledger
        self.workers, self.resyncer = parts.workers, parts.resyncer
        #: Workers not started until :meth:`release` (a secondary joining: its
        #: backlog waits while a backfill copies the tables to it first).
        self.held_back = False
        #: Feed positions at or before this were applied by an earlier run (daemon).
        self.skip_through: int | None = None
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
        self.config.state_path.mkdir(mode=0o700, parents=True, exist_ok=True)
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
        if self.resyncer is not None and self.ledger:
            self.resyncer.ledger_changed(self.ledger.tables())

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
            if self.resyncer is not None:
                await tg.start(self.resyncer.run)

    async def release(self, tg: TaskGroup) -> None:
        """Start applying what was held back (see :attr:`held_back`); once only."""
        if self.held_back:
            self.held_back = False
            await self._start_workers(tg)

    async def drain(self, seconds: float, *, paused: bool) -> bool:
        """Apply what is queued for up to ``seconds``; whether all of it was."""
        held = refused(self.secondary) is not None or paused or self.held_back
        return await drain(self.queue, self.secondary, seconds, held=held)

    def persist(self) -> int:
        """Stop taking puts and write what memory holds to the spool (a worker thread)."""
        return self.queue.persist()

    def close(self) -> None:
        """Close the spool and the ledger (a worker thread)."""
        self.queue.close()
        if self.ledger is not None:
            self.ledger.close()

    # -- flow ---------------------------------------------------------------

    def put(self, ops: Iterable[Operation]) -> None:
        """Enqueue ``ops`` (on disk before this returns; never blocks)."""
        self.queue.put_many(ops)

    def room(self) -> int:
        """How many more operations fit in memory; 0 while the spool refuses writes."""
        if not self.queue.writable:
            return 0
        return self.config.queue_size - self.queue.depth - self.queue.spooled

    async def wait_finished(self, target: int) -> None:
        """Until every operation up to ``target`` (a seq of this queue) is finished."""
        await self.queue.wait_finished(target)
        if self.resyncer is not None:
            await self.resyncer.wait_done()

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
