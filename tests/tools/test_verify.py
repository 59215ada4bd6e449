"""``syncd verify`` against real engines: the CLI in a subprocess, two devserver processes.

The two servers are shared by the module; each test works in its own database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from surrealdb import AsyncSurreal, RecordID

from syncd.config import Config
from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.surreal.codec import RecordID as ExactRecordID
from syncd.surreal.endpoints import DirectCaller
from syncd.tools.compare import KeySpec
from syncd.tools.records import last_id, lookup, read_page
from syncd.tools.verify import Verifier, VerifyOptions
from tests.support.engines import GENERATIONS
from tests.support.secondaries import write_secondaries_config
from tests.support.tools import close, connect, syncd, syncd_on_a_terminal, write_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TABLES = {"events": {}, "kv": {"key": ["user_id", "key"], "volatile_fields": ["seen_at"]}}
PROGRESS = Path("state") / "verify-progress.json"


@pytest.fixture(scope="module", params=GENERATIONS, ids=lambda g: f"v{g}")
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A primary and a secondary, each a devserver process, of either engine generation."""
    engine = int(request.param)
    with ServerProcess(engine=engine) as primary, ServerProcess(engine=engine) as secondary:
        yield primary, secondary


async def fill(servers: tuple[ServerProcess, ServerProcess], database: str) -> None:
    """The same 60 events and 20 kv notes on both sides (kv under other ids on the secondary)."""
    await fill_each([(server, database) for server in servers])


async def fill_each(targets: list[tuple[ServerProcess, str]]) -> None:
    """:func:`fill` for any databases: the same records in each (kv under other ids)."""
    for server, database in targets:
        db = await connect(server, database)
        try:
            await db.query("DEFINE INDEX kv_uk ON kv FIELDS user_id, key UNIQUE")
            await db.insert("events", [{"id": RecordID("events", i), "n": i} for i in range(60)])
            notes = [{"user_id": f"u{i % 3}", "key": f"k{i}", "v": i} for i in range(20)]
            # Random ids, different on each side; the volatile field differs too.
            await db.insert("kv", [{**n, "seen_at": server.port} for n in notes])
        finally:
            await close(db)


async def diverge(secondary: ServerProcess, database: str) -> None:
    """3 missing, 2 differing (1 by natural key), 4 extra (archived) on the secondary."""
    db = await connect(secondary, database)
    try:
        await db.query("DELETE events:1, events:2, events:3")
        await db.query("UPDATE events:10 SET n = -1; UPDATE kv SET v = -1 WHERE key = 'k5'")
        await db.query("CREATE events:old1, events:old2, events:old3, events:old4 SET n = 0")
    finally:
        await close(db)


