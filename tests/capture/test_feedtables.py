"""Which tables the daemon replicates, and their changefeeds found or enabled.

The primary is a stand-in reader holding ``DEFINE TABLE`` statements (it
applies :func:`enable_statement` as the real one sends it); the rules under
test are FeedTables' own: which tables, when to enable, when to refuse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from syncd.capture.changefeed import enable_statement
from syncd.capture.feedtables import FeedTables
from syncd.errors import ConfigError
from tests.support.replica import make_config

T = TypeVar("T")
WEEK = 7 * 86400.0


def define(table: str, feed: str | None = None) -> str:
    changefeed = f" CHANGEFEED {feed}" if feed else ""
    return f"DEFINE TABLE {table} TYPE ANY SCHEMALESS{changefeed} PERMISSIONS NONE"


class Primary:
    """The tables of a primary database, as ChangefeedReader reads and changes them."""

    def __init__(self, **tables: str) -> None:
        self.defined = dict(tables)
        self.enabled: list[tuple[str, float]] = []

    async def tables(self) -> dict[str, str]:
        return dict(self.defined)

    async def enable(self, definition: str, retention: float) -> None:
        name = definition.split()[2]  # "DEFINE TABLE <name> ..."
        self.defined[name] = enable_statement(definition, retention)
        self.enabled.append((name, retention))


async def direct(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


def feeds(tmp_path: Path, primary: Primary, **config: Any) -> FeedTables:
    return FeedTables(make_config(tmp_path, "ws://127.0.0.1:1", **config), primary)  # type: ignore[arg-type]


async def test_every_table_but_syncds_own_is_replicated_by_default(tmp_path: Path) -> None:
    primary = Primary(a=define("a", "1d"), b=define("b", "1d"), syncd_meta=define("syncd_meta"))
    tables = feeds(tmp_path, primary)
    assert await tables.ensure(direct) == primary.defined
    assert tables.wanted() == ["a", "b"]
    assert tables.replicates("a") and not tables.replicates("syncd_meta")
    assert primary.enabled == []


async def test_a_table_without_a_changefeed_gets_one(tmp_path: Path) -> None:
    primary = Primary(a=define("a"), b=define("b", "2d"))
    tables = feeds(tmp_path, primary, changefeed_retention="3d")
    found = await tables.ensure(direct)
    assert primary.enabled == [("a", 3 * 86400.0)]
    assert "CHANGEFEED 3d" in found["a"]
    assert tables.tables == found


async def test_configured_tables_are_the_only_ones_and_missing_ones_are_defined(
    tmp_path: Path,
) -> None:
    primary = Primary(a=define("a", "1d"), other=define("other"))
    tables = feeds(tmp_path, primary, tables={"a": None, "new": None})
    await tables.ensure(direct)
    assert tables.wanted() == ["a", "new"]
    assert [name for name, _ in primary.enabled] == ["new"]
    assert "CHANGEFEED" not in primary.defined["other"]
    assert not tables.replicates("other")


async def test_without_auto_enable_a_table_without_a_feed_is_refused_with_the_fix(
    tmp_path: Path,
) -> None:
    primary = Primary(a=define("a", "1d"), b=define("b"))
    tables = feeds(tmp_path, primary, changefeed_auto_enable=False, changefeed_retention="1h")
    with pytest.raises(ConfigError) as caught:
        await tables.ensure(direct)
    assert str(caught.value) == (
        "table b has no changefeed; run on the primary: DEFINE TABLE OVERWRITE b CHANGEFEED 1h "
        "(or set changefeed_auto_enable: true)"
    )
    assert primary.enabled == []


async def test_every_read_and_change_goes_through_the_retry(tmp_path: Path) -> None:
    primary = Primary(a=define("a"))
    tables = feeds(tmp_path, primary)
    calls = 0

    async def counting(fn: Callable[[], Awaitable[T]]) -> T:
        nonlocal calls
        calls += 1
        return await fn()

    await tables.ensure(counting)
    assert calls == 3  # read, enable, read again


async def test_new_in_names_new_tables_and_ones_that_lost_their_feed(tmp_path: Path) -> None:
    primary = Primary(a=define("a", "1d"), b=define("b", "1d"))
    tables = feeds(tmp_path, primary)
    await tables.ensure(direct)
    later = {"a": define("a", "1d"), "b": define("b"), "c": define("c", "1d")}
    assert tables.new_in(later) == ["b", "c"]
    assert tables.new_in(primary.defined) == []


async def test_retention_is_the_shortest_among_wanted_tables(tmp_path: Path) -> None:
    primary = Primary(a=define("a", "2d"), b=define("b", "6h"), syncd_x=define("syncd_x", "1m"))
    tables = feeds(tmp_path, primary)
    assert tables.retention() == WEEK  # nothing read yet: the configured one
    await tables.ensure(direct)
    assert tables.retention() == 6 * 3600.0


async def test_wanted_of_given_tables(tmp_path: Path) -> None:
    tables = feeds(tmp_path, Primary())
    assert tables.wanted({"x": "", "syncd_y": ""}) == ["x"]
    assert tables.wanted() == []
