"""Rates of the last minute from counter snapshots: pure, no clock of its own.

The replicator has no task that ticks every second, and does not need one:
whoever asks for a status (``/status``, ``syncd status``) adds a snapshot of
the counters, and the rate is the difference between now and a snapshot about
a window ago, divided by the time between them. Rules of this file:

- snapshots are kept at least ``min_spacing`` apart, and only as far back as
  one snapshot older than the window (the baseline for the next question), so
  the ring stays small however often it is asked;
- the baseline is the oldest snapshot inside the window; when none is older
  than ``min_spacing`` (nobody asked for a while), the newest one before the
  window: the answer then covers a longer span, and says so (``seconds``);
- a counter that went down (a restart) counts as zero, never as negative.

Thread-safe: the HTTP endpoint asks from its own threads.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_WINDOW", "RateSampler", "Rates"]

#: Seconds the rates look back over.
DEFAULT_WINDOW = 60.0


@dataclass(frozen=True)
class Rates:
    """Per-second rates of each counter, and the span they were measured over."""

    per_second: dict[str, float]
    seconds: float  # 0.0: no baseline yet, the rates are unknown

    def as_dict(self) -> dict[str, object]:
        """``{"applied_per_second": ..., ..., "window_seconds": ...}``; ``None`` when unknown."""
        known = self.seconds > 0
        out: dict[str, object] = {
            f"{name}_per_second": (round(rate, 3) if known else None)
            for name, rate in self.per_second.items()
        }
        out["window_seconds"] = round(self.seconds, 3)
        return out


class RateSampler:
    """A ring of timestamped counter snapshots answering "how fast, lately?"."""

    def __init__(self, window: float = DEFAULT_WINDOW, min_spacing: float = 1.0) -> None:
        """Look back ``window`` seconds; keep snapshots at least ``min_spacing`` apart."""
        if window <= 0 or min_spacing <= 0 or min_spacing > window:
            raise ValueError("need 0 < min_spacing <= window")
        self.window = window
        self.min_spacing = min_spacing
        self._ring: deque[tuple[float, dict[str, float]]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Snapshots held."""
        return len(self._ring)

    def observe(self, now: float, values: Mapping[str, float]) -> Rates:
        """Record ``values`` (monotonic counters) at ``now`` and return the current rates.

        ``now`` is a monotonic clock reading in seconds; the caller owns the clock.
        """
        current = {name: float(value) for name, value in values.items()}
        with self._lock:
            rates = self._rates(now, current)
            if not self._ring or now - self._ring[-1][0] >= self.min_spacing:
                self._ring.append((now, current))
            self._trim(now)
        return rates

    def _rates(self, now: float, current: dict[str, float]) -> Rates:
        baseline = self._baseline(now)
        if baseline is None:
            return Rates(dict.fromkeys(current, 0.0), 0.0)
        then, old = baseline
        elapsed = now - then
        return Rates(
            {
                name: max(0.0, value - old.get(name, 0.0)) / elapsed
                for name, value in current.items()
            },
            elapsed,
        )

    def _baseline(self, now: float) -> tuple[float, dict[str, float]] | None:
        start = now - self.window
        inside = [s for s in self._ring if s[0] >= start and now - s[0] >= self.min_spacing]
        if inside:
            return inside[0]
        before = [s for s in self._ring if s[0] < start]
        return before[-1] if before else None

    def _trim(self, now: float) -> None:
        # Keep one snapshot older than the window: it is the baseline when
        # nothing inside the window is old enough.
        start = now - self.window
        while len(self._ring) > 1 and self._ring[1][0] < start:
            self._ring.popleft()
