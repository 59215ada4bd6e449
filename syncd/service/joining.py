"""A secondary added to a running deployment: a bracketed backfill while the others stream.

The daemon's checkpoint says which secondaries its position speaks for
(:attr:`~syncd.capture.checkpoint.Checkpoint.secondaries`). One configured
but not listed there — added since the last run — joins:

1. from the start its replica takes the feed like the others, from the
   checkpoint on, but holds it (workers not started; the backlog waits in its
   spool: the others are not slowed);
2. meanwhile a copy of every replicated table, read from the primary *after*
   that position, is applied to it through a pipeline of its own;
3. then its held backlog is applied, in order: whatever the copy read, every
   change since the position comes after it, so the secondary ends equal to
   the primary;
4. only then is it listed in the checkpoint. A crash before that starts the
   join again (every step is an idempotent UPSERT).

On a first start, an out-of-retention checkpoint or ``--resync`` the whole
backfill serves every secondary and nobody joins.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog

from syncd.capture.backfill import copy_tables, keep_nothing, start_backfill
from syncd.capture.checkpoint import Checkpoint
from syncd.config import Config
from syncd.service.checkpointer import Checkpointer
from syncd.service.fanout import Fanout
from syncd.surreal.connection import ManagedConnection

__all__ = ["joining", "run_join"]

log = structlog.get_logger("syncd.service.joining")


def joining(configured: Sequence[str], saved: Checkpoint | None) -> list[str]:
    """The secondaries that must join: configured, and not caught up in ``saved``.

    Pure. None when there is no resumable checkpoint (the whole backfill runs).
    """
    if saved is None or saved.backfill is not None:
        return []
    caught_up = set(saved.caught_up())
    return [name for name in configured if name not in caught_up]


async def run_join(
    config: Config,
    name: str,
    *,
    primary: ManagedConnection,
    tables: Callable[[], Sequence[str]],
    fanout: Fanout,
    checkpointer: Checkpointer,
    on_done: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """Copy every table to secondary ``name``, then release its held backlog (see above)."""
    # A paused secondary joins once resumed (a pause given during the copy
    # holds its backlog, not the copy).
    await fanout.pauses.gate(name).wait_open()
    log.info("secondary_joining", secondary=name)
    # A pipeline of its own (spool "joining"), so the copy never queues behind
    # the held backlog it must precede.
    side = Fanout(config, only=name, spool_name="joining", ledger=False)
    async with side:
        await copy_tables(
            primary=primary,
            intake=side,
            tables=tables(),
            checkpoint=Checkpoint(backfill=start_backfill(0)),
            save=keep_nothing,
            query_seconds=config.write_timeout,
        )
        await side.flush(timeout=None)
    await fanout.release(name)
    checkpointer.caught_up = (*checkpointer.caught_up, name)
    log.info("secondary_joined", secondary=name)
    if on_done is not None:
        await on_done(name)
