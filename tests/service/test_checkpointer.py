"""The Checkpointer: what it resumes, what it refuses, and what it saves.

A real :class:`CheckpointFile` under ``tmp_path``; the primary is a stub
reader with the two things the checkpointer asks of it (its dialect and the
newest feed position), and the fan-out a stub giving each secondary's
applied position.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client import CollectorRegistry

from syncd.capture.checkpoint import Checkpoint, CheckpointFile
from syncd.errors import ConfigError
from syncd.metrics import Metrics
from syncd.service.checkpointer import Checkpointer
from syncd.surreal.dialect import dialect_for

T = TypeVar("T")


class Reader:
    """The primary as the checkpointer sees it."""

    def __init__(self, version: str = "surrealdb-3.2.4", latest: int | None = 1000) -> None:
        self.dialect = dialect_for(version)
        self.latest = latest

    async def latest_position(self) -> int | None:
        return self.latest


@dataclass
class Replicas:
    """Each secondary's applied position, as the fan-out would report it."""

    applied: dict[str, int] = field(default_factory=dict)
    skip_through: dict[str, int] = field(default_factory=dict)
    asked: list[int] = field(default_factory=list)

    def applied_positions(self, newest: int) -> dict[str, int]:
        self.asked.append(newest)
        return dict(self.applied)


