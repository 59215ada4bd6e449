"""The daemon's feed position, and its one owner: load, judge, skip, save.

Rules: a checkpoint is resumed only under the server generation that wrote it
(an in-place upgrade of the primary is re-synced, not misread), never when an
operator asked for ``--resync``, and never when it lies past the end of the
primary's feed (a replaced or restored primary: the daemon would otherwise
report ready and apply nothing). Every save records the generation's rules
and the primary's version with the position. The position saved is the
lowest every secondary has applied or dead-lettered through (each replica
says only that); each secondary's own position past it is saved too, and
after a restart what a secondary had applied is not enqueued to it again.
The file's format is :mod:`syncd.capture.checkpoint`'s.

A save that fails (a full disk) is logged once (``checkpoint_save_failed``,
error) and tried again a second later: the file on disk keeps the older,
safe position, so the cost is re-reading more of the feed after a crash,
never a change missed, and never the end of the daemon.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import anyio
import structlog

from syncd.capture.changefeed import ChangefeedReader
from syncd.capture.checkpoint import Checkpoint, CheckpointError, CheckpointFile
from syncd.capture.feedtables import Retry
from syncd.errors import ConfigError
from syncd.metrics import Metrics

__all__ = ["Checkpointer"]

log = structlog.get_logger("syncd.service.checkpointer")


class Replicas(Protocol):
    """What the checkpointer asks of the secondaries' fan-out."""

    skip_through: dict[str, int]

    def applied_positions(self, newest: int) -> dict[str, int]:
        """Each secondary's own position through which it applied or dead-lettered all."""
        ...


class Checkpointer:
    """Loads, judges, resumes from and saves the daemon's checkpoint."""

    def __init__(
        self,
        checkpoints: CheckpointFile,
        reader: ChangefeedReader,
        metrics: Metrics,
        *,
        resync: bool,
    ) -> None:
        """``resync``: ignore whatever checkpoint is saved (``syncd run --resync``)."""
        self._file = checkpoints
        self._reader = reader
        self._metrics = metrics
        self._resync = resync
        #: The last checkpoint saved (or loaded and kept).
        self.saved: Checkpoint | None = None
        #: The primary's version string, once asked.
        self.server_version: str | None = None
        #: The secondaries the saved position speaks for (stamped on every save).
        self.caught_up: tuple[str, ...] = ()
        #: The last save failed: :attr:`saved` is ahead of the file.
        self.failing = False

    @property
    def path(self) -> str:
        """Where the checkpoint lives."""
        return str(self._file.path)

    def peek(self) -> Checkpoint | None:
        """The saved checkpoint as it is on disk (before the primary is asked anything),
        or None when there is none, it cannot be read, or ``--resync`` was asked;
        :meth:`load_resumable` judges and reports it properly later."""
        if self._resync:
            return None
        try:
            return self._file.load()
        except CheckpointError:
            return None

    def position(self) -> int | None:
        """The saved position (a raw versionstamp), if any."""
        return None if self.saved is None else self.saved.position

    async def load_resumable(self) -> Checkpoint | None:
        """The saved checkpoint, or None when it must not be resumed."""
        checkpoint = await anyio.to_thread.run_sync(self._file.load)
        if checkpoint is None:
            return None
        if self._resync:
            log.warning("resync_requested", position=checkpoint.position)
            return None
        if checkpoint.rules != self._reader.dialect.rules:
            # Positions written under one generation mean nothing under the
            # other: an in-place upgrade (or downgrade) of the primary.
            log.warning(
                "primary_generation_changed",
                saved_rules=checkpoint.rules,
                saved_server=checkpoint.server,
                server=self.server_version,
            )
            return None
        self.saved = checkpoint
        return checkpoint

    async def check_not_ahead(self, checkpoint: Checkpoint, retry: Retry) -> None:
        """Refuse to start from a position past the feed's end (it would read nothing).

        Raises:
            ConfigError: one line saying what is wrong and what to run.
        """
        if checkpoint.position is None:
            return
        latest = await retry(self._reader.latest_position)
        if latest is None or checkpoint.position > latest:
            raise ConfigError(
                f"checkpoint {self.path}: position {checkpoint.position} is ahead of the "
                f"primary's changefeed (newest entry: {latest}); the primary was replaced, "
                "restored or reset. To re-sync from its current position run: "
                "syncd run --resync"
            )

    def resume(self, checkpoint: Checkpoint, replicas: Replicas) -> None:
        """Resume from ``checkpoint``: each secondary skips the feed positions it had
        applied past the common one (its ``applied``)."""
        replicas.skip_through = dict(checkpoint.applied)

    async def save(self, checkpoint: Checkpoint) -> None:
        """Save atomically, stamped with the generation's rules and the primary's version."""
        checkpoint = replace(
            checkpoint,
            rules=self._reader.dialect.rules,
            server=self.server_version,
            secondaries=self.caught_up,
        )
        self.saved = checkpoint
        try:
            await anyio.to_thread.run_sync(self._file.save, checkpoint)
        except OSError as exc:
            if not self.failing:
                log.error("checkpoint_save_failed", error=str(exc), position=checkpoint.position)
            self.failing = True
            return
        if self.failing:
            log.info("checkpoint_saved_again", position=checkpoint.position)
        self.failing = False
        if checkpoint.position is not None:
            self._metrics.checkpoint_position.set(checkpoint.position)
        self._metrics.checkpoint_timestamp.set(checkpoint.saved_at)

    async def save_applied(self, replicas: Replicas, newest: int | None) -> None:
        """Advance to the highest position whose every change is applied or dead-lettered
        on every secondary (``newest``: the newest position read from the feed)."""
        if self.saved is None or newest is None:
            return
        applied = replicas.applied_positions(newest)
        if not applied:
            return
        safe = min(applied.values())
        # Each secondary's own position only counts past the common one.
        own = {name: at for name, at in applied.items() if at > safe}
        moved = self.saved.position is None or safe > self.saved.position
        # A secondary that finished joining is recorded even when nothing else moved.
        changed = own != self.saved.applied or self.caught_up != self.saved.secondaries
        if moved or changed or self.failing:
            at = safe if self.saved.position is None else max(safe, self.saved.position)
            await self.save(replace(self.saved.advanced(at), applied=own))
