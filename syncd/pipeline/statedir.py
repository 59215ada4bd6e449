"""The state directory: where the spool and the dead-letter file live, and who may use them.

Every problem with it — a regular file where the directory should be, a
read-only file system, missing permissions, another process holding it — is
the operator's to fix, so it is raised as a :class:`~syncd.errors.ConfigError`
whose one line names ``state_dir`` and the problem, never as a bare OSError.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from syncd.errors import ConfigError

__all__ = ["lock", "open_state", "resync_file", "state_error", "state_files"]

# What an operator should read for the errno values a state directory meets.
_PROBLEMS = {
    errno.EEXIST: "is a file, not a directory",
    errno.ENOTDIR: "lies under a file, not a directory",
    errno.EROFS: "is on a read-only file system",
    errno.EACCES: "permission denied (syncd must be able to write it)",
    errno.EPERM: "not permitted (read-only or immutable?)",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
}


def state_files(state_dir: Path) -> tuple[Path, Path]:
    """Where the spool and the dead-letter file live under ``state_dir``."""
    return state_dir / "spool", state_dir / "deadletters.jsonl"


def state_error(state_dir: Path, exc: OSError) -> ConfigError:
    """The one-line ConfigError for ``exc``, met while preparing ``state_dir``."""
    problem = _PROBLEMS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    where = exc.filename
    # Name the offending path when it is not the directory itself (a file in it).
    detail = f" ({where})" if where and Path(where) != state_dir else ""
    return ConfigError(f"state_dir {state_dir}: {problem}{detail}")


def open_state(state_dir: Path, lock_name: str) -> int:
    """Create ``state_dir`` (mode 0700) and take its ``lock_name`` lock; return the lock's fd.

    Raises:
        ConfigError: naming ``state_dir`` and the problem (see the module docstring).
    """
    try:
        if state_dir.exists() and not state_dir.is_dir():
            # mkdir(exist_ok=True) would say "File exists", which reads as fine.
            raise FileExistsError(errno.EEXIST, "not a directory", str(state_dir))
        state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)
    except OSError as exc:
        raise state_error(state_dir, exc) from None
    return lock(state_dir / lock_name)


def resync_file(state_dir: Path, spool_name: str = "spool") -> Path:
    """Where the re-sync ledger of the spool ``spool_name`` lives under ``state_dir``."""
    return state_dir / f"{spool_name}.resync"


def lock(path: Path) -> int:
    """Take the spool's lock, or raise a ConfigError naming the directory.

    Two processes sharing a spool would read, delete and overwrite each
    other's segments; the second one is refused instead. Creating the lock
    file is also the first write: a read-only directory fails here.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise state_error(path.parent, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"state_dir {path.parent}: {path.stem} is in use by another syncd process; "
            "stop it, or give this one its own state_dir"
        ) from None
    return fd