def verify(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = syncd("verify", "-c", "syncd.yaml", "--json", *args, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def counts(report: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {t["table"]: (t["missing"], t["differing"], t["extra"]) for t in report["tables"]}


async def test_keyset_pages_cover_every_id_type_once() -> None:
    db: Any = AsyncSurreal("mem://")
    await db.connect()
    await db.use("t", "t")
    try:
        ids: list[Any] = [*range(7), "a", "b", uuid.uuid4(), uuid.uuid4(), ["x", 1], {"o": 2}]
        await db.insert("mixed", [{"id": RecordID("mixed", i), "v": 1} for i in ids])
        caller, seen, after = DirectCaller(db), [], None
        while page := await read_page(caller, "mixed", after, 2):
            seen += [str(row["id"]) for row in page]
            after = last_id(page)
        # The tools see syncd's exact values, whatever connection they read through.
        assert sorted(seen) == sorted(str(ExactRecordID("mixed", i)) for i in ids)
        found = await lookup(caller, KeySpec("mixed"), [{"id": RecordID("mixed", 3)}])
        assert [str(r["id"]) for r in found] == ["mixed:3"]
    finally:
        await db.close()
        await anyio.sleep(0.1)  # the embedded engine can abort at exit right after close()


async def test_consistent_replica_exits_0(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    await fill(servers, "consistent")
    write_config(
        tmp_path, primary=servers[0], secondary=servers[1], database="consistent", tables=TABLES
    )
    human = syncd("verify", "-c", "syncd.yaml", cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    assert "consistent: every primary record is on the secondary" in " ".join(human.stdout.split())
    rows = [line.split("│")[1:-1] for line in human.stdout.splitlines() if "│" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["events", "60", "0", "0", "0", "ok"],
        ["kv", "20", "0", "0", "0", "ok"],
    ]


async def test_divergent_replica_is_reported_and_exits_1(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    await fill(servers, "divergent")
    await diverge(servers[1], "divergent")
    write_config(
        tmp_path, primary=servers[0], secondary=servers[1], database="divergent", tables=TABLES
    )
    code, report = verify(tmp_path)
    assert code == 1
    assert counts(report) == {"events": (3, 1, 4), "kv": (0, 1, 0)}
    events = report["tables"][0]["examples"]
    assert events["missing"] == ["events:1", "events:2", "events:3"]
    assert events["differing"] == [{"key": "events:10", "fields": ["n"]}]
    human = syncd("verify", "-c", "syncd.yaml", cwd=tmp_path)
    assert human.returncode == 1
    assert "extra (archived)" in human.stdout
    assert "NOT consistent: 3 missing, 2 differing" in " ".join(human.stdout.split())


async def test_an_interrupted_run_resumes_where_it_stopped(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    await fill(servers, "resume")
    await diverge(servers[1], "resume")
    write_config(
        tmp_path, primary=servers[0], secondary=servers[1], database="resume", tables=TABLES
    )
    code, partial = verify(tmp_path, "--page-size", "10", "--max-pages", "3")
    assert code == 3 and not partial["complete"]
    assert (tmp_path / PROGRESS).is_file()
    code, resumed = verify(tmp_path, "--page-size", "10")
    assert code == 1 and resumed["resumed"] and resumed["complete"]
    # Nothing counted twice, nothing skipped: the same totals as a full run.
    assert counts(resumed) == {"events": (3, 1, 4), "kv": (0, 1, 0)}
    assert resumed["tables"][0]["primary_records"] == 60
    assert not (tmp_path / PROGRESS).exists()  # a finished run leaves no progress behind
    code, fresh = verify(tmp_path, "--page-size", "10")
    assert not fresh["resumed"] and fresh["pages"] == resumed["pages"] + partial["pages"]


async def test_repair_sends_missing_and_differing_records_and_verifies_again(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    await fill(servers, "repair")
    await diverge(servers[1], "repair")
    write_config(
        tmp_path, primary=servers[0], secondary=servers[1], database="repair", tables=TABLES
    )
    code, outcome = verify(tmp_path, "--repair")
    assert code == 0, outcome
    assert outcome["enqueued"] == 5
    assert counts(outcome["before"]) == {"events": (3, 1, 4), "kv": (0, 1, 0)}
    # Extras are archived records: reported, never "fixed".
    assert counts(outcome["after"]) == {"events": (0, 0, 4), "kv": (0, 0, 0)}
    code, again = verify(tmp_path)
    assert code == 0 and counts(again)["events"] == (0, 0, 4)


async def test_sample_checks_a_few_records_and_says_so(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    await fill(servers, "sample")
    write_config(
        tmp_path, primary=servers[0], secondary=servers[1], database="sample", tables=TABLES
    )
    code, report = verify(tmp_path, "--sample", "5", "--table", "events")
    assert code == 0
    assert report["sample"] == 5
    assert report["tables"][0]["primary_records"] == 5
    assert report["tables"][0]["primary_total"] == 60
    human = syncd("verify", "-c", "syncd.yaml", "--sample", "5", cwd=tmp_path)
    assert "random sample of 5 records per table, not a full check" in human.stdout
    assert not (tmp_path / PROGRESS).exists()
    # No `tables:`: every table of the primary, each keyed by record id, so the
    # kv notes (saved under other ids on each side) are missing and extra.
    write_config(tmp_path, primary=servers[0], secondary=servers[1], database="sample")
    code, report = verify(tmp_path)
    assert code == 1
    assert counts(report) == {"events": (0, 0, 0), "kv": (20, 0, 20)}


def test_unreachable_database_and_unknown_table_are_one_line_errors(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        primary=None,
        secondary=None,
        database="x",
        tables=TABLES,
        primary_pass="s3cret-pw",
    )
    result = syncd("verify", "-c", "syncd.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("syncd: cannot connect to the primary at ws://127.0.0.1:9/rpc")
    assert len(result.stderr.splitlines()) == 1
    assert "s3cret-pw" not in result.stderr + result.stdout
    result = syncd("verify", "-c", "syncd.yaml", "--table", "nope", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "syncd: table nope: not replicated by this config (see tables:)\n"


async def test_natural_key_without_an_index_is_verified_with_a_warning(tmp_path: Path) -> None:
    dbs: list[Any] = []
    for _ in range(2):
        db: Any = AsyncSurreal("mem://")
        await db.connect()
        await db.use("t", "t")
        await db.insert("kv", [{"user_id": "u", "key": f"k{i}", "v": i} for i in range(5)])
        dbs.append(db)
    try:
        config = Config.from_mapping(
            {
                "secondary_url": "mem://",
                "tables": {"kv": {"key": ["user_id", "key"]}},
                "state_dir": str(tmp_path),
            }
        )
        report = await Verifier(
            config, DirectCaller(dbs[0]), DirectCaller(dbs[1], "secondary"), VerifyOptions()
        ).run()
        assert report.consistent and report.tables[0].tally.primary_records == 5
        warnings = report.tables[0].warnings
        assert len(warnings) == 2 and "no index on (user_id, key) on the primary" in warnings[0]
    finally:
        for db in dbs:
            await db.close()
        await anyio.sleep(0.1)  # the embedded engine can abort at exit right after close()


async def test_each_secondary_is_verified_and_repaired_on_its_own(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    # archive: the secondary server; analytics: another database of the primary's server.
    primary, other = servers
    archive, analytics = (other, "multi"), (primary, "multi_analytics")
    await fill_each([(primary, "multi"), archive, analytics])
    await diverge(analytics[0], analytics[1])
    write_secondaries_config(
        tmp_path,
        primary=primary,
        database="multi",
        secondaries={"archive": archive, "analytics": analytics},
        tables=TABLES,
    )
    code, report = verify(tmp_path)
    assert code == 1
    assert [(s["name"], s["consistent"]) for s in report["secondaries"]] == [
        ("archive", True),
        ("analytics", False),
    ]
    assert counts(report["secondaries"][1]) == {"events": (3, 1, 4), "kv": (0, 1, 0)}
    assert not report["consistent"] and counts(report) == counts(report["secondaries"][0])
    human = " ".join(syncd("verify", "-c", "syncd.yaml", cwd=tmp_path).stdout.split())
    assert "syncd verify — secondary archive" in human
    assert "syncd verify — secondary analytics" in human
    assert human.count("DIVERGES") == 2  # both analytics tables, none of archive's
    assert human.index("NOT consistent") > human.index("secondary analytics")
    code, report = verify(tmp_path, "--secondary", "archive")
    assert code == 0 and [s["name"] for s in report["secondaries"]] == ["archive"]
    # Each has its own progress: an interrupted analytics run does not touch archive's.
    code, _ = verify(tmp_path, "--secondary", "analytics", "--page-size", "10", "--max-pages", "1")
    assert code == 3
    assert (tmp_path / "state" / "secondaries" / "analytics" / "verify-progress.json").is_file()

    # archive diverges too; repairing archive leaves analytics as it is.
    await diverge(archive[0], archive[1])
    code, outcome = verify(tmp_path, "--repair", "--secondary", "archive", "--restart")
    assert code == 0, outcome
    assert outcome["enqueued"] == 5 and outcome["secondaries"][0]["name"] == "archive"
    assert counts(outcome["after"]) == {"events": (0, 0, 4), "kv": (0, 0, 0)}
    code, report = verify(tmp_path, "--restart")
    assert code == 1
    assert [s["consistent"] for s in report["secondaries"]] == [True, False]
    assert counts(report["secondaries"][1]) == {"events": (3, 1, 4), "kv": (0, 1, 0)}


def test_an_unknown_secondary_is_one_line_naming_the_configured_ones(tmp_path: Path) -> None:
    write_secondaries_config(
        tmp_path,
        primary=None,
        database="x",
        secondaries={"archive": "ws://127.0.0.1:10/rpc", "analytics": "ws://127.0.0.1:11/rpc"},
    )
    for command in (["verify"], ["verify", "--repair"], ["backfill"]):
        result = syncd(*command, "-c", "syncd.yaml", "--secondary", "nope", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            "syncd: unknown secondary 'nope' (configured: archive, analytics)\n"
        ), command
        assert result.stdout == ""


def test_verify_and_backfill_refuse_the_in_process_primary(tmp_path: Path) -> None:
    (tmp_path / "syncd.yaml").write_text('secondary_url: "ws://127.0.0.1:9/rpc"\n')
    for command in ("verify", "backfill"):
        result = syncd(command, "-c", "syncd.yaml", cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr
        assert f"primary_url: syncd {command} needs the URL of the database" in lines[0]


async def test_a_primary_database_without_tables_is_not_called_consistent(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    await fill_each([(servers[1], "nothing_here")])  # the secondary only
    write_config(tmp_path, primary=servers[0], secondary=servers[1], database="nothing_here")
    result = syncd("verify", "-c", "syncd.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.splitlines()
    assert 'the primary database (namespace "app", database "nothing_here") has no tables' in line
    assert "consistent" not in result.stdout


async def test_tables_empty_on_the_primary_are_said_loudly(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    await fill_each([(servers[1], "empty_primary")])
    write_config(
        tmp_path, primary=servers[0], secondary=servers[1], database="empty_primary", tables=TABLES
    )
    result = syncd("verify", "-c", "syncd.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.splitlines()
    assert "no record on the primary" in line and "80 on the secondary" in line
    assert "nothing compared" in line
    # One table empty on the primary among others that are not: a warning on that table.
    await fill_each([(servers[0], "half_empty"), (servers[1], "half_empty")])
    db = await connect(servers[0], "half_empty")
    try:
        await db.query("DELETE kv")
    finally:
        await close(db)
    write_config(
        tmp_path, primary=servers[0], secondary=servers[1], database="half_empty", tables=TABLES
    )
    code, report = verify(tmp_path)
    assert code == 0
    (kv,) = [t for t in report["tables"] if t["table"] == "kv"]
    assert any("no record on the primary but 20 on the secondary" in w for w in kv["warnings"])


async def test_on_a_terminal_verify_and_backfill_show_a_total(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    await fill(servers, "terminal")
    write_config(
        tmp_path, primary=servers[0], secondary=servers[1], database="terminal", tables=TABLES
    )
    code, seen = syncd_on_a_terminal("verify", "-c", "syncd.yaml", cwd=tmp_path)
    assert code == 0, seen
    assert "160/160" in seen and "100%" in seen  # 80 records on each side: counted first
    code, seen = syncd_on_a_terminal("backfill", "-c", "syncd.yaml", cwd=tmp_path)
    assert code == 0, seen
    assert "80/80" in seen and "100%" in seen
    assert "secondary: copied 80, dead-lettered 0" in seen
