"""Re-copy: copy again the tables whose operations the spool could not keep (library).

When the disk is full or ``spool_max_bytes`` is reached, the queue records the
tables of the operations it could not keep in the ledger
(:mod:`syncd.pipeline.recopy`); when the spool is found damaged, every
replicated table. This task brings them back. Rules:

- it runs while the ledger names a table, the secondary is up, and the
  application has wrapped a primary connection: the copy reads the primary
  through that connection, as the application does; :data:`EVERY_TABLE`
  stands for every table the primary has then;
- it starts once what was queued before it has been applied, and its rows go
  to memory without the spool (:meth:`SyncQueue.put_copies`: the ledger and
  the primary are their record), so a disk that is still full does not stop
  the copy;
- a table is copied through the pipeline like a backfill
  (:func:`syncd.capture.backfill.copy_tables`: record-id ranges, each chunk
  applied before the next is read), so it lands behind everything queued
  before it, in order;
- a copied row whose key a writer put while that chunk's read ran is skipped:
  the writer's operation is at least as new, and may be behind the row in
  the queue; a row read before a write lands before that write's operation;
- the table leaves the ledger only if nothing of it went unkept since the
  copy started; otherwise it is copied again (after a pause).

The daemon does not use this: its changefeed is its record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import anyio
import structlog
from anyio.abc import TaskStatus

from syncd.capture.backfill import copy_tables, start_backfill
from syncd.capture.checkpoint import Checkpoint
from syncd.errors import PrimaryUnavailable
from syncd.keys import KeyRule
from syncd.metrics import Metrics
from syncd.pipeline.queue import SyncQueue
from syncd.pipeline.recopy import EVERY_TABLE, RecopyLedger
from syncd.sink.operation import Operation
from syncd.surreal.connection import ManagedConnection
from syncd.surreal.errors import describe, is_transport_error
from syncd.surreal.sdkvalues import from_sdk

__all__ = ["RESYNC_SOURCE", "Recopier"]

log = structlog.get_logger("syncd.capture.recopier")
T = TypeVar("T")

#: The ``source`` of the operations a re-sync enqueues.
RESYNC_SOURCE = "resync"
_POLL = 0.5
_RETRY = 5.0


class AppPrimary:
    """The application's own connection, as :func:`copy_tables` reads a primary."""

    def __init__(self, conn: Any) -> None:
        """Wrap ``conn``, a connected SDK connection."""
        self._conn = conn

    async def call(self, fn: Callable[[Any], Awaitable[T]], seconds: float) -> T:
        """Run ``fn(conn)`` within ``seconds``; a transport failure is PrimaryUnavailable."""
        try:
            with anyio.fail_after(seconds):
                return await fn(self._conn)
        except Exception as exc:
            if is_transport_error(exc):
                raise PrimaryUnavailable(f"primary unavailable: {describe(exc)}") from exc
            raise

    async def wait_up(self) -> None:
        """The application reconnects its connection, not syncd: wait, then try again."""
        await anyio.sleep(_RETRY)


