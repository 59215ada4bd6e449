"""The daemon's checkpoint: how far the changefeed has been applied, saved atomically.

Rules:
- the saved position is a raw versionstamp (see :mod:`syncd.surreal.dialect`)
  through which every change — and every earlier one — is applied on the
  secondary or dead-lettered: a watermark across workers, never just the
  newest seen; the daemon resumes at the dialect's ``next_position`` of it;
- the rules of the server generation that wrote the positions (2 or 3) are
  saved with them: positions of one generation mean nothing to the other, so
  a primary upgraded in place is re-synced instead of misread;
- after a crash some changes are applied twice: harmless, they are UPSERTs;
- the file is replaced atomically (temporary file, fsync, rename, fsync of
  the directory): a crash leaves the old checkpoint or the new, never half;
- a backfill in progress is part of the checkpoint, so a crash mid-table
  resumes after the last copied chunk.

File format (``<state_dir>/checkpoint.json``)::

    {"v": 2, "rules": 3, "server": "surrealdb-3.2.4",
     "positions": {"database": 117714717987504129}, "saved_at": 1795390000.0,
     "backfill": {"start_position": 117714717987500000, "done": ["events"],
                  "table": "kv_memories", "after": "<base64 CBOR record id>"}}

Version 1 (before 3.x support) held 2.x sequence numbers and no rules: it is
read as rules 2 with each position shifted to its versionstamp (``<< 16``).
Anything else malformed is a :class:`CheckpointError` naming the file and the
problem, which the CLI prints as one line (exit 2).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from syncd.errors import SyncdError
from syncd.files import write_atomically
from syncd.surreal.codec import pack, unpack

FILENAME = "checkpoint.json"
_FEED = "database"
_POSITION_MAX = 2**64 - 1


class CheckpointError(SyncdError):
    """The checkpoint file exists but cannot be read."""


@dataclass(frozen=True)
class Backfill:
    """A backfill in progress: where it started in the feed and how far it got."""

    start_position: int
    done: tuple[str, ...] = ()
    table: str | None = None
    after: Any = None  # the last record id copied in ``table`` (an SDK RecordID)


@dataclass(frozen=True)
class Checkpoint:
    """The saved state of the changefeed capture."""

    position: int | None = None
    saved_at: float = field(default_factory=time.time)
    backfill: Backfill | None = None
    rules: int | None = None  # 2 or 3: the server generation the positions belong to
    server: str | None = None  # the primary's version string when they were saved
    #: The secondaries holding everything through ``position`` (each was
    #: backfilled, then fed). ``None``: a file from before there were several,
    #: written for the one flat secondary, ``secondary``.
    secondaries: tuple[str, ...] | None = None
    #: Each secondary's own position (≥ ``position``, which is the lowest of
    #: them): after a restart, a secondary skips what it had already applied.
    applied: Mapping[str, int] = field(default_factory=dict)

    def caught_up(self) -> tuple[str, ...]:
        """The secondaries this checkpoint speaks for (see :attr:`secondaries`)."""
        return ("secondary",) if self.secondaries is None else self.secondaries

    def advanced(self, position: int) -> Checkpoint:
        """A copy at ``position``, stamped now."""
        return replace(self, position=position, saved_at=time.time())

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        data: dict[str, Any] = {
            "v": 2,
            "rules": self.rules,
            "server": self.server,
            "positions": {} if self.position is None else {_FEED: self.position},
            "saved_at": self.saved_at,
        }
        if self.secondaries is not None:
            data["secondaries"] = list(self.secondaries)
        if self.applied:
            data["applied"] = dict(self.applied)
        if self.backfill is not None:
            b = self.backfill
            data["backfill"] = {
                "start_position": b.start_position,
                "done": list(b.done),
                "table": b.table,
                "after": None if b.after is None else _pack(b.after),
            }
        return data

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        """Parse the file's content; raise :class:`CheckpointError` when malformed."""
        try:
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            version = data.get("v")
            if version not in (1, 2):
                raise ValueError(f"unknown format version {version!r}")
            # Version 1 held 2.x sequence numbers: its stamps are seq << 16.
            scale = 16 if version == 1 else 0
            rules = 2 if version == 1 else data.get("rules")
            if rules is not None and rules not in (2, 3):
                raise ValueError(f"unknown server rules {rules!r}")
            positions = data.get("positions") or {}
            if not isinstance(positions, dict):
                raise ValueError("positions is not an object")
            position = positions.get(_FEED)
            backfill = None
            if data.get("backfill"):
                b = data["backfill"]
                backfill = Backfill(
                    start_position=_position(b["start_position"], "start_position") << scale,
                    done=tuple(str(t) for t in b.get("done", [])),
                    table=b.get("table"),
                    after=None if b.get("after") is None else _unpack(b["after"]),
                )
            saved_at = data.get("saved_at", 0.0)
            if isinstance(saved_at, bool) or not isinstance(saved_at, int | float):
                raise ValueError(f"saved_at is not a number ({saved_at!r})")
            server = data.get("server")
            names = data.get("secondaries")
            if names is not None and not (
                isinstance(names, list) and all(isinstance(n, str) for n in names)
            ):
                raise ValueError(f"secondaries is not a list of names ({names!r})")
            applied = data.get("applied") or {}
            if not isinstance(applied, dict):
                raise ValueError("applied is not an object")
            return cls(
                position=None if position is None else _position(position, "position") << scale,
                saved_at=float(saved_at),
                backfill=backfill,
                rules=rules,
                server=None if server is None else str(server),
                secondaries=None if names is None else tuple(names),
                applied={str(k): _position(v, "applied") << scale for k, v in applied.items()},
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint is malformed: {exc}") from exc


def _position(value: Any, name: str) -> int:
    """A feed position from the file: an int in ``[0, 2**64)``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} is not an integer ({value!r})")
    if not 0 <= value <= _POSITION_MAX:
        raise ValueError(f"{name} {value} is out of range")
    return value


def _pack(value: Any) -> str:
    return pack(value)


def _unpack(text: str) -> Any:
    return unpack(text)


def out_of_retention(saved_at: float, retention: float, now: float) -> bool:
    """Whether changes after a checkpoint saved at ``saved_at`` may have expired.

    The feed keeps ``retention`` seconds of history; anything older may be gone,
    so resuming would silently skip changes. A tenth of slack errs on the safe
    side (a backfill again costs time, a gap costs data).
    """
    return now - saved_at > retention * 0.9


class CheckpointFile:
    """Loads and atomically saves the checkpoint under the state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME

    def load(self) -> Checkpoint | None:
        """The saved checkpoint, or ``None`` on first start."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise CheckpointError(f"{self.path}: is a directory, not a checkpoint file") from None
        except OSError as exc:
            raise CheckpointError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise CheckpointError(f"{self.path}: not JSON ({exc})") from exc
        try:
            return Checkpoint.from_json(data)
        except CheckpointError as exc:
            raise CheckpointError(f"{self.path}: {exc}") from None

    def save(self, checkpoint: Checkpoint) -> None:
        """Replace the file atomically and durably."""
        write_atomically(
            self.path, json.dumps(checkpoint.to_json(), separators=(",", ":")).encode()
        )
