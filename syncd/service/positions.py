"""The daemon's feed position: whether a saved checkpoint may be resumed, and saving it.

Rules: a checkpoint is resumed only under the server generation that wrote it
(an in-place upgrade of the primary is re-synced, not misread), never when an
operator asked for ``--resync``, and never when it lies past the end of the
primary's feed (a replaced or restored primary: the daemon would otherwise
report ready and apply nothing). Every save records the generation's rules
and the primary's version with the position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import anyio
import structlog

from syncd.capture.changefeed import ChangefeedReader
from syncd.capture.checkpoint import Checkpoint, CheckpointError, CheckpointFile
from syncd.capture.feedtables import Retry
from syncd.errors import ConfigError
from syncd.pipeline.intake import Intake

__all__ = ["Positions"]

log = structlog.get_logger("syncd.service.positions")


class Positions:
    """Loads, judges and saves the daemon's checkpoint."""

    def __init__(self, checkpoints: CheckpointFile, reader: ChangefeedReader, *, resync: bool):
        """``resync``: ignore whatever checkpoint is saved (``syncd run --resync``)."""
        self._file = checkpoints
        self._reader = reader
        self._resync = resync
        #: The last checkpoint saved (or loaded and kept).
        self.saved: Checkpoint | None = None
        #: The primary's version string, once asked.
        self.server_version: str | None = None
        #: The secondaries the saved position speaks for (stamped on every save).
        self.caught_up: tuple[str, ...] = ()

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

    async def save(self, checkpoint: Checkpoint, intake: Intake | None = None) -> None:
        """Save atomically, stamped with the generation's rules and the primary's version."""
        checkpoint = replace(
            checkpoint,
            rules=self._reader.dialect.rules,
            server=self.server_version,
            secondaries=self.caught_up,
        )
        await anyio.to_thread.run_sync(self._file.save, checkpoint)
        self.saved = checkpoint
        if intake is not None:
            if checkpoint.position is not None:
                intake.metrics.checkpoint_position.set(checkpoint.position)
            intake.metrics.checkpoint_timestamp.set(checkpoint.saved_at)

    async def save_safe(self, intake: Intake, applied: Mapping[str, int]) -> None:
        """Advance to the highest position whose every change is applied or dead-lettered
        on every secondary; ``applied`` is each secondary's own such position."""
        if self.saved is None or not applied:
            return
        safe = min(applied.values())
        # Each secondary's own position only counts past the common one.
        own = {name: at for name, at in applied.items() if at > safe}
        moved = self.saved.position is None or safe > self.saved.position
        # A secondary that finished joining is recorded even when nothing else moved.
        if moved or own != self.saved.applied or self.caught_up != self.saved.secondaries:
            at = safe if self.saved.position is None else max(safe, self.saved.position)
            await self.save(replace(self.saved.advanced(at), applied=own), intake)
