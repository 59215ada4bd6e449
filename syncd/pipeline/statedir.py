"""The state directory: where the spool, its re-sync ledger and the dead-letter file live,
and who may use them."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from syncd.errors import ConfigError

__all__ = ["lock", "resync_file", "state_files"]


def state_files(state_dir: Path) -> tuple[Path, Path]:
    """Where the spool and the dead-letter file live under ``state_dir``."""
    return state_dir / "spool", state_dir / "deadletters.jsonl"


def resync_file(state_dir: Path, spool_name: str = "spool") -> Path:
    """Where the re-sync ledger of the spool ``spool_name`` lives under ``state_dir``."""
    return state_dir / f"{spool_name}.resync"


def lock(path: Path) -> int:
    """Take the spool's lock, or raise a ConfigError naming the directory.

    Two processes sharing a spool would read, delete and overwrite each
    other's segments; the second one is refused instead.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"state_dir {path.parent}: {path.stem} is in use by another syncd process; "
            "stop it, or give this one its own state_dir"
        ) from None
    return fd
