"""Retry schedules. Pure: the caller sleeps, this module only does arithmetic.

Rules of this file:
- delays grow geometrically from ``initial`` and never exceed ``cap``;
- jitter ("equal jitter") keeps at least half of each delay, so a fleet of
  daemons restarted together spreads out without any of them hammering;
- randomness comes from a ``random.Random`` the caller passes, so tests are
  deterministic.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def exponential_backoff(initial: float, cap: float, factor: float = 2.0) -> Iterator[float]:
    """Yield ``initial, initial*factor, ...`` forever, each capped at ``cap``."""
    if initial <= 0 or cap <= 0 or factor < 1:
        raise ValueError("backoff needs initial > 0, cap > 0 and factor >= 1")
    delay = min(initial, cap)
    while True:
        yield delay
        delay = min(delay * factor, cap)


def with_jitter(delays: Iterator[float], rng: random.Random) -> Iterator[float]:
    """Apply equal jitter: each delay ``d`` becomes uniform in ``[d/2, d]``."""
    for delay in delays:
        yield delay / 2 + rng.uniform(0, delay / 2)


def retry_delay(attempt: int, interval: float, cap: float) -> float:
    """The wait before retry number ``attempt`` (1-based) of a rejected operation."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    return float(min(interval * (2 ** (attempt - 1)), cap))
