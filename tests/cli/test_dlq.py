"""``syncd dlq list|show|replay|purge`` through the real entry point."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from surrealdb import RecordID
from typer.testing import CliRunner, Result

from syncd.cli.main import app
from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.pipeline.deadletter import DeadLetterFile
from syncd.service.replicator import Replicator
from syncd.sink.operation import Operation
from tests.support.replica import make_config, rows_by_id
from tests.support.secondaries import write_secondaries_config
from tests.support.tools import close, connect, syncd, write_config

pytestmark = pytest.mark.timeout(120)

DB = "dlq"


def cli(tmp_path: Path, *args: str) -> Result:
    """The command line in-process (typer's runner): quicker where no event loop is involved."""
    return CliRunner().invoke(app, [*args, "-c", str(tmp_path / "syncd.yaml")])


def dlq_json(tmp_path: Path, *args: str) -> dict[str, Any]:
    result = cli(tmp_path, "dlq", "list", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def line_of(listing: dict[str, Any], key: str) -> int:
    return next(int(e["line"]) for e in listing["entries"] if e["key"] == key)


@pytest.mark.integration
async def test_replay_after_the_cause_is_fixed(tmp_path: Path) -> None:
    with ServerProcess() as primary_server, ServerProcess() as secondary_server:
        admin = await connect(secondary_server, DB)
        await admin.query(
            "DEFINE TABLE strict SCHEMAFULL; DEFINE FIELD n ON strict TYPE int;"
            "DEFINE TABLE strict2 SCHEMAFULL; DEFINE FIELD n ON strict2 TYPE int"
        )
        primary = await connect(primary_server, DB)
        tables = {"strict": {}, "strict2": {}}
        config = make_config(
            tmp_path,
            secondary_server.url,
            secondary_namespace="app",
            secondary_database=DB,
            sync_max_retries=1,
            tables=tables,
        )
        async with Replicator(config, registry=CollectorRegistry()) as rep:
            db = rep.wrap(primary)
            for n, value in ((1, "one"), (2, "two"), (3, "three"), (4, 4)):
                await db.create(RecordID("strict", n), {"n": value})
            await db.create(RecordID("strict2", 1), {"n": "x"})
            await rep.flush(timeout=30)
            assert rep.metrics.snapshot()["dead_lettered"] == 4
        # The primary moves on: a newer version of one record, another deleted.
        await primary.query("UPDATE strict:1 SET n = 'uno'; DELETE strict:3")
        await primary.query("UPDATE strict2:1 SET n = 'y'")
        await close(primary)
        dlq_path = tmp_path / "state" / "deadletters.jsonl"
        with dlq_path.open("a") as f:
            f.write("{a torn line\n")
        write_config(
            tmp_path, primary=primary_server, secondary=secondary_server, database=DB, tables=tables
        )

        listing = dlq_json(tmp_path)
        assert sorted(e["key"] for e in listing["entries"]) == [
            "strict2:1",
            "strict:1",
            "strict:2",
            "strict:3",
        ]
        assert listing["malformed"] == [
            {"line": 5, "problem": "not JSON", "secondary": "secondary"}
        ]
        human = syncd("dlq", "list", "-c", "syncd.yaml", cwd=tmp_path)
        assert human.returncode == 0
        assert "line 5: malformed (not JSON); skipped, kept" in human.stderr
        assert "strict:1" in human.stdout and "expected a int" in human.stdout
        assert [e["key"] for e in dlq_json(tmp_path, "--table", "strict2")["entries"]] == [
            "strict2:1"
        ]

        shown = cli(tmp_path, "dlq", "show", str(line_of(listing, "strict:1")))
        assert shown.exit_code == 0 and '"n": "one"' in shown.stdout
        bad = cli(tmp_path, "dlq", "show", "5")
        assert bad.exit_code == 2 and "line 5 is malformed" in bad.stderr
        assert len(bad.stderr.splitlines()) == 1

        await admin.query("DEFINE FIELD OVERWRITE n ON strict TYPE string")
        replay = syncd("dlq", "replay", "-c", "syncd.yaml", "--json", cwd=tmp_path)
        assert replay.returncode == 1, replay.stderr  # strict2 still refuses
        outcome = json.loads(replay.stdout)
        assert (outcome["applied"], outcome["removed"]) == (3, 3)
        assert (outcome["applied_from_primary"], outcome["applied_as_stored"]) == (2, 1)
        assert [f["key"] for f in outcome["still_failing"]] == ["strict2:1"]
        rows = {str(r["id"]): r["n"] for r in await admin.query("SELECT * FROM strict")}
        # The primary's current version, not the stale one in the file; the
        # record deleted on the primary as stored (the secondary is an archive).
        assert rows == {"strict:1": "uno", "strict:2": "two", "strict:3": "three", "strict:4": 4}
        listing = dlq_json(tmp_path)
        assert [e["key"] for e in listing["entries"]] == ["strict2:1"]
        assert [m["line"] for m in listing["malformed"]] == [2]  # kept, never lost

        await admin.query("DEFINE FIELD OVERWRITE n ON strict2 TYPE string")
        replay = syncd(
            "dlq",
            "replay",
            "-c",
            "syncd.yaml",
            "--from-file-only",
            "--table",
            "strict2",
            cwd=tmp_path,
        )
        assert replay.returncode == 0, replay.stderr
        assert "applied 1 of 1" in replay.stdout
        assert [r["n"] for r in await admin.query("SELECT * FROM strict2")] == ["x"]  # as stored
        await close(admin)
        listing = dlq_json(tmp_path)
        assert listing["entries"] == [] and len(listing["malformed"]) == 1


def letter(dlq: DeadLetterFile, table: str, n: int, age: float, error: str) -> None:
    op = Operation(table=table, key=f"{table}:{n}", record={"id": RecordID(table, n), "n": n})
    when = time.time() - age
    dlq.append(op, error, first_failed_at=when, last_failed_at=when)


def listed(tmp_path: Path, *args: str) -> list[str]:
    result = cli(tmp_path, "dlq", "list", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return [e["key"] for e in json.loads(result.stdout)["entries"]]


def test_filters_and_purge(tmp_path: Path) -> None:
    write_config(tmp_path, primary=None, secondary=None, database=DB)
    dlq = DeadLetterFile(tmp_path / "state" / "deadletters.jsonl")
    letter(dlq, "a", 1, 2 * 3600, "unique index violated")
    letter(dlq, "a", 2, 60, "expected a int")
    letter(dlq, "b", 3, 60, "Expected A Int")
    with dlq.path.open("a") as f:
        f.write("not json at all\n")

    assert listed(tmp_path, "--older-than", "1h") == ["a:1"]
    assert listed(tmp_path, "--newer-than", "10m") == ["a:2", "b:3"]
    assert listed(tmp_path, "--error", "EXPECTED a") == ["a:2", "b:3"]
    assert listed(tmp_path, "--table", "b") == ["b:3"]
    bad = cli(tmp_path, "dlq", "list", "--older-than", "soon")
    assert bad.exit_code == 2 and bad.stderr.startswith("syncd: --older-than: invalid duration")

    before = dlq.path.read_bytes()
    refused = cli(tmp_path, "dlq", "purge")  # the runner's stdin is not a TTY
    assert refused.exit_code == 2
    assert refused.stderr.splitlines()[-1].startswith("syncd: purge: would delete 3 entries")
    assert dlq.path.read_bytes() == before

    purged = cli(tmp_path, "dlq", "purge", "--table", "a", "--older-than", "1h", "--yes")
    assert purged.exit_code == 0 and "deleted 1 entry" in purged.stdout
    assert listed(tmp_path) == ["a:2", "b:3"]
    purged = cli(tmp_path, "dlq", "purge", "--yes")
    assert purged.exit_code == 0 and "1 malformed line kept" in purged.stdout
    assert dlq.path.read_text() == "not json at all\n"
    assert "no dead letters" in cli(tmp_path, "dlq", "list").stdout


@pytest.mark.integration
async def test_each_secondary_has_its_own_dead_letters_replayed_to_it_alone(
    tmp_path: Path, primary_server: ServerProcess, secondary_server: ServerProcess
) -> None:
    # archive: the secondary server; analytics: another database on the primary's server.
    targets = {"archive": (secondary_server, DB), "analytics": (primary_server, "dlq_analytics")}
    write_secondaries_config(tmp_path, primary=primary_server, database=DB, secondaries=targets)
    primary = await connect(primary_server, DB)
    await primary.query("CREATE t:1 SET n = 1; CREATE t:2 SET n = 2; CREATE t:3 SET n = 3")
    await close(primary)
    state = tmp_path / "state" / "secondaries"
    archive = DeadLetterFile(state / "archive" / "deadletters.jsonl")
    analytics = DeadLetterFile(state / "analytics" / "deadletters.jsonl")
    letter(archive, "t", 1, 60, "refused")
    letter(archive, "t", 2, 60, "refused")
    letter(analytics, "t", 3, 60, "refused")

    listing = dlq_json(tmp_path)
    assert [(e["id"], e["key"]) for e in listing["entries"]] == [
        ("archive:1", "t:1"),
        ("archive:2", "t:2"),
        ("analytics:1", "t:3"),
    ]
    assert [(s["name"], s["total"]) for s in listing["secondaries"]] == [
        ("archive", 2),
        ("analytics", 1),
    ]
    human = " ".join(cli(tmp_path, "dlq", "list").stdout.split())
    assert "archive:2" in human and "analytics:1" in human and "(archive 2, analytics 1)" in human
    assert listed(tmp_path, "--secondary", "analytics") == ["t:3"]

    assert '"n": 3' in cli(tmp_path, "dlq", "show", "analytics:1").stdout
    assert '"n": 1' in cli(tmp_path, "dlq", "show", "1", "--secondary", "archive").stdout
    ambiguous = cli(tmp_path, "dlq", "show", "1")
    assert ambiguous.exit_code == 2 and len(ambiguous.stderr.splitlines()) == 1
    assert "say which, e.g. archive:1 or analytics:1" in ambiguous.stderr
    for command in (["list"], ["show", "1"], ["replay"], ["purge", "--yes"]):
        unknown = cli(tmp_path, "dlq", *command, "--secondary", "nope")
        assert unknown.exit_code == 2
        assert unknown.stderr == (
            "syncd: unknown secondary 'nope' (configured: archive, analytics)\n"
        )

    replay = syncd("dlq", "replay", "-c", "syncd.yaml", "--secondary", "archive", cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    assert "applied 2 of 2" in replay.stdout
    archive_db = await connect(secondary_server, DB)
    analytics_db = await connect(primary_server, "dlq_analytics")
    try:
        assert await rows_by_id(archive_db, "t") == {
            "t:1": {"id": RecordID("t", 1), "n": 1},
            "t:2": {"id": RecordID("t", 2), "n": 2},
        }
        assert await rows_by_id(analytics_db, "t") == {}
        assert listed(tmp_path) == ["t:3"]
        replay = syncd("dlq", "replay", "-c", "syncd.yaml", "--json", cwd=tmp_path)
        assert replay.returncode == 0, replay.stderr
        outcome = json.loads(replay.stdout)
        assert (outcome["applied"], outcome["removed"], outcome["selected"]) == (1, 1, 1)
        assert [(s["name"], s["applied"]) for s in outcome["secondaries"]] == [
            ("archive", 0),
            ("analytics", 1),
        ]
        assert list(await rows_by_id(analytics_db, "t")) == ["t:3"]
        assert list(await rows_by_id(archive_db, "t")) == ["t:1", "t:2"]  # t:3 never sent here
    finally:
        await close(archive_db)
        await close(analytics_db)
    assert listed(tmp_path) == []
