"""Every secondary's replica together: fan-out, the feed's pace, totals, open and close.

Rules of this file:

- an operation goes to every replica, in the same order; the first replica's
  put encodes each record once and the others get copies sharing those bytes;
- the daemon reads the feed as fast as the replica with the most room takes
  it: one secondary that is behind (down, slow, paused) spools its backlog and
  holds no other back; while any spool refuses writes (disk full,
  ``spool_max_bytes``) nothing is read, so the feed buffers for everyone, as
  it does when every secondary is behind;
- the checkpoint is the lowest position every replica has finished through,
  and keeps each replica's own: after a restart the feed is read again from
  the lowest, and a replica skips what it had already applied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial

import anyio
from anyio.abc import TaskGroup
from prometheus_client import CollectorRegistry

from syncd.config import Config
from syncd.config.secondaries import select
from syncd.metrics import Metrics
from syncd.service.replica import Replica
from syncd.sink.operation import Operation

__all__ = ["ReplicaSet"]

#: Waits for ``wait()`` unless the named secondary is paused (PauseControl.unless_paused).
UnlessPaused = Callable[[Callable[[], Awaitable[None]], str], Awaitable[None]]


class ReplicaSet:
    """The replicas of one Replicator, lowest priority number first."""

    def __init__(self, replicas: Sequence[Replica]) -> None:
        """``replicas`` is non-empty, in priority order."""
        self._replicas = list(replicas)

    @classmethod
    def build(
        cls,
        config: Config,
        registry: CollectorRegistry | None,
        *,
        only: str | None,
        spool_name: str,
        resync: bool,
    ) -> ReplicaSet:
        """One replica per secondary of ``config`` (``only``: that one), their metrics
        in one registry; the first replica's are the process's :class:`Metrics`.

        Raises:
            ConfigError: ``only`` names no configured secondary.
        """
        wanted = select(config.secondary_names(), None if only is None else [only])
        secondaries = [s for s in config.secondary_list() if s.name in wanted]
        metrics = Metrics(registry, secondary=secondaries[0].name)
        return cls(
            [
                Replica(
                    config,
                    s.name,
                    metrics if i == 0 else metrics.for_secondary(s.name),
                    priority=s.priority,
                    spool_name=spool_name,
                    resync=resync,
                )
                for i, s in enumerate(secondaries)
            ]
        )

    def __iter__(self) -> Iterator[Replica]:
        return iter(self._replicas)

    def __len__(self) -> int:
        return len(self._replicas)

    @property
    def first(self) -> Replica:
        """The replica of the secondary with the lowest priority number."""
        return self._replicas[0]

    @property
    def names(self) -> list[str]:
        """The secondaries' names, in priority order."""
        return [r.name for r in self._replicas]

    def get(self, name: str) -> Replica:
        """The replica of secondary ``name``; ``KeyError`` if there is none."""
        for replica in self._replicas:
            if replica.name == name:
                return replica
        raise KeyError(name)

    # -- open, start, drain, close ------------------------------------------------

    async def open(self) -> None:
        """Open every replica's state; on a failure close those opened, then raise."""
        opened: list[Replica] = []
        try:
            for replica in self._replicas:
                await anyio.to_thread.run_sync(replica.open)
                opened.append(replica)
        except BaseException:
            for replica in opened:
                replica.close()
            raise

    async def start(self, tg: TaskGroup, first_attempt: float) -> None:
        """Start every replica in ``tg``; wait up to ``first_attempt`` for their
        first connection attempts (at once), so the first reads can merge."""
        for replica in self._replicas:
            await replica.start(tg)
        async with anyio.create_task_group() as first:
            for replica in self._replicas:
                first.start_soon(replica.wait_first_attempt, first_attempt)

    async def drain(self, seconds: float, paused: Callable[[str], bool]) -> bool:
        """Drain every replica at once, each within ``seconds``; whether all drained."""
        results: list[bool] = []

        async def one(replica: Replica) -> None:
            results.append(await replica.drain(seconds, paused=paused(replica.name)))

        async with anyio.create_task_group() as tg:
            for replica in self._replicas:
                tg.start_soon(one, replica)
        return all(results)

    def seal(self) -> None:
        """Refuse further puts (on the event loop, before persisting)."""
        for replica in self._replicas:
            replica.queue.seal()

    async def persist_and_close(self) -> int:
        """Write what memory holds to each spool and close it; how many were written."""
        persisted = 0
        for replica in self._replicas:
            persisted += await anyio.to_thread.run_sync(replica.persist)
            await anyio.to_thread.run_sync(replica.close)
        return persisted

    async def close(self) -> None:
        """Close every replica without persisting (start-up failed)."""
        for replica in self._replicas:
            await anyio.to_thread.run_sync(replica.close)

    # -- flow -----------------------------------------------------------------

    def enqueue(self, ops: Iterable[Operation]) -> None:
        """Enqueue ``ops`` for every replica, in order (one spool write each)."""
        batch = list(ops)
        if not batch:
            return
        first, *others = self._replicas
        first.put(_after(batch, first.skip_through))
        for replica in others:
            replica.put([op.clone() for op in _after(batch, replica.skip_through)])

    @property
    def closed(self) -> bool:
        """Whether the queues are sealed."""
        return self.first.queue.closed

    def room(self) -> int:
        """How many more operations the feed may deliver now (see the module rules)."""
        if any(not r.queue.writable for r in self._replicas):
            return 0
        return max(r.room() for r in self._replicas)

    def safe_positions(self, newest: int) -> dict[str, int]:
        """Each replica's own feed position through which it applied or dead-lettered all."""
        return {r.name: r.queue.positions.safe_through(newest) for r in self._replicas}

    def skip_through(self, applied: Mapping[str, int]) -> None:
        """After a restart: feed operations at or before a replica's own position
        (``applied``, from the checkpoint) are not enqueued to it again."""
        for replica in self._replicas:
            replica.skip_through = applied.get(replica.name)

    async def wait_finished(self, unless_paused: UnlessPaused) -> None:
        """Until what is enqueued now is finished on every secondary not paused."""
        targets = [(r, r.queue.last_seq) for r in self._replicas]

        async def one(replica: Replica, target: int) -> None:
            await unless_paused(partial(replica.wait_finished, target), replica.name)

        async with anyio.create_task_group() as tg:
            for replica, target in targets:
                tg.start_soon(one, replica, target)

    def holding(self, paused: Callable[[str], bool]) -> str:
        """What each secondary not paused still holds, for a flush's timeout message."""
        return "; ".join(
            f"{r.name}: {r.queue.depth} in memory, {r.queue.spooled} spooled, "
            f"re-sync pending: {r.resync_pending() or 'none'}, {'up' if r.is_up else 'down'}"
            for r in self._replicas
            if not paused(r.name)
        )

    def summary(self, paused: Callable[[str], bool]) -> str:
        """One line for systemd's ``STATUS=``: spool, and each secondary's state."""
        states = ", ".join(
            f"{r.name} {'PAUSED' if paused(r.name) else 'up' if r.is_up else 'down'}"
            for r in self._replicas
        )
        return f"spool {self.spool_depth}, {states}"

    # -- totals ---------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Operations pending in memory, every secondary together."""
        return sum(r.queue.depth for r in self._replicas)

    @property
    def spool_depth(self) -> int:
        """Operations waiting in the spools, every secondary together."""
        return sum(r.queue.spooled for r in self._replicas)

    def lag_seconds(self) -> float:
        """Age of the oldest operation not yet applied on any secondary; 0 when idle."""
        return max(r.queue.lag_seconds() for r in self._replicas)

    def resync_pending(self) -> list[str]:
        """Tables waiting for a re-sync on any secondary."""
        return sorted({t for r in self._replicas for t in r.resync_pending()})


def _after(ops: list[Operation], skip_through: int | None) -> list[Operation]:
    """The operations not at or before ``skip_through`` (feed positions; others all kept)."""
    if skip_through is None:
        return ops
    return [op for op in ops if op.position is None or op.position > skip_through]