async def direct(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


def make(
    tmp_path: Path, reader: Reader | None = None, *, resync: bool = False
) -> tuple[Checkpointer, CheckpointFile, Metrics]:
    files = CheckpointFile(tmp_path)
    metrics = Metrics(CollectorRegistry())
    reader = reader or Reader()
    return Checkpointer(files, reader, metrics, resync=resync), files, metrics  # type: ignore[arg-type]


# -- load ------------------------------------------------------------------


async def test_nothing_saved_loads_nothing(tmp_path: Path) -> None:
    cp, _, _ = make(tmp_path)
    assert await cp.load_resumable() is None
    assert cp.peek() is None
    assert cp.position() is None
    assert cp.path == str(tmp_path / "checkpoint.json")


async def test_a_checkpoint_of_the_same_generation_is_resumed(tmp_path: Path) -> None:
    cp, files, _ = make(tmp_path)
    files.save(Checkpoint(position=500, rules=3))
    loaded = await cp.load_resumable()
    assert loaded is not None and loaded.position == 500
    assert cp.saved == loaded
    assert cp.position() == 500


async def test_a_checkpoint_of_the_other_generation_is_not_resumed(tmp_path: Path) -> None:
    cp, files, _ = make(tmp_path, Reader("surrealdb-2.3.10"))
    files.save(Checkpoint(position=500, rules=3))
    assert await cp.load_resumable() is None
    assert cp.saved is None
    # peek shows what is on disk, judged or not
    peeked = cp.peek()
    assert peeked is not None and peeked.position == 500


async def test_resync_ignores_the_saved_checkpoint(tmp_path: Path) -> None:
    cp, files, _ = make(tmp_path, resync=True)
    files.save(Checkpoint(position=500, rules=3))
    assert cp.peek() is None
    assert await cp.load_resumable() is None
    assert cp.saved is None
    assert files.load() is not None  # nothing deleted


async def test_peek_of_an_unreadable_file_is_none(tmp_path: Path) -> None:
    cp, files, _ = make(tmp_path)
    files.path.write_text("{not json")
    assert cp.peek() is None


# -- judge -----------------------------------------------------------------


async def test_a_position_within_the_feed_is_accepted(tmp_path: Path) -> None:
    cp, _, _ = make(tmp_path, Reader(latest=1000))
    await cp.check_not_ahead(Checkpoint(position=1000, rules=3), direct)
    await cp.check_not_ahead(Checkpoint(position=None, rules=3), direct)


@pytest.mark.parametrize("latest", [999, None])
async def test_a_position_past_the_feed_is_refused_with_the_fix(
    tmp_path: Path, latest: int | None
) -> None:
    cp, _, _ = make(tmp_path, Reader(latest=latest))
    with pytest.raises(ConfigError) as caught:
        await cp.check_not_ahead(Checkpoint(position=1000, rules=3), direct)
    message = str(caught.value)
    assert "position 1000 is ahead" in message
    assert f"newest entry: {latest}" in message
    assert "syncd run --resync" in message
    assert "\n" not in message


async def test_the_feed_end_is_asked_through_the_retry(tmp_path: Path) -> None:
    cp, _, _ = make(tmp_path, Reader(latest=2000))
    calls: list[object] = []

    async def retry(fn: Callable[[], Awaitable[T]]) -> T:
        calls.append(fn)
        return await fn()

    await cp.check_not_ahead(Checkpoint(position=5, rules=3), retry)
    assert len(calls) == 1


# -- resume ----------------------------------------------------------------


def test_resume_gives_each_secondary_its_own_applied_position(tmp_path: Path) -> None:
    cp, _, _ = make(tmp_path)
    replicas = Replicas(skip_through={"stale": 1})
    checkpoint = Checkpoint(position=10, rules=3, applied={"a": 20, "b": 30})
    cp.resume(checkpoint, replicas)
    assert replicas.skip_through == {"a": 20, "b": 30}
    # a copy: later changes to the replicas' table do not touch the checkpoint
    replicas.skip_through["a"] = 99
    assert checkpoint.applied["a"] == 20


# -- save ------------------------------------------------------------------


async def test_save_stamps_rules_server_and_secondaries(tmp_path: Path) -> None:
    cp, files, metrics = make(tmp_path)
    cp.server_version = "surrealdb-3.2.4"
    cp.caught_up = ("a", "b")
    await cp.save(Checkpoint(position=42, saved_at=1234.5))
    on_disk = files.load()
    assert on_disk is not None
    assert (on_disk.position, on_disk.rules, on_disk.server) == (42, 3, "surrealdb-3.2.4")
    assert on_disk.secondaries == ("a", "b")
    assert cp.saved == on_disk
    assert metrics.checkpoint_position._value.get() == 42
    assert metrics.checkpoint_timestamp._value.get() == 1234.5


async def test_save_without_a_position_leaves_the_position_gauge(tmp_path: Path) -> None:
    cp, files, metrics = make(tmp_path)
    await cp.save(Checkpoint(position=None, saved_at=7.0))
    assert json.loads(files.path.read_text())["positions"] == {}
    assert metrics.checkpoint_position._value.get() == 0
    assert metrics.checkpoint_timestamp._value.get() == 7.0


async def saved_with(tmp_path: Path, checkpoint: Checkpoint) -> tuple[Checkpointer, CheckpointFile]:
    cp, files, _ = make(tmp_path)
    await cp.save(checkpoint)
    return cp, files


async def test_save_applied_saves_the_lowest_and_each_own_position_past_it(
    tmp_path: Path,
) -> None:
    cp, files = await saved_with(tmp_path, Checkpoint(position=10))
    replicas = Replicas(applied={"a": 50, "b": 30, "c": 30})
    await cp.save_applied(replicas, newest=60)
    assert replicas.asked == [60]
    on_disk = files.load()
    assert on_disk is not None
    assert on_disk.position == 30
    assert dict(on_disk.applied) == {"a": 50}


async def test_save_applied_never_moves_backwards(tmp_path: Path) -> None:
    cp, files = await saved_with(tmp_path, Checkpoint(position=40))
    # a secondary behind the saved position (say, one just joined by backfill)
    await cp.save_applied(Replicas(applied={"a": 50, "b": 20}), newest=60)
    on_disk = files.load()
    assert on_disk is not None
    assert on_disk.position == 40
    assert dict(on_disk.applied) == {"a": 50}


async def test_save_applied_with_nothing_new_does_not_write(tmp_path: Path) -> None:
    cp, files = await saved_with(tmp_path, Checkpoint(position=30, applied={"a": 50}))
    before = files.path.stat().st_mtime_ns
    saved = cp.saved
    await cp.save_applied(Replicas(applied={"a": 50, "b": 30}), newest=60)
    assert cp.saved is saved
    assert files.path.stat().st_mtime_ns == before


async def test_save_applied_records_a_secondary_that_finished_joining(tmp_path: Path) -> None:
    cp, files = await saved_with(tmp_path, Checkpoint(position=30))
    cp.caught_up = ("a", "b")
    await cp.save_applied(Replicas(applied={"a": 30, "b": 30}), newest=60)
    on_disk = files.load()
    assert on_disk is not None
    assert on_disk.position == 30
    assert on_disk.secondaries == ("a", "b")


async def test_save_applied_from_no_position_takes_the_lowest(tmp_path: Path) -> None:
    cp, files = await saved_with(tmp_path, Checkpoint(position=None))
    await cp.save_applied(Replicas(applied={"a": 5, "b": 9}), newest=9)
    on_disk = files.load()
    assert on_disk is not None and on_disk.position == 5
    assert dict(on_disk.applied) == {"b": 9}


@pytest.mark.parametrize(
    ("loaded", "newest", "applied"),
    [
        (False, 60, {"a": 50}),  # nothing loaded or saved yet
        (True, None, {"a": 50}),  # nothing read from the feed yet
        (True, 60, {}),  # no secondary reported
    ],
)
async def test_save_applied_does_nothing_without_the_facts(
    tmp_path: Path, loaded: bool, newest: int | None, applied: dict[str, int]
) -> None:
    cp, files, _ = make(tmp_path)
    if loaded:
        await cp.save(Checkpoint(position=10))
    before: Any = files.load()
    await cp.save_applied(Replicas(applied=applied), newest)
    after = files.load()
    assert (after is None) == (before is None)
    if after is not None:
        assert after.position == 10 and dict(after.applied) == {}
