"""The small interface sources use to hand operations to the pipeline.

The wrapper, the changefeed reader, backfill and repair depend on this
protocol, not on the :class:`~syncd.service.replicator.Replicator` that
implements it: sources sit below the service that wires them, and never reach
into the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from syncd.keys import KeyRule
from syncd.metrics import Metrics
from syncd.sink.operation import Operation
from syncd.surreal.sdkvalues import from_sdk


class Intake(Protocol):
    """What a source may do with the pipeline."""

    metrics: Metrics
    keys: KeyRule

    def capture(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        source: str = "wrapper",
        copy: Callable[[Any], Any] = from_sdk,
    ) -> int:
        """Enqueue the records the primary returned (copied, as syncd's values); return how many."""
        ...

    def enqueue(self, ops: Iterable[Operation]) -> None:
        """Enqueue ready-made operations, in order."""
        ...

    # Named as the public contract names it; the deadline is applied inside.
    async def flush(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        """Wait until everything enqueued so far is applied or dead-lettered."""
        ...

    def room(self) -> int:
        """How many more operations fit before the queue spills to disk."""
        ...

    def count_uncaptured(self, reason: str) -> None:
        """Count a write whose records could not be captured."""
        ...

    def schema_changed(self) -> None:
        """The primary's definitions may have changed (a ``DEFINE`` went through)."""
        ...
