"""``syncd run`` across server generations: mixed sides, and a primary upgraded 2.x → 3.x.

Every database here is a real devserver process of an explicit engine
generation (2: surrealdb-core 2.3.10, 3: 3.2.4), so these tests are not
parametrised by the ``engine`` fixture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.dev.process import DevServerProcess as ServerProcess
from tests.support.daemon import connect, converge, events_daemon

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, ServerProcess]]:
    """Started on demand by name; every one stopped at the end."""
    made: dict[str, ServerProcess] = {}
    yield made
    for server in made.values():
        server.stop()


def serve(made: dict[str, ServerProcess], tmp_path: Path, name: str, engine: int) -> ServerProcess:
    server = ServerProcess(store=f"surrealkv://{tmp_path / name}", engine=engine).start()
    made[name] = server
    return server


@pytest.mark.parametrize(("primary_engine", "secondary_engine"), [(3, 2), (2, 3)])
async def test_mixed_generations_replicate_every_record(
    tmp_path: Path,
    servers: dict[str, ServerProcess],
    syncd_factory: Any,
    primary_engine: int,
    secondary_engine: int,
) -> None:
    primary = serve(servers, tmp_path, "primary", primary_engine)
    secondary = serve(servers, tmp_path, "secondary", secondary_engine)
    db, syncd = await events_daemon(primary, secondary, syncd_factory)
    try:
        await db.query("FOR $i IN 1..300 { CREATE events CONTENT {id: $i, n: $i} }")
        await db.query("BEGIN; UPDATE events:1 SET n = -1; CREATE events:9000 SET n = 9; COMMIT")
        await converge(db, secondary.url, "events")
        status = json.loads(syncd.http("/status")[1])
        assert status["primary"]["version"].startswith(f"surrealdb-{primary_engine}")
        assert status["secondary"]["version"].startswith(f"surrealdb-{secondary_engine}")
        assert syncd.terminate() == 0
        saved = json.loads((syncd.state / "checkpoint.json").read_text())
        assert saved["rules"] == primary_engine
    finally:
        await db.close()


async def test_primary_upgraded_from_2x_to_3x_is_resynced_not_misread(
    tmp_path: Path, servers: dict[str, ServerProcess], syncd_factory: Any
) -> None:
    old = serve(servers, tmp_path, "primary-2x", 2)
    secondary = serve(servers, tmp_path, "secondary", 3)
    db, syncd = await events_daemon(old, secondary, syncd_factory)
    await db.query("FOR $i IN 1..200 { CREATE events CONTENT {id: $i, n: $i} }")
    await converge(db, secondary.url, "events")
    assert syncd.terminate() == 0
    await db.close()
    old.stop()
    # The upgrade: 3.x cannot open a 2.x store, so the data is exported and
    # imported (here: written again), and the application goes on writing.
    new = serve(servers, tmp_path, "primary-3x", 3)
    db = await connect(new.url)
    try:
        await db.query("DEFINE TABLE events CHANGEFEED 1d")
        await db.query("FOR $i IN 1..200 { CREATE events CONTENT {id: $i, n: $i} }")
        await db.query("FOR $i IN 150..260 { UPSERT events CONTENT {id: $i, n: $i * 10} }")
        # The same state_dir: its checkpoint holds 2.x positions.
        syncd = syncd_factory(new.url, secondary.url, tables={"events": {}})
        syncd.start()
        syncd.wait_ready()
        await db.query("FOR $i IN 255..300 { UPSERT events CONTENT {id: $i, n: $i * 100} }")
        await converge(db, secondary.url, "events")
        log = syncd.log.read_text()
        assert "primary_generation_changed" in log
        assert "changefeed_position_stuck" not in log
        assert syncd.terminate() == 0
        saved = json.loads((syncd.state / "checkpoint.json").read_text())
        assert saved["rules"] == 3 and saved["server"].startswith("surrealdb-3")
    finally:
        await db.close()
