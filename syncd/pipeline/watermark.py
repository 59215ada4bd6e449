"""Low watermark over positions: the smallest position still unfinished.

Used twice: ``Replicator.flush`` waits until every operation enqueued before
the call has finished (applied, dead-lettered or superseded), and the daemon's
checkpoint may only advance to a changefeed position when everything at or
below it has finished — not to the newest position any worker has seen.

Several operations may share a position (a transaction is one changefeed
entry), so positions are counted. Pure: no I/O, no clocks.
"""

from __future__ import annotations

import heapq


class Watermark:
    """Tracks unfinished positions; ``low()`` is the smallest of them."""

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self._heap: list[int] = []

    def __len__(self) -> int:
        """Number of unfinished operations."""
        return sum(self._counts.values())

    def add(self, position: int) -> None:
        """Record one more unfinished operation at ``position``."""
        count = self._counts.get(position, 0)
        if count == 0:
            heapq.heappush(self._heap, position)
        self._counts[position] = count + 1

    def finish(self, position: int) -> None:
        """Record that one operation at ``position`` finished."""
        count = self._counts.get(position, 0)
        if count <= 0:
            raise KeyError(f"position {position} has no unfinished operation")
        if count == 1:
            del self._counts[position]
        else:
            self._counts[position] = count - 1

    def low(self) -> int | None:
        """The smallest unfinished position, or ``None`` when all have finished."""
        # Lazy deletion: finished positions stay in the heap until they surface.
        while self._heap and self._heap[0] not in self._counts:
            heapq.heappop(self._heap)
        return self._heap[0] if self._heap else None

    def safe_through(self, newest_seen: int) -> int:
        """The highest position whose every operation, and every earlier one, finished.

        ``newest_seen`` is the newest position handed out so far; with nothing
        unfinished, everything up to it is safe.
        """
        low = self.low()
        return newest_seen if low is None else low - 1
