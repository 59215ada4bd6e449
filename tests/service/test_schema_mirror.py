"""The schema mirror in the library: definitions reach a real secondary process.

At start (read from the primary when it is wrapped), while running (a DEFINE
sent through the wrapped connection), across generations, after a REMOVE,
and not at all with ``schema: off``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from surrealdb import RecordID

from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.daemon import connect as connect_primary
from tests.support.replica import (
    connect_secondary,
    embedded_primary,
    replicator,
    secondary_rows,
)
from tests.support.schema import eventually, has_indexes, secondary_info
from tests.support.waiting import until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

VECTOR_SCHEMA = [
    "DEFINE TABLE vector_memories SCHEMALESS PERMISSIONS FULL",
    "DEFINE FIELD embedding ON vector_memories TYPE array<float>",
    "DEFINE ANALYZER words TOKENIZERS blank,class FILTERS lowercase",
    "DEFINE INDEX hnsw ON vector_memories FIELDS embedding HNSW DIMENSION 2 DIST EUCLIDEAN",
    "DEFINE INDEX key ON vector_memories FIELDS key UNIQUE",
    "DEFINE INDEX plain ON vector_memories FIELDS user_id",
    "DEFINE EVENT audit ON vector_memories THEN (CREATE audit_log SET at = time::now())",
]


def fulltext(generation: int) -> str:
    word = "SEARCH" if generation == 2 else "FULLTEXT"
    return f"DEFINE INDEX text ON vector_memories FIELDS content {word} ANALYZER words BM25"


def later_indexes(generation: int) -> str:
    """Full-text, unique, plain (and MTREE, which only 2.x has) on table ``later``."""
    word = "SEARCH" if generation == 2 else "FULLTEXT"
    mtree = "; DEFINE INDEX m ON later FIELDS v MTREE DIMENSION 2" if generation == 2 else ""
    return (
        f"DEFINE INDEX t ON later FIELDS c {word} ANALYZER words BM25; "
        "DEFINE INDEX u ON later FIELDS k UNIQUE; DEFINE INDEX p ON later FIELDS k, c" + mtree
    )


async def test_definitions_mirrored_at_start_and_while_running(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess, engine: int
) -> None:
    for statement in [*VECTOR_SCHEMA, fulltext(engine)]:
        await primary.query(statement)
    url = secondary_server.url
    async with replicator(tmp_path, url) as rep:
        db = rep.wrap(primary)
        await eventually(lambda: has_indexes(url, "hnsw", "key", "plain", "text"))
        info = await secondary_info(url, "vector_memories")
        assert info["events"] == {}  # an event would fire twice
        assert "embedding" in info["fields"]

        # Sent by the application while running: every kind of index again, on another
        # table (the one at start had them all too).
        await db.query("DEFINE TABLE later SCHEMALESS")
        await db.query("DEFINE INDEX by_user_key ON vector_memories FIELDS user_id, key")
        await db.query_raw("DEFINE FIELD score ON vector_memories TYPE option<float>")
        await db.query(
            "DEFINE INDEX v ON later FIELDS v HNSW DIMENSION 2; " + later_indexes(engine)
        )
        await eventually(lambda: has_indexes(url, "by_user_key"))
        wanted = ["v", "t", "u", "p", *(["m"] if engine == 2 else [])]
        await eventually(lambda: has_indexes(url, *wanted, table="later"))

        for i in range(5):
            await db.create(
                RecordID("vector_memories", i),
                {"embedding": [float(i), float(i)], "key": f"k{i}", "content": f"note {i}"},
            )
        await rep.flush(timeout=30)
        applied = rep.metrics.snapshot()["schema_applied"]
    info = await secondary_info(url, "vector_memories")
    assert "score" in info["fields"]
    assert applied >= 7
    secondary = await connect_secondary(url)
    try:
        with anyio.fail_after(10):
            near = await secondary.query(
                "SELECT id FROM vector_memories WHERE embedding <|2,40|> [0.1, 0.1]"
            )
            words = await secondary.query("SELECT id FROM vector_memories WHERE content @@ 'note'")
    finally:
        await secondary.close()
    assert sorted(str(r["id"]) for r in near) == ["vector_memories:0", "vector_memories:1"]
    assert len(words) == 5


async def test_a_removed_definition_is_kept_unless_removals_are_mirrored(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    url = secondary_server.url
    for statement in VECTOR_SCHEMA[:2] + VECTOR_SCHEMA[4:6]:
        await primary.query(statement)
    async with replicator(tmp_path, url) as rep:
        db = rep.wrap(primary)
        await eventually(lambda: has_indexes(url, "key", "plain"))
        await db.query("REMOVE INDEX plain ON vector_memories")
        await db.query("DEFINE INDEX later ON vector_memories FIELDS later")
        await eventually(lambda: has_indexes(url, "later"))
        assert await has_indexes(url, "plain")  # archived, not removed
        status = rep.status()["secondary"]["schema"]  # type: ignore[index]
        assert "INDEX plain ON vector_memories" in status["archived"]
    removing = {"mirror_removals": True}
    async with replicator(tmp_path / "again", url, schema=removing) as rep:
        rep.wrap(primary)

        async def gone() -> bool:
            return not await has_indexes(url, "plain")

        await eventually(gone)
        assert await has_indexes(url, "key", "later")


async def test_schema_off_mirrors_nothing(
    tmp_path: Path, primary: Any, secondary_server: ServerProcess
) -> None:
    url = secondary_server.url
    for statement in VECTOR_SCHEMA:
        await primary.query(statement)
    async with replicator(tmp_path, url, schema="off") as rep:
        db = rep.wrap(primary)
        await db.query("DEFINE INDEX later ON vector_memories FIELDS later")
        await db.create(RecordID("vector_memories", 1), {"embedding": [1.0, 1.0], "key": "a"})
        await rep.flush(timeout=30)
        assert rep.metrics.snapshot()["schema_applied"] == 0
    info = await secondary_info(url, "vector_memories")
    assert info.get("indexes", {}) == {}


@asynccontextmanager
async def primary_of(generation: int, tmp_path: Path) -> AsyncIterator[Any]:
    """An application's primary of ``generation``: embedded (2.x) or served (3.x)."""
    if generation == 2:
        async with embedded_primary() as db:
            yield db
        return
    with ServerProcess(store="mem://", engine=3) as server:
        db = await connect_primary(server.url)
        try:
            yield db
        finally:
            with anyio.move_on_after(5):
                await db.close()


