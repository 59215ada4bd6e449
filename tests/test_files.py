"""files.py: the one atomic replace, the one fsync by path, the one whole write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.files import fsync_path, write_all, write_atomically


def test_write_atomically_replaces_with_an_exact_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"old")
    old = os.umask(0o277)  # would leave 0400 of 0600
    try:
        write_atomically(path, b"new")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary left


def test_durable_false_skips_every_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    write_atomically(tmp_path / "port", b"8000\n", mode=0o644, durable=False)
    assert synced == []
    assert (tmp_path / "port").stat().st_mode & 0o777 == 0o644
    write_atomically(tmp_path / "port", b"8001\n")
    assert len(synced) == 2  # the file before the rename, its directory after


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_bytes(b"old")

    def full(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("syncd.files.write_all", full)
    with pytest.raises(OSError, match="No space"):
        write_atomically(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]


def test_write_all_survives_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        write_all(fd, b"0123456789")
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"0123456789"


def test_fsync_path_of_a_missing_file(tmp_path: Path) -> None:
    fsync_path(tmp_path)  # a directory
    fsync_path(tmp_path / "gone", missing_ok=True)
    with pytest.raises(FileNotFoundError):
        fsync_path(tmp_path / "gone")
