"""The schema mirror in ``syncd run``: definitions polled from the primary reach the secondary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.daemon import connect
from tests.support.schema import eventually, has_indexes, secondary_info
from tests.support.tools import syncd as run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def schema(generation: int) -> list[str]:
    word = "SEARCH" if generation == 2 else "FULLTEXT"
    return [
        "DEFINE TABLE vector_memories CHANGEFEED 1d",
        "DEFINE ANALYZER words TOKENIZERS blank FILTERS lowercase",
        "DEFINE INDEX hnsw ON vector_memories FIELDS embedding HNSW DIMENSION 2",
        f"DEFINE INDEX text ON vector_memories FIELDS content {word} ANALYZER words BM25",
        "DEFINE INDEX key ON vector_memories FIELDS key UNIQUE",
    ]


async def daemon_mirrors(
    primary: ServerProcess, secondary: ServerProcess, factory: Any, generation: int
) -> None:
    db = await connect(primary.url)
    try:
        for statement in schema(generation):
            await db.query(statement)
        await db.query("CREATE vector_memories:1 SET embedding = [1.0, 1.0], key = 'a'")
        syncd = factory(
            primary.url,
            secondary.url,
            tables={"vector_memories": {}},
            schema_poll_interval="200ms",
        )
        syncd.start()
        syncd.wait_ready()
        await eventually(lambda: has_indexes(secondary.url, "hnsw", "text", "key"))
        info = await secondary_info(secondary.url, "vector_memories")
        assert info["events"] == {}

        # While running: picked up within schema_poll_interval; a REMOVE is not applied.
        await db.query("DEFINE INDEX plain ON vector_memories FIELDS user_id")
        await db.query("REMOVE INDEX key ON vector_memories")
        await eventually(lambda: has_indexes(secondary.url, "plain"))
        assert await has_indexes(secondary.url, "key")
        status = json.loads(syncd.http("/status")[1])["secondary"]["schema"]
        assert status["archived"] == ["INDEX key ON vector_memories"]
        metrics = syncd.http("/metrics")[1]
        assert 'syncd_schema_applied_total{kind="INDEX",secondary="secondary"}' in metrics
        shown = run_cli("status", "-c", str(syncd.config), cwd=syncd.config.parent).stdout
        assert "kept after removal on the primary: INDEX key ON" in " ".join(shown.split())
        assert syncd.terminate() == 0
    finally:
        await db.close()


async def test_the_daemon_mirrors_definitions_at_start_and_while_running(
    primary_server: ServerProcess, secondary_server: ServerProcess, syncd_factory: Any, engine: int
) -> None:
    await daemon_mirrors(primary_server, secondary_server, syncd_factory, engine)


async def test_a_3x_primary_mirrors_to_a_2x_secondary_through_the_daemon(
    tmp_path: Path, syncd_factory: Any
) -> None:
    with (
        ServerProcess(store=f"surrealkv://{tmp_path / 'p'}", engine=3) as primary,
        ServerProcess(store=f"surrealkv://{tmp_path / 's'}", engine=2) as secondary,
    ):
        await daemon_mirrors(primary, secondary, syncd_factory, 3)
        info = await secondary_info(secondary.url, "vector_memories")
        assert "SEARCH ANALYZER words" in info["indexes"]["text"]
