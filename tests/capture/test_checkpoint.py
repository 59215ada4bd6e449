"""The checkpoint file: round trip with exact record ids, atomic replace, retention."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.capture.checkpoint import (
    Backfill,
    Checkpoint,
    CheckpointError,
    CheckpointFile,
    out_of_retention,
)
from syncd.surreal.codec import RecordID


def test_missing_file_means_first_start(tmp_path: Path) -> None:
    assert CheckpointFile(tmp_path).load() is None


def test_round_trip_keeps_complex_record_ids(tmp_path: Path) -> None:
    after = RecordID("kv", ["user", 7, {"a": 1}])
    saved = Checkpoint(position=42, saved_at=100.0, backfill=Backfill(40, ("events",), "kv", after))
    file = CheckpointFile(tmp_path)
    file.save(saved)
    loaded = file.load()
    assert loaded == saved
    assert (tmp_path / "checkpoint.json").stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind


def test_advanced_moves_position_and_time() -> None:
    first = Checkpoint(position=1, saved_at=0.0)
    later = first.advanced(9)
    assert later.position == 9 and later.saved_at > 0


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"v": 9}',
        b"[1, 2]",
        b'{"v": 1, "positions": 3}',
        b'{"v": 2, "rules": 3, "positions": {"database": -5}}',
        b'{"v": 2, "rules": 3, "positions": {"database": "12"}}',
        b'{"v": 2, "rules": 3, "positions": {"database": true}}',
        b'{"v": 2, "rules": 3, "positions": {"database": 1e30}}',
        b'{"v": 2, "rules": 3, "positions": {"database": 18446744073709551616}}',
        b'{"v": 2, "rules": 7, "positions": {}}',
        b'{"v": 2, "rules": 3, "positions": {}, "saved_at": "yesterday"}',
        b'{"v": 2, "rules": 3, "positions": {}, "backfill": {"done": []}}',
    ],
)
def test_malformed_file_is_an_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "checkpoint.json").write_bytes(content)
    with pytest.raises(CheckpointError, match=r"checkpoint\.json"):
        CheckpointFile(tmp_path).load()


def test_a_directory_in_its_place_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.json").mkdir()
    with pytest.raises(CheckpointError, match="is a directory"):
        CheckpointFile(tmp_path).load()


def test_a_version_1_file_is_read_as_2x_versionstamps(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.json").write_bytes(
        b'{"v": 1, "positions": {"database": 7}, "saved_at": 5.0,'
        b' "backfill": {"start_position": 3, "done": []}}'
    )
    loaded = CheckpointFile(tmp_path).load()
    assert loaded is not None
    assert (loaded.rules, loaded.position, loaded.saved_at) == (2, 7 << 16, 5.0)
    assert loaded.backfill == Backfill(start_position=3 << 16)


def test_rules_and_server_round_trip(tmp_path: Path) -> None:
    saved = Checkpoint(position=117714717987504129, saved_at=1.0, rules=3, server="surrealdb-3.2.4")
    CheckpointFile(tmp_path).save(saved)
    assert CheckpointFile(tmp_path).load() == saved


def test_out_of_retention_errs_on_the_safe_side() -> None:
    day = 86400.0
    assert not out_of_retention(saved_at=0, retention=day, now=0.5 * day)
    assert out_of_retention(saved_at=0, retention=day, now=0.95 * day)
