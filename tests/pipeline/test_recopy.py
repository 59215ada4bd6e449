"""The re-sync ledger on real files: durable, torn-write safe, never raising on the write path."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.pipeline.recopy import RecopyLedger


def opened(path: Path) -> RecopyLedger:
    ledger = RecopyLedger(path)
    ledger.open()
    return ledger


def test_marks_survive_a_reopen_and_clears_too(tmp_path: Path) -> None:
    changes: list[list[str]] = []
    ledger = RecopyLedger(tmp_path / "r", on_change=changes.append)
    ledger.open()
    assert not ledger and ledger.tables() == []
    ledger.mark("b", 1)
    ledger.mark("a", 2)
    ledger.mark("a", 3)  # known already: no write, no change
    assert changes == [["b"], ["a", "b"]]
    ledger.close()  # no fsync needed for a kill; close does one anyway
    again = opened(tmp_path / "r")
    assert again.tables() == ["a", "b"]
    assert again.clear("a", again.generation("a") or 0)
    again.close()
    assert opened(tmp_path / "r").tables() == ["b"]


def test_a_copy_started_before_a_new_mark_does_not_clear_it(tmp_path: Path) -> None:
    ledger = opened(tmp_path / "r")
    ledger.mark("t", 1)
    generation = ledger.generation("t")
    assert generation is not None
    ledger.mark("t", 2)  # not kept while the copy ran
    assert not ledger.clear("t", generation)
    assert ledger.tables() == ["t"]
    assert ledger.clear("t", generation + 1) and not ledger


def test_the_file_is_allocated_once_and_overwritten_in_place(tmp_path: Path) -> None:
    ledger = opened(tmp_path / "r")
    size = (tmp_path / "r").stat().st_size
    for n in range(50):
        ledger.mark(f"table_{n}", n)
    assert (tmp_path / "r").stat().st_size == size  # a full disk cannot refuse an overwrite
    ledger.close()


def test_a_torn_write_leaves_the_previous_state(tmp_path: Path) -> None:
    ledger = opened(tmp_path / "r")
    ledger.mark("a", 1)  # generation 1: slot 1
    ledger.mark("b", 2)  # generation 2: slot 0
    ledger.close()
    with (tmp_path / "r").open("r+b") as f:  # the last write was torn
        f.seek(20)
        f.write(b"\xff\xff")
    assert opened(tmp_path / "r").tables() == ["a"]


def test_a_failing_write_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = opened(tmp_path / "r")

    def broken(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr("syncd.pipeline.recopy.os.pwrite", broken)
    with capture_logs() as logs:
        ledger.mark("t", 1)  # called on the application's write path
    assert ledger.tables() == ["t"]
    assert "resync_ledger_write_failed" in [e["event"] for e in logs]
    ledger.close()
