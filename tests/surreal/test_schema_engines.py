"""Translated definitions against both real engines, in-process: every pair of generations.

A schema is defined on a "primary" engine, read back with INFO, translated
for a "secondary" engine and applied there; the secondary's INFO then shows
every definition (MTREE aside on 3.x, which has none) and its indexes answer.
"""

from __future__ import annotations

import pytest

from syncd.config.schema import TablePolicy
from syncd.surreal.schema import Schema, diff, from_info, select
from tests.support.engines import Engine, engine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
PAIRS = [(2, 2), (3, 3), (2, 3), (3, 2)]


def schema_statements(generation: int) -> list[str]:
    fulltext = "SEARCH" if generation == 2 else "FULLTEXT"
    statements = [
        "DEFINE TABLE vm SCHEMALESS CHANGEFEED 1d PERMISSIONS FULL",
        "DEFINE FIELD embedding ON vm TYPE array<float>",
        "DEFINE FIELD at ON vm TYPE option<datetime> VALUE time::now()",
        "DEFINE ANALYZER simple TOKENIZERS blank,class FILTERS lowercase,snowball(english)",
        "DEFINE FUNCTION fn::shout($s: string) { RETURN string::uppercase($s); }",
        "DEFINE FIELD loud ON vm TYPE option<string> "
        "ASSERT $value = NONE OR fn::shout($value) != ''",
        "DEFINE INDEX hnsw ON vm FIELDS embedding HNSW DIMENSION 2 DIST EUCLIDEAN",
        f"DEFINE INDEX ft ON vm FIELDS content {fulltext} ANALYZER simple BM25 HIGHLIGHTS",
        "DEFINE INDEX key ON vm FIELDS key UNIQUE",
        "DEFINE INDEX plain ON vm FIELDS user_id, key",
        "DEFINE EVENT ev ON vm WHEN $event = 'CREATE' THEN (CREATE log SET n = 1)",
    ]
    if generation == 2:
        statements.append("DEFINE INDEX mt ON vm FIELDS embedding MTREE DIMENSION 2")
    return statements


async def read(db: Engine) -> Schema:
    info = await db.values("INFO FOR DB")
    return from_info(info, {"vm": await db.values("INFO FOR TABLE vm")})


def policy(table: str) -> TablePolicy | None:
    return TablePolicy() if table == "vm" else None


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=lambda g: f"v{g}")
async def test_definitions_translate_and_apply_between_generations(
    source: int, target: int
) -> None:
    async with engine(source) as primary, engine(target) as secondary:
        for statement in schema_statements(source):
            await primary.values(statement)
        full = await read(primary)
        wanted = select(full, policy)
        assert ("EVENT", "vm", "ev") not in wanted
        changes = diff(wanted, await read(secondary), target, primary=full, policy=policy)
        for change in changes:
            if change.statement is not None:
                await secondary.values(change.statement)
        unsupported = {c.definition.name for c in changes if c.action == "unsupported"}
        assert unsupported == ({"mt"} if source == 2 and target == 3 else set())

        # In line now: nothing left to do but what the generation cannot hold.
        again = diff(wanted, await read(secondary), target, primary=full, policy=policy)
        assert {c.definition.name for c in again} == unsupported
        table = await secondary.values("INFO FOR TABLE vm")
        assert {"hnsw", "ft", "key", "plain"} <= set(table["indexes"])
        assert "ev" not in table["events"]
        db = await secondary.values("INFO FOR DB")
        assert "CHANGEFEED" not in db["tables"]["vm"]
        assert "simple" in db["analyzers"] and "shout" in db["functions"]
        assert "VALUE" not in table["fields"]["at"]

        # The indexes answer on the secondary.
        await secondary.values(
            "CREATE vm:1 SET embedding = [0.0, 0.0], content = 'the quick fox', key = 'a'; "
            "CREATE vm:2 SET embedding = [5.0, 5.0], content = 'a lazy dog', key = 'b'"
        )
        near = await secondary.values("SELECT id FROM vm WHERE embedding <|1,40|> [0.1, 0.1]")
        assert len(near) == 1
        found = await secondary.values("SELECT id FROM vm WHERE content @@ 'fox'")
        assert len(found) == 1
        with pytest.raises(RuntimeError):
            await secondary.values("CREATE vm:3 SET key = 'a'")  # the unique index holds
