"""A worker: drains one lane of the queue into the secondary, batch by batch.

Rules:
- a lane's operations are applied in the order they were enqueued; a worker
  sends one batch at a time and waits for its answer;
- while the secondary is unreachable the worker holds its batch and waits for
  the connection to come back (no attempt is counted: the record did nothing
  wrong) — then sends the same batch again; UPSERTs make that harmless;
- a record the secondary *refuses* is parked and retried after
  ``sync_retry_interval`` (doubling, capped); after ``sync_max_retries``
  refusals it goes to the dead-letter file. Parking does not hold up the rest
  of the lane. If a newer version of a parked record arrives, it supersedes
  the parked one (every operation carries the whole record);
- what a refusal counts is decided from its
  :class:`~syncd.surreal.failures.ErrorKind` alone (:func:`next_step`): a
  statement that was not executed (collateral of a failed transaction) is
  retried without counting against its record, like an outage;
- while the secondary is paused (its :class:`~syncd.pipeline.pause.PauseGate`
  closed) the worker takes nothing and sends nothing; a batch already sent
  finishes.

Logs name a record by table and :func:`~syncd.keys.key_hash` only, and a
refusal by its kind (``error_kind``): the secondary's text quotes field
values, keys and record ids, so it goes to the dead-letter file alone.
``log_record_ids: true`` adds the key and the text, for debugging.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import anyio
import structlog
from anyio.abc import TaskStatus

from syncd.backoff import retry_delay
from syncd.config import Config
from syncd.errors import SyncdError
from syncd.keys import key_hash
from syncd.metrics import Metrics
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.pipeline.lanes import coalesce
from syncd.pipeline.pause import PauseGate
from syncd.pipeline.queue import SyncQueue
from syncd.sink.executor import Executor, Rejection
from syncd.sink.operation import Operation
from syncd.surreal.connection import ManagedConnection
from syncd.surreal.errors import describe
from syncd.surreal.failures import ErrorKind, classify

log = structlog.get_logger("syncd.pipeline.worker")

_IDLE_WAIT = 1.0
# Longest wait between two attempts of a refused record, whatever the interval doubles to.
_RETRY_CAP = 300.0


class Step(NamedTuple):
    """What a refusal leads to: the record's attempts so far, and whether it is dead."""

    attempts: int
    dead_letter: bool


def next_step(kind: ErrorKind, attempts: int, max_retries: int) -> Step:
    """What a refusal of ``kind`` does to a record refused ``attempts`` times before.

    Every kind counts against the record but ``NOT_EXECUTED``: the statement
    never ran, so the record did nothing wrong (retried, never dead-lettered
    for it). A record counted ``max_retries`` times (at least once) is dead.
    """
    if kind is not ErrorKind.NOT_EXECUTED:
        attempts += 1
    return Step(attempts, attempts >= max(1, max_retries))


