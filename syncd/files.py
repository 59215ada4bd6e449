"""Files written whole and durably: the one atomic replace, the one fsync by path.

Rules of this file:
- a file is replaced through a temporary file beside it and one rename, so a
  reader or a crash sees the old content or the new, never a mix;
- "durable" adds the fsyncs a power cut needs: the file's before the rename,
  its directory's after (a rename or removal lives in the directory);
- the modes are exact (``fchmod``), not what the umask leaves of them: these
  files are syncd's own state, 0600 unless the caller says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_path", "write_all", "write_atomically"]


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is out (a write may be short)."""
    done = os.write(fd, data)
    if done < len(data):
        view = memoryview(data)[done:]
        while view:
            view = view[os.write(fd, view) :]


def write_atomically(path: Path, data: bytes, *, mode: int = 0o600, durable: bool = True) -> None:
    """Replace ``path`` with ``data``: temporary file, rename (see the module's rules).

    ``durable=False`` skips both fsyncs: a killed process still leaves the
    old content or the new, a power cut may leave neither. The temporary
    file is removed when anything fails.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.fchmod(fd, mode)
            write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_path(path.parent)


def fsync_path(path: Path, *, missing_ok: bool = False) -> None:
    """Fsync a file or a directory through a fresh descriptor (fsync is per inode).

    A directory's fsync makes a rename or a removal in it survive a power cut.
    ``missing_ok``: a file removed meanwhile has nothing left to make durable.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
