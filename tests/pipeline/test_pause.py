"""The pause file (atomic, 0600, strict about its shape) and the gate workers wait at."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import anyio
import pytest

from syncd.errors import ConfigError
from syncd.pipeline.pause import FILENAME, PauseFile, PauseGate


def test_no_file_means_nothing_paused(tmp_path: Path) -> None:
    assert PauseFile(tmp_path).load() == {}


def test_saved_pauses_load_back_and_the_file_is_private(tmp_path: Path) -> None:
    file = PauseFile(tmp_path / "state")  # created on the first save
    file.save({"secondary": 1700000000.25})
    assert file.load() == {"secondary": 1700000000.25}
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    assert json.loads(file.path.read_text())["paused"] == {"secondary": {"since": 1700000000.25}}
    # Replaced by rename: no temporary file is left behind.
    assert sorted(p.name for p in file.path.parent.iterdir()) == [FILENAME]


def test_nothing_paused_removes_the_file(tmp_path: Path) -> None:
    file = PauseFile(tmp_path)
    file.save({"secondary": 1.0})
    file.save({})
    assert not file.path.exists()
    file.save({})  # idempotent
    assert file.load() == {}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "malformed"),
        ("[]", "the top level is not an object"),
        ('{"version": 2, "paused": {}}', "unknown version 2"),
        ('{"paused": []}', '"paused" is not an object'),
        ('{"paused": {"secondary": {}}}', "no numeric since"),
        ('{"paused": {"secondary": {"since": "noon"}}}', "no numeric since"),
        ('{"paused": {"secondary": {"since": true}}}', "no numeric since"),
        ('{"paused": {"secondary": {"since": -1}}}', "impossible since"),
        ('{"paused": {"secondary": {"since": NaN}}}', "impossible since"),
        (b"\xff\xfe", "malformed"),
    ],
)
def test_a_malformed_file_is_one_line_naming_it(
    tmp_path: Path, text: str | bytes, problem: str
) -> None:
    path = tmp_path / FILENAME
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ConfigError) as info:
        PauseFile(tmp_path).load()
    message = str(info.value)
    assert message.startswith(f"pause file {path}: ")
    assert problem in message
    assert "\n" not in message


def test_an_unreadable_file_names_it(tmp_path: Path) -> None:
    (tmp_path / FILENAME).mkdir()
    with pytest.raises(ConfigError, match=rf"pause file {tmp_path / FILENAME}: cannot read"):
        PauseFile(tmp_path).load()


async def test_the_gate_holds_waiters_until_opened() -> None:
    gate = PauseGate("secondary")
    await gate.wait_open()  # open: returns at once
    gate.close(100.0)
    gate.close(200.0)  # already paused: the pause started at 100
    assert gate.paused and gate.since == 100.0
    passed: list[str] = []

    async def worker() -> None:
        await gate.wait_open()
        passed.append("through")

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        await anyio.sleep(0.05)
        assert passed == []
        await gate.wait_closed()  # closed: returns at once
        gate.open()
    assert passed == ["through"] and gate.since is None


async def test_wait_closed_returns_when_paused() -> None:
    gate = PauseGate("secondary")
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            tg.start_soon(gate.wait_closed)
            await anyio.sleep(0.01)
            gate.close(1.0)
