"""Racing writes to one record: when the order of their answers may not be the commit order.

Two tasks of one application writing the same record are captured in the
order their answers reach Python, which is not always the order the primary
committed them; capturing the older answer last would leave the secondary
stale for good. Rules of this file (pure: no I/O, no clocks):

- every wrapped write takes a *ticket* (a tick of a counter) before it is
  sent, and gives it back when its answer is in;
- capturing a record bumps the counter and remembers the tick per record id;
- a record is *ambiguous* for a write when another capture of the same id
  happened after that write's ticket was taken, i.e. while it was in flight:
  then the two commits may be in either order. The wrapper reads the record
  back from the primary after its answer (a state at least as new as both
  commits) and captures that, under the same rule, until no write raced;
- a write whose answer came with no capture of its id in between is in
  order: every other write to that id either committed before it was sent,
  or will find this capture inside its own flight and read back itself.

Memory: ticks older than the oldest write still in flight can no longer make
anything ambiguous and are forgotten.
"""

from __future__ import annotations

from syncd.pipeline.watermark import Watermark

__all__ = ["RaceGuard"]

_PRUNE_EVERY = 4096


class RaceGuard:
    """Finds captured records whose writes raced with another write to the same id."""

    def __init__(self) -> None:
        self._tick = 0
        self._last: dict[str, int] = {}
        self._in_flight = Watermark()
        self._since_prune = 0

    def begin(self) -> int:
        """A ticket for a write about to be sent."""
        ticket = self._tick
        self._in_flight.add(ticket)
        return ticket

    def end(self, ticket: int) -> None:
        """The write holding ``ticket`` has its answer (or failed)."""
        self._in_flight.finish(ticket)

    def captured(self, record_id: str, ticket: int) -> bool:
        """Record a capture of ``record_id`` by the write holding ``ticket``.

        Returns whether it is ambiguous (another capture of that id happened
        while this write was in flight).
        """
        self._tick += 1
        last = self._last.get(record_id)
        self._last[record_id] = self._tick
        self._since_prune += 1
        if self._since_prune >= _PRUNE_EVERY:
            self._prune()
        return last is not None and last > ticket

    def _prune(self) -> None:
        self._since_prune = 0
        oldest = self._in_flight.low()
        if oldest is None:
            self._last.clear()
            return
        self._last = {rid: tick for rid, tick in self._last.items() if tick > oldest}

    def __len__(self) -> int:
        """How many record ids are remembered (bounded by the writes in flight)."""
        return len(self._last)
