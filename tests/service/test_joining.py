"""A secondary added to a running deployment joins with a bracketed backfill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from surrealdb import RecordID

from syncd.capture.checkpoint import Backfill, Checkpoint
from syncd.dev.process import DevServerProcess as ServerProcess
from syncd.service.joining import joining
from tests.support.daemon import SyncdProcess, connect, converge, secondary_entry


def test_who_joins_is_who_the_checkpoint_does_not_speak_for() -> None:
    names = ["archive", "analytics"]
    assert joining(names, None) == []  # first start: the whole backfill serves all
    in_progress = Checkpoint(position=5, backfill=Backfill(start_position=3))
    assert joining(names, in_progress) == []
    # A file from before there were several speaks for the flat one, "secondary".
    assert joining(["secondary", "archive"], Checkpoint(position=5)) == ["archive"]
    both = Checkpoint(position=5, secondaries=("archive", "analytics"))
    assert joining(names, both) == []
    assert joining(names, Checkpoint(position=5, secondaries=("archive",))) == ["analytics"]


def test_the_checkpoint_file_keeps_its_secondaries() -> None:
    saved = Checkpoint(position=7, secondaries=("archive", "b-2"))
    assert Checkpoint.from_json(saved.to_json()).secondaries == ("archive", "b-2")
    legacy = {k: v for k, v in saved.to_json().items() if k != "secondaries"}
    assert Checkpoint.from_json(legacy).caught_up() == ("secondary",)


@pytest.mark.integration
@pytest.mark.timeout(180)
async def test_a_secondary_added_between_runs_gets_everything_while_the_other_streams(
    tmp_path: Path, primary_server: ServerProcess, engine: int
) -> None:
    with ServerProcess(engine=engine) as archive, ServerProcess(engine=engine) as analytics:
        db = await connect(primary_server.url)
        try:
            await db.query("DEFINE TABLE events CHANGEFEED 1d")
            for i in range(300):
                await db.upsert(RecordID("events", i), {"n": i, "run": 1})
            first = [secondary_entry("archive", archive, 1)]
            daemon = SyncdProcess(
                tmp_path,
                f"{primary_server.url}/rpc",
                None,
                secondaries=first,
                tables={"events": {}},
            )
            daemon.start()
            daemon.wait_ready()
            await converge(db, f"{archive.url}/rpc", "events")
            assert daemon.terminate() == 0

            # Changes while stopped (in the feed), then analytics is added.
            for i in range(250, 400):
                await db.upsert(RecordID("events", i), {"n": i, "run": 2})
            config = yaml.safe_load(daemon.config.read_text())
            config["secondaries"] = [*first, secondary_entry("analytics", analytics, 2)]
            daemon.config.write_text(yaml.safe_dump(config))
            daemon.start()
            daemon.wait_ready()
            for i in range(0, 400, 7):  # writes during the join
                await db.upsert(RecordID("events", i), {"n": i, "run": 3})
            for server in (archive, analytics):
                await converge(db, f"{server.url}/rpc", "events", within=90)
            assert daemon.terminate() == 0
        finally:
            daemon.stop()
            await db.close()
    events = [
        json.loads(line) for line in daemon.log.read_text().splitlines() if line.startswith("{")
    ]
    joined = [e for e in events if e.get("event") == "secondary_joined"]
    assert [e["secondary"] for e in joined] == ["analytics"]
    saved = json.loads((daemon.state / "checkpoint.json").read_text())
    assert sorted(saved["secondaries"]) == ["analytics", "archive"]
