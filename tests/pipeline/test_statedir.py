"""The state directory: every problem with it is one ConfigError line naming state_dir."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.errors import ConfigError
from syncd.pipeline.statedir import open_state, state_error


def test_creates_the_directory_private_and_locks_it(tmp_path: Path) -> None:
    state = tmp_path / "a" / "state"
    fd = open_state(state, "spool.lock")
    try:
        assert state.is_dir() and (state.stat().st_mode & 0o777) == 0o700
        with pytest.raises(ConfigError, match=f"state_dir {state}: spool is in use"):
            open_state(state, "spool.lock")
    finally:
        os.close(fd)


def test_a_file_where_the_directory_should_be(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("")
    with pytest.raises(ConfigError) as info:
        open_state(state, "spool.lock")
    assert str(info.value) == f"state_dir {state}: is a file, not a directory"


def test_a_file_above_the_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"
    with pytest.raises(ConfigError) as info:
        open_state(state, "spool.lock")
    assert str(info.value) == f"state_dir {state}: lies under a file, not a directory"


@pytest.fixture
def immutable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody, root included, can create files in (``chattr +i``)."""
    path = tmp_path / "frozen"
    path.mkdir()
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        yield path
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def test_a_read_only_directory(immutable_dir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        open_state(immutable_dir, "spool.lock")
    assert str(info.value).startswith(f"state_dir {immutable_dir}: not permitted")
    with pytest.raises(ConfigError, match=f"state_dir {immutable_dir / 'sub'}: not permitted"):
        open_state(immutable_dir / "sub", "spool.lock")


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (errno.EROFS, "is on a read-only file system"),
        (errno.EACCES, "permission denied (syncd must be able to write it)"),
        (errno.ENOSPC, "no space left on the device"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_state_error_says_what_an_operator_should_read(code: int, text: str) -> None:
    state = Path("/var/lib/syncd")
    error = state_error(state, OSError(code, os.strerror(code), str(state)))
    assert str(error) == f"state_dir {state}: {text}"
    inner = state_error(state, OSError(code, os.strerror(code), str(state / "spool" / "x")))
    assert str(inner) == f"state_dir {state}: {text} ({state / 'spool' / 'x'})"
