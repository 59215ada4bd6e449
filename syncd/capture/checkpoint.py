"""The daemon's checkpoint: how far the changefeed has been applied, saved atomically.

Rules:
- the saved position is the last changefeed sequence number whose every
  change — and every earlier one — is applied on the secondary or
  dead-lettered: a watermark across workers, never just the newest seen;
- after a crash the daemon resumes *from* that position (``SINCE`` is
  inclusive), so some changes are applied twice: harmless, they are UPSERTs;
- the file is replaced atomically (temporary file, fsync, rename, fsync of
  the directory): a crash leaves the old checkpoint or the new, never half;
- a backfill in progress is part of the checkpoint, so a crash mid-table
  resumes after the last copied chunk.

File format (``<state_dir>/checkpoint.json``)::

    {"v": 1, "positions": {"database": 1234}, "saved_at": 1795390000.0,
     "backfill": {"start_position": 1200, "done": ["events"],
                  "table": "kv_memories", "after": "<base64 CBOR record id>"}}
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from syncd.errors import SyncdError
from syncd.surreal.codec import pack, unpack

FILENAME = "checkpoint.json"
_FEED = "database"


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

    def advanced(self, position: int) -> Checkpoint:
        """A copy at ``position``, stamped now."""
        return replace(self, position=position, saved_at=time.time())

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        data: dict[str, Any] = {
            "v": 1,
            "positions": {} if self.position is None else {_FEED: self.position},
            "saved_at": self.saved_at,
        }
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
            if data.get("v") != 1:
                raise ValueError(f"unknown version {data.get('v')!r}")
            positions = data.get("positions") or {}
            position = positions.get(_FEED)
            backfill = None
            if data.get("backfill"):
                b = data["backfill"]
                backfill = Backfill(
                    start_position=int(b["start_position"]),
                    done=tuple(str(t) for t in b.get("done", [])),
                    table=b.get("table"),
                    after=None if b.get("after") is None else _unpack(b["after"]),
                )
            return cls(
                position=None if position is None else int(position),
                saved_at=float(data.get("saved_at", 0.0)),
                backfill=backfill,
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint is malformed: {exc}") from exc


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
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise CheckpointError(f"{self.path}: not JSON ({exc})") from exc
        return Checkpoint.from_json(data)

    def save(self, checkpoint: Checkpoint) -> None:
        """Replace the file atomically and durably."""
        data = json.dumps(checkpoint.to_json(), separators=(",", ":")).encode()
        tmp = self.path.with_name(f".{FILENAME}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
