"""The tables the daemon replicates, and their changefeeds: found, and enabled where missing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol, TypeVar

import structlog

from syncd.capture.changefeed import ChangefeedReader, fix_statement, retention_of
from syncd.config import Config
from syncd.errors import ConfigError

__all__ = ["FeedTables"]

T = TypeVar("T")


class Retry(Protocol):
    """Runs a start-up step, waiting out primary outages (the daemon's ``_retry_primary``)."""

    async def __call__(self, fn: Callable[[], Awaitable[T]], /) -> T:
        """Run ``fn`` until it does not fail for a primary outage."""
        ...


log = structlog.get_logger("syncd.capture.feedtables")


class FeedTables:
    """Which tables are replicated (``tables`` in the config, else all) and their feeds."""

    def __init__(self, config: Config, reader: ChangefeedReader) -> None:
        """Nothing is read until :meth:`ensure`."""
        self._config = config
        self._reader = reader
        #: The primary's tables and their definitions, as last read.
        self.tables: dict[str, str] = {}

    def replicates(self, table: str) -> bool:
        """Whether changes of ``table`` are replicated."""
        return self._config.replicates(table)

    def wanted(self, tables: dict[str, str] | None = None) -> list[str]:
        """The tables to replicate among ``tables`` (default: the last read)."""
        tables = self.tables if tables is None else tables
        if self._config.tables is not None:
            return list(self._config.tables)
        return [t for t in tables if self._config.replicates(t)]

    def new_in(self, tables: dict[str, str]) -> list[str]:
        """Wanted tables in ``tables`` that are new, or lost their changefeed, since last read."""
        return [
            t
            for t in self.wanted(tables)
            if t not in self.tables or retention_of(tables[t]) is None
        ]

    @staticmethod
    def has_feed(tables: dict[str, str], table: str) -> bool:
        """Whether ``table``'s definition in ``tables`` has a changefeed."""
        return retention_of(tables.get(table, "")) is not None

    def lost_in(self, tables: dict[str, str]) -> list[str]:
        """Wanted tables that had a changefeed when last read and have none in ``tables``."""
        return [
            t
            for t in self.wanted(tables)
            if t in tables
            and retention_of(tables[t]) is None
            and retention_of(self.tables.get(t, "")) is not None
        ]

    async def ensure(self, retry: Retry) -> dict[str, str]:
        """Enable a changefeed on every wanted table without one; return the tables.

        Raises:
            ConfigError: a table has no changefeed and ``changefeed_auto_enable`` is off.
        """
        tables = await retry(self._reader.tables)
        retention = self._config.changefeed_retention
        for table in self.wanted(tables):
            definition = tables.get(table)
            if definition is not None and retention_of(definition) is not None:
                continue
            if not self._config.changefeed_auto_enable:
                raise ConfigError(
                    f"table {table} has no changefeed; run on the primary: "
                    f"{fix_statement(table, retention)} (or set changefeed_auto_enable: true)"
                )
            if definition is None:
                definition = f"DEFINE TABLE {table} TYPE ANY SCHEMALESS PERMISSIONS NONE"
            await retry(partial(self._reader.enable, definition, retention))
            log.info("changefeed_enabled", table=table, retention=retention)
        self.tables = await retry(self._reader.tables)
        return self.tables

    def retention(self) -> float:
        """The shortest changefeed retention among the wanted tables (seconds)."""
        values = [retention_of(self.tables.get(t, "")) for t in self.wanted()]
        known = [v for v in values if v is not None]
        return min(known) if known else self._config.changefeed_retention