@pytest.mark.parametrize(("source", "target"), [(2, 3), (3, 2)], ids=["v2-v3", "v3-v2"])
async def test_mixed_generations_translate_the_definitions(
    tmp_path: Path, source: int, target: int
) -> None:
    store = f"surrealkv://{tmp_path / 'secondary'}"
    with ServerProcess(store=store, engine=target) as server:
        async with primary_of(source, tmp_path) as primary:
            for statement in [*VECTOR_SCHEMA, fulltext(source)]:
                await primary.query(statement)
            if source == 2:
                # 3.x has no MTREE: refused (counted, logged); the rest still applies.
                await primary.query(
                    "DEFINE INDEX mt ON vector_memories FIELDS embedding MTREE DIMENSION 2"
                )
            async with replicator(tmp_path, server.url) as rep:
                db = rep.wrap(primary)
                await eventually(lambda: has_indexes(server.url, "hnsw", "key", "plain", "text"))
                if source == 2:
                    await until(lambda: rep.metrics.snapshot()["schema_refused"] >= 1)
                # A refused definition stops nothing: records keep replicating.
                await db.create(RecordID("vector_memories", 1), {"embedding": [1.0, 2.0]})
                await rep.flush(timeout=30)
            info = await secondary_info(server.url, "vector_memories")
            rows = await secondary_rows(server.url, "vector_memories")
            assert list(rows) == ["vector_memories:1"]
    word = "FULLTEXT" if target == 3 else "SEARCH"
    assert f"{word} ANALYZER words" in info["indexes"]["text"]
    assert "mt" not in info["indexes"]