@dataclass(slots=True)
class _Parked:
    op: Operation
    due: float
    first_failed_at: float


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The knobs a worker reads from the configuration."""

    batch_size: int
    batch_timeout: float
    retry_interval: float
    max_retries: int
    retry_cap: float
    log_record_ids: bool = False

    @classmethod
    def from_config(cls, config: Config) -> WorkerSettings:
        """The settings ``config`` asks for."""
        return cls(
            batch_size=config.sync_batch_size,
            batch_timeout=config.batch_timeout,
            retry_interval=config.sync_retry_interval,
            max_retries=config.sync_max_retries,
            retry_cap=max(_RETRY_CAP, config.sync_retry_interval),
            log_record_ids=config.log_record_ids,
        )


class Worker:
    """Applies one lane's operations; see the module docstring for the rules."""

    def __init__(
        self,
        lane: int,
        *,
        queue: SyncQueue,
        executor: Executor,
        conn: ManagedConnection,
        deadletters: DeadLetterFile,
        settings: WorkerSettings,
        metrics: Metrics,
        gate: PauseGate | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` times retries; ``wall_clock`` stamps dead letters and measures lag."""
        self.lane = lane
        #: Closed while the secondary is paused; ``None``: never paused.
        self.gate = gate
        self._queue = queue
        self._executor = executor
        self._conn = conn
        self._dlq = deadletters
        self._settings = settings
        self._metrics = metrics
        self._parked: dict[tuple[str, str], _Parked] = {}
        self._clock = clock
        self._wall_clock = wall_clock

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Drain the lane until cancelled."""
        task_status.started()
        while True:
            await self.step()

    async def step(self) -> None:
        """Take one batch (plus due retries) and see it through."""
        s = self._settings
        if self.gate is not None:
            await self.gate.wait_open()
        batch = await self._queue.take(self.lane, s.batch_size, s.batch_timeout, self._wait())
        now = self._clock()
        superseded: list[Operation] = []
        for op in batch:
            parked = self._parked.pop((op.table, op.key), None)
            if parked is not None:
                superseded.append(parked.op)
        due = [p for p in self._parked.values() if p.due <= now]
        for p in due:
            del self._parked[(p.op.table, p.op.key)]
        # A parked record is older than anything taken after it was parked.
        ops, dropped = coalesce([p.op for p in due] + batch)
        superseded.extend(dropped)
        if superseded:
            self._finish_superseded(superseded)
        if not ops:
            return
        failures = {(p.op.table, p.op.key): p for p in due}
        rejected = await self._apply_until_answered(ops)
        refused = {id(r.op) for r in rejected}
        applied = [op for op in ops if id(op) not in refused]
        self._finish_applied(applied)
        for rejection in rejected:
            op = rejection.op
            await self._handle_rejection(rejection, failures.get((op.table, op.key)))

    def _wait(self) -> float:
        if not self._parked:
            return _IDLE_WAIT
        soonest = min(p.due for p in self._parked.values())
        return max(0.0, min(_IDLE_WAIT, soonest - self._clock()))

    async def _apply_until_answered(self, ops: list[Operation]) -> list[Rejection]:
        while True:
            if self.gate is not None:
                # Taken before a pause: held (still pending) until the resume.
                await self.gate.wait_open()
            await self._conn.wait_up()
            if self.gate is not None and self.gate.paused:
                continue  # paused while the secondary was down
            try:
                return await self._executor.apply(ops)
            except Exception as exc:
                if isinstance(exc, SyncdError) and exc.retriable:
                    # Unanswered (the secondary is unreachable): nothing is known
                    # applied, and the same batch is sent again once it is back.
                    log.debug("batch_unanswered", lane=self.lane, size=len(ops), error=str(exc))
                    continue
                # A bug or an unencodable record must not kill the worker (and
                # with it the application's task group): count it against the
                # records, which end in the dead-letter file if it persists.
                # No traceback: its frames hold the records' contents; nor
                # its text, which may quote them (the dead-letter file keeps it).
                kind, reason = classify(exc), describe(exc)
                log.error(
                    "batch_failed", lane=self.lane, size=len(ops), error_type=type(exc).__name__
                )
                return [Rejection(op, kind, reason) for op in ops]

    def _finish_applied(self, ops: list[Operation]) -> None:
        now = self._wall_clock()
        per_table: dict[str, int] = {}
        observe = self._metrics.end_to_end_seconds.observe
        for op in ops:
            per_table[op.table] = per_table.get(op.table, 0) + 1
            observe(max(0.0, now - op.enqueued_at))
        # One labels() per table and batch, not per operation: same totals.
        for table, count in per_table.items():
            self._metrics.applied.labels(table).inc(count)
        self._queue.finish(self.lane, ops)

    def _finish_superseded(self, ops: list[Operation]) -> None:
        for op in ops:
            self._metrics.superseded.labels(op.table).inc()
        self._queue.finish(self.lane, ops)

    async def _handle_rejection(self, rejection: Rejection, before: _Parked | None) -> None:
        s = self._settings
        op, text = rejection.op, rejection.text
        counted = op.attempts
        op.attempts, dead = next_step(rejection.kind, op.attempts, s.max_retries)
        now = self._wall_clock()
        first = before.first_failed_at if before is not None else now
        if dead:
            try:
                await anyio.to_thread.run_sync(
                    lambda: self._dlq.append(op, text, first_failed_at=first, last_failed_at=now)
                )
            except Exception as exc:
                # Disk full or unwritable: the record stays parked (nothing is
                # dropped) and the write is tried again after the retry delay.
                log.error("dead_letter_write_failed", **self._names(op), error=describe(exc))
                op.attempts = counted
                self._park(op, max(1, op.attempts), first)
                return
            # syncd_dead_letters follows the file itself (DeadLetterFile.live_count).
            self._metrics.dead_lettered.labels(op.table).inc()
            log.error("operation_dead_lettered", **self._names(op, rejection), attempts=op.attempts)
            self._queue.finish(self.lane, [op])
            return
        self._metrics.retried.labels(op.table).inc()
        delay = self._park(op, max(1, op.attempts), first)
        log.warning(
            "operation_rejected", **self._names(op, rejection), attempts=op.attempts, retry_in=delay
        )

    def _park(self, op: Operation, attempt: int, first_failed_at: float) -> float:
        """Hold ``op`` until retry number ``attempt`` is due; return the delay."""
        s = self._settings
        delay = retry_delay(attempt, s.retry_interval, s.retry_cap)
        self._parked[(op.table, op.key)] = _Parked(op, self._clock() + delay, first_failed_at)
        return delay

    def _names(self, op: Operation, rejection: Rejection | None = None) -> dict[str, str]:
        """How log lines name ``op`` (and its ``rejection``): see the module docstring."""
        names = {"table": op.table, "key_hash": key_hash(op.key)}
        if rejection is not None:
            names["error_kind"] = rejection.kind.value
        if self._settings.log_record_ids:
            names["key"] = op.key
            if rejection is not None:
                names["error"] = rejection.text[:300]
        return names
