"""``syncd verify`` on the schema: drift found (exit 1), archived shown, ``--repair`` fixes it.

The CLI in a subprocess against two devserver processes (one per generation).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.engines import GENERATIONS
from tests.support.tools import close, connect, syncd, write_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module", params=GENERATIONS, ids=lambda g: f"v{g}")
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    engine = int(request.param)
    with ServerProcess(engine=engine) as primary, ServerProcess(engine=engine) as secondary:
        yield primary, secondary


async def run_on(server: ServerProcess, database: str, *statements: str) -> None:
    db = await connect(server, database)
    try:
        for statement in statements:
            await db.query(statement)
    finally:
        await close(db)


def verify(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = syncd("verify", "-c", "syncd.yaml", "--json", *args, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def findings(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(d["action"], d["kind"], d["name"]) for d in report["schema"]}


async def test_schema_drift_is_reported_and_repaired(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    primary, secondary = servers
    both = ["DEFINE TABLE notes SCHEMALESS", "CREATE notes:1 SET key = 'a', v = [1.0, 2.0]"]
    await run_on(primary, "drift", *both, "DEFINE INDEX key ON notes FIELDS key UNIQUE")
    await run_on(primary, "drift", "DEFINE INDEX v ON notes FIELDS v HNSW DIMENSION 2")
    # The secondary: the unique index missing, and one the primary never had (or removed).
    await run_on(secondary, "drift", *both, "DEFINE INDEX old ON notes FIELDS v")
    write_config(
        tmp_path, primary=primary, secondary=secondary, database="drift", tables={"notes": {}}
    )
    code, report = verify(tmp_path)
    assert code == 1
    assert findings(report) == {
        ("define", "INDEX", "key"),
        ("define", "INDEX", "v"),
        ("archived", "INDEX", "old"),
    }
    human = " ".join(syncd("verify", "-c", "syncd.yaml", cwd=tmp_path).stdout.split())
    assert "schema: missing on the secondary: INDEX key ON notes, INDEX v ON notes" in human
    assert "kept on the secondary (archived): INDEX old ON notes" in human

    code, repaired = verify(tmp_path, "--repair")
    assert code == 0, repaired
    assert repaired["schema_applied"] == 2
    assert findings(repaired["after"]) == {("archived", "INDEX", "old")}
    code, _ = verify(tmp_path)
    assert code == 0


async def test_schema_off_is_not_compared(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    primary, secondary = servers
    await run_on(
        primary, "off", "CREATE notes:1 SET key = 'a'", "DEFINE INDEX k ON notes FIELDS key"
    )
    await run_on(secondary, "off", "CREATE notes:1 SET key = 'a'")
    write_config(
        tmp_path,
        primary=primary,
        secondary=secondary,
        database="off",
        tables={"notes": {}},
        schema="off",
    )
    code, report = verify(tmp_path)
    assert (code, report["schema"]) == (0, [])
