"""Pausing a secondary: the gate its workers wait at, and the file that keeps a pause.

Rules of this file:

- a pause is an operator's decision, so it outlives the process: it is kept
  in ``state_dir/paused.json`` as ``{"version": 1, "paused": {"<secondary>":
  {"since": <unix time>}}}``, replaced atomically (a temporary file, fsynced,
  renamed, the directory fsynced), mode 0600. No secondary paused, no file;
- a file that cannot be understood is the operator's to fix: a one-line
  :class:`~syncd.errors.ConfigError` naming it. Guessing "not paused" would
  start writing to a secondary someone deliberately stopped;
- the gate holds workers that are about to *take* or *send* a batch; a batch
  already sent finishes. Capture never looks at it: while paused, operations
  keep arriving and wait in the queue and the spool as in any outage.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import anyio

from syncd.errors import ConfigError
from syncd.files import fsync_path, write_atomically

__all__ = ["FILENAME", "PauseFile", "PauseGate"]

#: The pause file's name under ``state_dir``.
FILENAME = "paused.json"
_VERSION = 1


class PauseGate:
    """Open while a secondary may be written to; closed (paused) since a unix time.

    Lives on the event loop: :meth:`close` and :meth:`open` are called from
    its thread, as the waits are.
    """

    def __init__(self, name: str) -> None:
        """A gate for the secondary ``name``, open."""
        self.name = name
        #: Unix time the pause started; ``None`` while open.
        self.since: float | None = None
        self._changed = anyio.Event()

    @property
    def paused(self) -> bool:
        """Whether the gate is closed."""
        return self.since is not None

    def close(self, since: float) -> None:
        """Pause from ``since`` (kept if already paused: the pause started then)."""
        if self.since is None:
            self.since = since
            self._notify()

    def open(self) -> None:
        """Resume: waiting workers go on."""
        if self.since is not None:
            self.since = None
            self._notify()

    def _notify(self) -> None:
        # Waiters hold the old event; a fresh one serves the next change.
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_open(self) -> None:
        """Return at once when open, else when opened."""
        while self.since is not None:
            await self._changed.wait()

    async def wait_closed(self) -> None:
        """Return at once when paused, else when paused."""
        while self.since is None:
            await self._changed.wait()


class PauseFile:
    """``state_dir/paused.json``: which secondaries are paused, and since when."""

    def __init__(self, state_dir: Path) -> None:
        """The pause file of ``state_dir`` (nothing is read or written yet)."""
        self.path = state_dir / FILENAME

    def load(self) -> dict[str, float]:
        """``{secondary: since}``; empty when there is no file.

        Raises:
            ConfigError: one line naming the file, when it cannot be read or
                understood.
        """
        try:
            raw = self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            # No state directory (yet, or a file in its place): no pause. What
            # is wrong with the directory is reported where it is opened.
            return {}
        except OSError as exc:
            raise self._error(f"cannot read ({exc.strerror or exc})") from None
        try:
            return _parse(json.loads(raw))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError too
            raise self._error(f"malformed ({str(exc).splitlines()[0]})") from None

    def save(self, paused: Mapping[str, float]) -> None:
        """Replace the file atomically and durably; remove it when nothing is paused.

        Raises ``OSError`` as the file system does (the caller names ``state_dir``).
        """
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not paused:
            try:
                self.path.unlink()
            except FileNotFoundError:
                return
            fsync_path(directory)  # the removal itself must survive a power cut
            return
        body = {"version": _VERSION, "paused": {n: {"since": s} for n, s in paused.items()}}
        write_atomically(self.path, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())

    def _error(self, problem: str) -> ConfigError:
        return ConfigError(
            f"pause file {self.path}: {problem}; fix it, or delete it to resume every secondary"
        )


def _parse(data: object) -> dict[str, float]:
    """The pauses in a decoded file; ``ValueError`` saying what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("the top level is not an object")
    version = data.get("version", _VERSION)
    if version != _VERSION:
        raise ValueError(f"unknown version {version!r}")
    paused = data.get("paused")
    if not isinstance(paused, dict):
        raise ValueError('"paused" is not an object')
    out: dict[str, float] = {}
    for name, entry in paused.items():
        since = entry.get("since") if isinstance(entry, dict) else None
        # bool is an int to Python, never a time to us.
        if not name or isinstance(since, bool) or not isinstance(since, int | float):
            raise ValueError(f"entry {name!r} has no numeric since")
        if not math.isfinite(since) or since < 0:
            raise ValueError(f"entry {name!r} has an impossible since")
        out[name] = float(since)
    return out
