"""``syncd backfill``: copy tables from the primary once, through the normal pipeline."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from syncd.capture.backfill import (
    Progress,
    copy_tables,
    keep_nothing,
    primary_connection,
    query,
    start_backfill,
)
from syncd.capture.checkpoint import Checkpoint
from syncd.config import Config, redact_url
from syncd.errors import PrimaryUnavailable
from syncd.service.connfailures import watch_credentials
from syncd.service.fanout import Fanout
from syncd.tools.control import refuse_while_paused

__all__ = ["backfill_now"]


async def backfill_now(
    config: Config,
    tables: Sequence[str] | None,
    progress: Progress | None = None,
    *,
    only: str | None = None,
) -> None:
    """``syncd backfill``: copy tables from the primary once, through the normal pipeline.

    It copies the primary's current state to every secondary (one read of the
    primary, fanned out), or to ``only`` that one. A daemon running at the same
    time keeps applying the feed, so run ``syncd verify`` afterwards if both ran.

    Raises:
        AuthenticationFailed: either database refused the credentials (at
            once, not after waiting for a connection that cannot come).
        PrimaryUnavailable: the primary did not answer within three
            ``connect_timeout``.
        SyncdError: a secondary it writes to is paused (``syncd pause``).
        UnknownSecondary: ``only`` names no configured secondary.
    """
    refuse_while_paused(config, "a backfill", None if only is None else [only])
    primary = primary_connection(config)
    # No re-sync ledger: what the disk cannot take waits in memory, and a copy
    # cut short is simply run again.
    fanout = Fanout(config, spool_name="spool-backfill", ledger=False, only=only)
    for replica in fanout:
        # A refusal ends this tool with one line (watch_credentials), not an error log as well.
        replica.secondary.on_failure = None
    async with fanout, anyio.create_task_group() as tg:
        await tg.start(primary.run)
        tg.start_soon(watch_credentials, primary)
        for replica in fanout:
            # Each with its own flat config, so a refusal names that secondary's URL.
            tg.start_soon(watch_credentials, replica.secondary)
        with anyio.move_on_after(config.connect_timeout * 3):
            await primary.wait_up()
        if not primary.is_up:
            url = redact_url(config.primary_url)
            raise PrimaryUnavailable(
                f"cannot connect to the primary at {url}: {primary.last_error}"
            )
        if tables is None:
            info = await primary.call(query("INFO FOR DB", {}), config.write_timeout)
            names = sorted(info.get("tables", {})) if isinstance(info, dict) else []
            tables = [t for t in names if config.replicates(t)]
        await copy_tables(
            primary=primary,
            intake=fanout,
            tables=tables,
            checkpoint=Checkpoint(backfill=start_backfill(0)),
            save=keep_nothing,
            query_seconds=config.write_timeout,
            progress=progress,
        )
        tg.cancel_scope.cancel()
