"""Merged reads through the wrapper: what the application sees when the secondary cannot answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.replica import connect_secondary, dead_url, replicator
from tests.support.server import ServerProcess


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_a_primary_error_in_a_merged_read_is_the_sdks_own(
    tmp_path: Path, primary: Any
) -> None:
    with pytest.raises(Exception) as bare:
        await primary.select("a b")  # a parse error: whatever the SDK raises for it
    async with replicator(tmp_path, dead_url()) as rep:
        db = rep.wrap(primary)
        with pytest.raises(type(bare.value)):
            await db.select("a b")


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_prefer_newest_takes_the_newer_row_from_either_side(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    tables = {"docs": {"version": "updated_at", "prefer": "newest"}, "facts": {}}
    admin = await connect_secondary(secondary_server.url)
    await admin.query(
        "CREATE docs:1 SET updated_at = 9, s = 'secondary newer';"
        "CREATE docs:2 SET updated_at = 1, s = 'secondary older';"
        "CREATE docs:3 SET updated_at = 1, s = 'secondary only';"
        "CREATE facts:1 SET updated_at = 9, s = 'secondary'"
    )
    await admin.close()
    await primary.query(
        "CREATE docs:1 SET updated_at = 5, s = 'primary older';"
        "CREATE docs:2 SET updated_at = 5, s = 'primary newer';"
        "CREATE facts:1 SET updated_at = 1, s = 'primary'"
    )
    async with replicator(tmp_path, secondary_server.url, tables=tables, sync_enabled=True) as rep:
        db = rep.wrap(primary)
        docs = await db.select("docs")
        facts = await db.select("facts")
    assert sorted(row["s"] for row in docs) == [
        "primary newer",
        "secondary newer",
        "secondary only",
    ]
    assert [row["s"] for row in facts] == ["primary"]  # facts: the primary wins
