"""Several secondaries: one replica each, every captured operation handed to all of them.

Rules of this file:

- one :class:`~syncd.service.replica.Replica` per configured secondary (or
  the one ``only`` names), built from that secondary's own entry and the
  shared settings, lowest priority number first;
- an operation goes to every replica, in the same order; the first replica's
  put encodes each record once and the others get copies sharing those bytes;
- the feed's pace (:meth:`Fanout.room`): as fast as the replica with the most
  room takes it: one secondary that is behind (down, slow, paused) spools its
  backlog and holds no other back; while any spool refuses writes (disk full,
  ``spool_max_bytes``) nothing is read, so the feed buffers for everyone, as
  it does when every secondary is behind;
- the fan-out is what every source hands its operations to (it is the
  :class:`~syncd.pipeline.intake.Intake`): the wrapper, the feed's tail,
  backfill, repair and replay;
- its life (``async with``): the state directory is locked and every spool
  opened (operations left by an earlier run come first), then each replica's
  connection manager, spool task, workers and re-sync task start in one task
  group; start-up never waits for a secondary. On leaving, every replica
  drains for up to ``drain_timeout`` while its secondary is reachable, then
  the workers stop and each spool is told what finished and fsynced.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup
from prometheus_client import CollectorRegistry

from syncd.config import Config
from syncd.config.secondaries import select
from syncd.metrics import Metrics
from syncd.pipeline.statedir import open_state, state_error
from syncd.service.pausing import PauseControl
from syncd.service.replica import Replica
from syncd.service.schemamirror import SchemaMirror
from syncd.sink.operation import Operation
from syncd.surreal.sdkvalues import from_sdk

__all__ = ["Fanout", "feed_room"]

log = structlog.get_logger("syncd.service.fanout")


class Fanout:
    """Every secondary's replica, their pauses and their life together (see the module)."""

    def __init__(
        self,
        config: Config,
        registry: CollectorRegistry | None = None,
        *,
        only: str | None = None,
        spool_name: str = "spool",
        ledger: bool = True,
        schema_poll: float | None = None,
    ) -> None:
        """Build one replica per secondary; nothing is opened until ``async with``.

        ``only``: that secondary alone (one-shot tools, a joining copy).
        ``spool_name``: the spool's directory and lock (a tool beside the
        daemon has its own). ``ledger=False`` (daemon, tools): operations a
        spool cannot take wait in memory instead of being recorded for a
        re-sync, as the feed (or running the tool again) delivers them.
        ``schema_poll``: read the primary's definitions that often (the daemon;
        see :mod:`syncd.service.schemamirror`); the library acts on the
        ``DEFINE`` statements sent through its wrapped connection instead.

        Raises:
            ConfigError: ``only`` names no configured secondary.
        """
        self.config = config
        wanted = select(config.secondary_names(), None if only is None else [only])
        secondaries = [s for s in config.secondary_list() if s.name in wanted]
        #: The process's metrics, labelled with the first secondary's name.
        self.metrics = Metrics(registry, secondary=secondaries[0].name)
        self.replicas = [
            Replica(
                config,
                s.name,
                self.metrics if i == 0 else self.metrics.for_secondary(s.name),
                priority=s.priority,
                spool_name=spool_name,
                ledger=ledger,
            )
            for i, s in enumerate(secondaries)
        ]
        #: The one key rule, shared by capture, the executors and merged reads.
        self.keys = config.key_rule()
        self.pauses = PauseControl(
            config.state_path,
            self.metrics,
            workers={r.name: r.workers for r in self.replicas},
            names=[r.name for r in self.replicas],
        )
        #: Keeps every secondary's definitions in line with the primary's (its
        #: ``primary`` is set by whoever owns the primary's connection).
        self.schema = SchemaMirror(
            config,
            [(r.name, r.secondary, r.metrics) for r in self.replicas],
            poll_interval=schema_poll,
            paused=self.pauses.is_paused,
        )
        for replica in self.replicas:
            replica.on_up = partial(self.schema.changed, replica.name)
        #: After a restart, feed positions at or before a secondary's own
        #: (the checkpointer's ``applied``) are not enqueued to it again.
        self.skip_through: dict[str, int] = {}
        self._lock_name = f"{spool_name}.lock"
        self._lock_fd: int | None = None
        self._tg: TaskGroup | None = None
        self._closed = False

    def __iter__(self) -> Iterator[Replica]:
        return iter(self.replicas)

    @property
    def first(self) -> Replica:
        """The replica of the secondary with the lowest priority number."""
        return self.replicas[0]

    @property
    def names(self) -> list[str]:
        """The secondaries' names, in priority order."""
        return [r.name for r in self.replicas]

    def get(self, name: str) -> Replica:
        """The replica of secondary ``name``; ``KeyError`` if there is none."""
        for replica in self.replicas:
            if replica.name == name:
                return replica
        raise KeyError(name)

    @property
    def running(self) -> bool:
        """Whether the replicas have started and not yet been told to stop."""
        return self._tg is not None

    # -- life -----------------------------------------------------------------

    def hold(self, names: Iterable[str]) -> None:
        """Before ``async with``: keep these secondaries' backlogs until :meth:`release`."""
        for name in names:
            self.get(name).held_back = True

    async def release(self, name: str) -> None:
        """Start applying to secondary ``name``, held back since the start."""
        if self._tg is not None:
            await self.get(name).release(self._tg)

    async def __aenter__(self) -> Fanout:
        """Lock and open the state, start every replica.

        Raises:
            ConfigError: ``state_dir`` is unusable (a file, read-only, locked),
                or its pause file cannot be understood.
        """
        state = self.config.state_path
        self._lock_fd = open_state(state, self._lock_name)
        try:
            self.pauses.start()  # before any worker runs: a persisted pause holds from the start
            await self._open()
        except OSError as exc:
            self._unlock()
            raise state_error(state, exc) from None
        except BaseException:
            self._unlock()
            raise
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            if self.config.sync_enabled:
                await self._start(tg)
                await tg.start(self.schema.run)
        except BaseException:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            await self._close()
            self._unlock()
            raise
        log.info(
            "replicator_started",
            secondaries=self.names,
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
        self._closed = True
        for replica in self.replicas:
            replica.queue.seal()
        # The task group must be exited in the scope it was entered in, so
        # this step cannot sit inside the shield.
        tg.cancel_scope.cancel()
        persisted = 0
        try:
            await tg.__aexit__(None, None, None)
        finally:
            # Whatever a task did, what is pending in memory reaches the disk.
            with anyio.CancelScope(shield=True):
                for replica in self.replicas:
                    persisted += await anyio.to_thread.run_sync(replica.persist)
                    await anyio.to_thread.run_sync(replica.close)
                self._unlock()
        log.info("replicator_stopped", drained=drained, persisted=persisted)

    async def _open(self) -> None:
        """Open every replica's state; on a failure close those opened, then raise."""
        opened: list[Replica] = []
        try:
            for replica in self.replicas:
                await anyio.to_thread.run_sync(replica.open)
                opened.append(replica)
        except BaseException:
            for replica in opened:
                replica.close()
            raise

    async def _start(self, tg: TaskGroup) -> None:
        """Start every replica; wait up to ``connect_timeout`` for their first connection
        attempts (at once), so the first reads can merge (a down one costs that much)."""
        for replica in self.replicas:
            await replica.start(tg)
        async with anyio.create_task_group() as first:
            for replica in self.replicas:
                first.start_soon(replica.wait_first_attempt, self.config.connect_timeout)

    async def _drain(self, seconds: float) -> bool:
        if not self.config.sync_enabled:
            return True
        results: list[bool] = []

        async def one(replica: Replica) -> None:
            paused = self.pauses.is_paused(replica.name)
            results.append(await replica.drain(seconds, paused=paused))

        async with anyio.create_task_group() as tg:
            for replica in self.replicas:
                tg.start_soon(one, replica)
        return all(results)

    async def _close(self) -> None:
        for replica in self.replicas:
            await anyio.to_thread.run_sync(replica.close)

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing releases the flock

    # -- intake: what sources hand over ---------------------------------------

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
        if self._closed:
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
        self.enqueue(ops)  # one write to each spool for the whole call
        return len(ops)

    def enqueue(self, ops: Iterable[Operation]) -> None:
        """Enqueue ``ops`` for every replica, in order (one spool write each)."""
        batch = list(ops)
        if not batch:
            return
        first, *others = self.replicas
        first.queue.put_many(_after(batch, self.skip_through.get(first.name)))
        for replica in others:
            after = _after(batch, self.skip_through.get(replica.name))
            replica.queue.put_many([op.clone() for op in after])

    def room(self) -> int:
        """How many more operations the feed may deliver now (see the module rules)."""
        return feed_room([(r.queue.writable, r.room()) for r in self.replicas])

    def schema_changed(self) -> None:
        """The application sent a ``DEFINE``/``ALTER``/``REMOVE``: bring the secondaries in line."""
        self.schema.changed()

    def count_uncaptured(self, reason: str) -> None:
        """Count a write whose records the wrapper could not see."""
        self.metrics.uncaptured_writes.labels(reason).inc()
        log.warning("write_not_captured", reason=reason)

    # Named as the public contract names it; the deadline is applied inside.
    async def flush(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        """Wait until everything enqueued so far is applied or dead-lettered.

        On every secondary that is not paused (a paused one is not waited for,
        and one paused while this waits stops being waited for); that includes
        a re-sync of the tables whose operations a spool could not keep.
        ``TimeoutError`` after ``timeout`` seconds (``None``: wait as long as
        it takes), naming what each secondary still holds.
        """
        targets = [(r, r.queue.last_seq) for r in self.replicas]

        async def one(replica: Replica, target: int) -> None:
            await self.pauses.unless_paused(partial(replica.wait_finished, target), replica.name)

        try:
            with anyio.fail_after(timeout):
                async with anyio.create_task_group() as tg:
                    for replica, target in targets:
                        tg.start_soon(one, replica, target)
        except TimeoutError:
            raise TimeoutError(
                f"flush: not everything was applied within {timeout}s ({self._holding()})"
            ) from None

    def _holding(self) -> str:
        """What each secondary not paused still holds, for a flush's timeout message."""
        return "; ".join(
            f"{r.name}: {r.queue.depth} in memory, {r.queue.spooled} spooled, "
            f"re-sync pending: {r.resync_pending() or 'none'}, {'up' if r.is_up else 'down'}"
            for r in self.replicas
            if not self.pauses.is_paused(r.name)
        )

    # -- positions (daemon) ---------------------------------------------------

    def applied_positions(self, newest: int) -> dict[str, int]:
        """Each replica's own feed position through which it applied or dead-lettered all."""
        return {r.name: r.applied_through(newest) for r in self.replicas}

    # -- health and totals ----------------------------------------------------

    def problems(self) -> list[str]:
        """Why the secondaries make a process unready: refused credentials, down
        longer than ``readyz_down_threshold``, or a spool that lost operations
        while the daemon ran (each names its secondary)."""
        threshold = self.config.readyz_down_threshold
        refusals = self.refusals()
        downs = [p for r in self.replicas if (p := r.down_too_long(threshold)) is not None]
        lost = [
            f"{r.name}: its spool lost {n} operations while running; a restart reads "
            "them from the changefeed again"
            for r in self.replicas
            if (n := r.queue.lost_until_restart)
        ]
        return refusals + downs + lost

    def refusals(self) -> list[str]:
        """The secondaries refusing syncd's credentials, each named."""
        return [p for r in self.replicas if (p := r.refusal()) is not None]

    def status(self) -> dict[str, object]:
        """The secondaries' part of ``status()``: each one, and the totals."""
        snapshot = self.metrics.snapshot()
        each = [
            {**r.status(self.pauses.status(r.name)), "schema": self.schema.state(r.name).as_dict()}
            for r in self.replicas
        ]
        return {
            "secondary": each[0],
            "secondaries": each,
            "lag_seconds": self.lag_seconds(),
            "queue_depth": self.queue_depth,
            "spool_depth": self.spool_depth,
            "resync_pending": sorted({t for r in self.replicas for t in r.resync_pending()}),
            "dead_letters": snapshot.get("dead_letters", 0.0),
        }

    def states(self) -> str:
        """Each secondary's state in a few words: ``archive up, analytics PAUSED``."""
        paused = self.pauses.is_paused
        return ", ".join(
            f"{r.name} {'PAUSED' if paused(r.name) else 'up' if r.is_up else 'down'}"
            for r in self.replicas
        )

    def summary(self) -> str:
        """One line for systemd's ``STATUS=``: lag, queue, spool, each secondary's state."""
        return (
            f"lag {self.lag_seconds():.1f}s, queue {self.queue_depth}, "
            f"spool {self.spool_depth}, {self.states()}"
        )

    @property
    def queue_depth(self) -> int:
        """Operations pending in memory, every secondary together."""
        return sum(r.queue.depth for r in self.replicas)

    @property
    def spool_depth(self) -> int:
        """Operations waiting in the spools, every secondary together."""
        return sum(r.queue.spooled for r in self.replicas)

    def lag_seconds(self) -> float:
        """Age of the oldest operation not yet applied on any secondary; 0 when idle."""
        return max(r.queue.lag_seconds() for r in self.replicas)


def feed_room(replicas: Sequence[tuple[bool, int]]) -> int:
    """How many operations the feed may deliver to replicas that are each ``(writable,
    room)``: the most any one takes, none while any spool refuses writes. Pure."""
    if any(not writable for writable, _ in replicas):
        return 0
    return max(room for _, room in replicas)


def _after(ops: list[Operation], skip_through: int | None) -> list[Operation]:
    """The operations not at or before ``skip_through`` (feed positions; others all kept)."""
    if skip_through is None:
        return ops
    return [op for op in ops if op.position is None or op.position > skip_through]
