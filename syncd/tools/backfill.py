"""``syncd backfill``: copy tables from the primary once, through the normal pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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
from syncd.errors import AuthenticationFailed, ConfigError, PrimaryUnavailable, SyncdError
from syncd.service.connfailures import refused, watch_credentials
from syncd.service.fanout import Fanout
from syncd.surreal.connection import ManagedConnection
from syncd.surreal.errors import cause
from syncd.tools.control import refuse_while_paused
from syncd.tools.records import count_records


class NothingToCopy(ConfigError):
    """The primary database has no table to copy (a wrong namespace or database, most often)."""


__all__ = ["BackfillResult", "backfill_now"]


@dataclass
class BackfillResult:
    """What one ``syncd backfill`` run did."""

    tables: list[str] = field(default_factory=list)  # the tables it read, in order
    copied: dict[str, int] = field(default_factory=dict)  # records read per table
    dead_lettered: dict[str, int] = field(default_factory=dict)  # refused, per secondary

    @property
    def total(self) -> int:
        """Records read from the primary (each sent to every selected secondary)."""
        return sum(self.copied.values())


async def backfill_now(
    config: Config,
    tables: Sequence[str] | None,
    progress: Progress | None = None,
    *,
    only: str | None = None,
    on_tables: Callable[[list[str], int | None], None] | None = None,
) -> BackfillResult:
    """``syncd backfill``: copy tables from the primary once, through the normal pipeline.

    It copies the primary's current state to every secondary (one read of the
    primary, fanned out), or to ``only`` that one. A daemon running at the same
    time keeps applying the feed, so run ``syncd verify`` afterwards if both ran.
    ``on_tables`` hears the tables to copy and how many records they hold
    (``None`` when counting failed), before the copy starts.

    Raises:
        AuthenticationFailed: either database refused the credentials (at
            once, not after waiting for a connection that cannot come).
        PrimaryUnavailable: the primary did not answer its first connection
            attempt within ``connect_timeout`` (one line naming the cause once).
        NothingToCopy: the primary database has no table to copy.
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
    result = BackfillResult()

    def counted(table: str, rows: int) -> None:
        result.copied[table] = result.copied.get(table, 0) + rows
        if progress is not None:
            progress(table, rows)

    async with fanout, anyio.create_task_group() as tg:
        await tg.start(primary.run)
        tg.start_soon(watch_credentials, primary)
        for replica in fanout:
            # Each names its own secondary, so a refusal says which one.
            tg.start_soon(watch_credentials, replica.secondary)
        # One attempt, as every one-shot tool: an operator is waiting.
        with anyio.move_on_after(config.connect_timeout + 1.0):
            await primary.wait_first_attempt()
        if not primary.is_up:
            url = redact_url(config.primary_url)
            failure = refused(primary)
            if failure is not None:
                raise AuthenticationFailed(f"cannot sign in to the primary at {url}: {failure}")
            why = cause(primary.failure) if primary.failure is not None else "no answer in time"
            raise PrimaryUnavailable(f"cannot connect to the primary at {url}: {why}")
        if tables is None:
            info = await primary.call(query("INFO FOR DB", {}), config.write_timeout)
            names = sorted(info.get("tables", {})) if isinstance(info, dict) else []
            tables = [t for t in names if config.replicates(t)]
            if not tables:
                place = (
                    f'namespace "{config.primary_namespace}", database "{config.primary_database}"'
                )
                raise NothingToCopy(
                    f"backfill: the primary database ({place}) has no tables to copy "
                    "(are primary_namespace and primary_database the application's?)"
                )
        result.tables = list(tables)
        if on_tables is not None:
            on_tables(result.tables, await _total(primary, result.tables))
        await copy_tables(
            primary=primary,
            intake=fanout,
            tables=tables,
            checkpoint=Checkpoint(backfill=start_backfill(0)),
            save=keep_nothing,
            query_seconds=config.write_timeout,
            progress=counted,
        )
        for replica in fanout:
            snapshot = fanout.metrics.snapshot(secondary=replica.name)
            result.dead_lettered[replica.name] = int(snapshot["dead_lettered"])
        tg.cancel_scope.cancel()
    return result


async def _total(primary: ManagedConnection, tables: list[str]) -> int | None:
    """How many records ``tables`` hold on the primary (for a progress bar), if it says."""
    try:
        return sum([await count_records(primary, table) for table in tables])
    except SyncdError:
        return None  # 3.x: a table never written to; a bar without a total beats no copy
