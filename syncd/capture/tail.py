"""Tailing the changefeed into the pipeline: at once while entries come, guarded against loops.

Rules of this file:

- the tail reads from a position (a raw versionstamp, inclusive) and moves to
  the dialect's ``next_position`` of the newest entry it read: a range once
  read is never read again;
- while the feed returns entries it reads again at once; only an empty read
  waits ``changefeed_poll_interval`` (lag at a steady write rate is then one
  round trip, not a poll interval);
- while the pipeline has no room the feed is the buffer: nothing is read;
- **guards, not busy loops**: entries at or before the position already read,
  or a page that does not move the position forward, mean the position is
  misread (a generation mix-up, a restored primary). The tail stops reading,
  logs ``changefeed_position_stuck`` at error level, and says so
  (:attr:`FeedTail.stuck`, which the daemon turns into a 503 on ``/readyz``):
  re-applying the same range forever would look healthy and keep nothing up
  to date.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import structlog

from syncd.capture.changefeed import ChangefeedReader, parse_entries, to_operations
from syncd.errors import PrimaryUnavailable
from syncd.pipeline.intake import Intake
from syncd.surreal.dialect import Dialect

__all__ = ["READ_LIMIT", "FeedTail", "check_progress"]

log = structlog.get_logger("syncd.capture.tail")

#: SHOW CHANGES answers at most 1000 entries (both generations).
READ_LIMIT = 1000


def check_progress(
    dialect: Dialect, since: int, entries: Sequence[Mapping[str, Any]]
) -> tuple[int, str | None]:
    """The position after ``entries`` read at ``since``, or why it cannot be trusted.

    Pure. Returns ``(next_position, None)``, or ``(since, reason)`` when an
    entry lies before ``since`` or the positions go backwards.
    """
    previous = -1
    for entry in entries:
        position = dialect.entry_position(entry)
        if dialect.next_position(position) <= since:
            return since, f"the feed returned position {position} for a read at {since}"
        if position < previous:
            return since, f"the feed's positions went backwards ({previous} then {position})"
        previous = position
    return dialect.next_position(previous), None


class FeedTail:
    """Reads the primary's changefeed from a position into the intake until stopped."""

    def __init__(
        self,
        reader: ChangefeedReader,
        intake: Intake,
        *,
        replicates: Callable[[str], bool],
        poll: float,
        stop: anyio.Event,
        before_read: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``before_read`` runs before every read (the daemon adopts new tables there)."""
        self._reader = reader
        self._intake = intake
        self._replicates = replicates
        self._poll = poll
        self._stop = stop
        self._before_read = before_read
        #: The versionstamp of the newest entry read so far (None: none yet).
        self.newest_seen: int | None = None
        #: Why the tail stopped reading, when its position could not be trusted.
        self.stuck: str | None = None

    async def run(self, since: int) -> None:
        """Read from ``since`` (inclusive) until the stop event is set or the position is stuck."""
        dialect = self._reader.dialect
        while not self._stop.is_set():
            if self._before_read is not None:
                await self._before_read()
                if self._stop.is_set():
                    return
            room = self._intake.room()
            if room <= 0:
                await self._sleep(self._poll)  # the secondary is behind: the feed buffers
                continue
            try:
                entries = await self._reader.read(since, min(READ_LIMIT, room))
            except PrimaryUnavailable:
                await self._sleep(self._poll)
                continue
            if not entries:
                await self._sleep(self._poll)
                continue
            after, problem = check_progress(dialect, since, entries)
            if problem is not None:
                self._stick(problem, since)
                return
            self._enqueue(dialect, entries)
            self.newest_seen = dialect.entry_position(entries[-1])
            since = after

    def _enqueue(self, dialect: Dialect, entries: Sequence[Mapping[str, Any]]) -> None:
        now = time.time()

        def committed_at(stamp: int) -> float | None:
            lag = dialect.lag_seconds(stamp, now)
            return None if lag is None else now - lag

        changes = parse_entries(entries, committed_at=committed_at)
        metrics = self._intake.metrics
        for change in changes:
            metrics.changefeed_entries.labels(change.table).inc()
        keys = self._intake.keys
        self._intake.enqueue(to_operations(changes, replicates=self._replicates, keys=keys))

    def _stick(self, problem: str, since: int) -> None:
        self.stuck = f"changefeed position stuck at {since}: {problem}"
        log.error(
            "changefeed_position_stuck",
            position=since,
            problem=problem,
            rules=self._reader.dialect.rules,
            fix="stop syncd, check the primary, then run: syncd run --resync",
        )

    async def _sleep(self, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await self._stop.wait()