class _CopyIntake:
    """Where a re-sync's chunks go: the queue, minus rows a writer overtook."""

    def __init__(self, queue: SyncQueue, keys: KeyRule, metrics: Metrics, table: str) -> None:
        self.metrics = metrics
        self.keys = keys
        self._queue = queue
        self._keys = keys
        self._table = table
        #: Keys of ``table`` others put since the current chunk's read began.
        self.written: set[str] = set()

    def observe(self, batch: list[Operation]) -> None:
        """The queue's observer: note the keys other sources put in our table."""
        for op in batch:
            if op.table == self._table and op.source != RESYNC_SOURCE:
                self.written.add(op.key)

    def capture(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        source: str = RESYNC_SOURCE,
        copy: Callable[[Any], Any] = dict,
    ) -> int:
        ops = []
        for row in rows:
            # Read through the application's connection: its SDK values become
            # syncd's, so the key is the one the wrapper's captures have.
            record = from_sdk(row)
            op = Operation.from_row(record, self._keys, table=self._table, source=RESYNC_SOURCE)
            if op is not None and op.key not in self.written:
                ops.append(op)
        self._queue.put_copies(ops)
        return len(ops)

    def enqueue(self, ops: Iterable[Operation]) -> None:
        self._queue.put_many(ops)

    async def flush(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        # The queue only: Replicator.flush also waits for the ledger, i.e. for us.
        await self._queue.wait_finished(self._queue.last_seq)
        # The next chunk's read starts after this: only writes from now on overtake it.
        self.written.clear()

    def room(self) -> int:
        return 0

    def count_uncaptured(self, reason: str) -> None:
        """Never called by a copy."""

    def schema_changed(self) -> None:
        """Never called by a copy."""


class Recopier:
    """Copies the ledger's tables from the primary through the pipeline; see the module."""

    def __init__(
        self,
        ledger: RecopyLedger,
        queue: SyncQueue,
        secondary: ManagedConnection,
        keys: KeyRule,
        metrics: Metrics,
        *,
        query_seconds: float,
    ) -> None:
        """Bind to the pipeline's parts; :attr:`primary` is set by ``Replicator.wrap``."""
        self._ledger = ledger
        self._queue = queue
        self._secondary = secondary
        self._keys = keys
        self._metrics = metrics
        self._query_seconds = query_seconds
        #: The application's connection the copies read through (``None``: none wrapped yet).
        self.primary: Any = None
        self.changed = anyio.Event()
        self._gauged: set[str] = set()

    def ledger_changed(self, tables: list[str]) -> None:
        """The ledger's callback (on the event loop): update the metric, wake waiters."""
        gauge = self._metrics.resync_pending
        for gone in self._gauged - set(tables):
            gauge.remove(gone)
        for table in tables:
            gauge.labels(table).set(1)
        self._gauged = set(tables)
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_done(self) -> None:
        """Return once the ledger names no table."""
        while self._ledger:
            await self.changed.wait()

    def _ready(self) -> bool:
        return bool(self._ledger) and self.primary is not None and self._secondary.is_up

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Copy marked tables whenever they can be copied, until cancelled."""
        task_status.started()
        while True:
            await anyio.sleep(_POLL)
            while self._ready():
                table = self._ledger.tables()[0]
                if not await self.copy(table):
                    await anyio.sleep(_RETRY)
                    break

    async def copy(self, table: str) -> bool:
        """Copy ``table`` once; return whether it left the ledger."""
        generation = self._ledger.generation(table)
        if generation is None:
            return True
        log.info("resync_started", table=table)
        primary = AppPrimary(self.primary)
        try:
            # Behind what was queued before: older operations land first.
            await self._queue.wait_finished(self._queue.last_seq)
            for name in await self._tables(primary, table):
                await self._copy_one(primary, name)
        except Exception as exc:
            log.error("resync_failed", table=table, error=describe(exc))
            return False
        if not self._ledger.clear(table, generation):
            log.warning("resync_again", table=table, reason="operations not kept during the copy")
            return False
        log.info("resync_done", table=table)
        return True

    async def _tables(self, primary: AppPrimary, table: str) -> list[str]:
        """``table``, or every table of the primary for :data:`EVERY_TABLE`."""
        if table != EVERY_TABLE:
            return [table]
        info = await primary.call(lambda c: c.query("INFO FOR DB"), self._query_seconds)
        tables = info.get("tables", {}) if isinstance(info, Mapping) else {}
        return sorted(str(name) for name in tables)

    async def _copy_one(self, primary: AppPrimary, table: str) -> None:
        intake = _CopyIntake(self._queue, self._keys, self._metrics, table)
        self._queue.observers.append(intake.observe)
        try:
            await copy_tables(
                primary=primary,
                intake=intake,
                tables=[table],
                checkpoint=Checkpoint(position=None, backfill=start_backfill(0)),
                save=_discard,
                query_seconds=self._query_seconds,
            )
        finally:
            self._queue.observers.remove(intake.observe)


async def _discard(_: Checkpoint) -> None:
    """A re-sync is not resumed mid-table: after a restart the table is copied whole."""
