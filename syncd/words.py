"""Words for people: counts with their nouns, times as "ago" and as local dates."""

from __future__ import annotations

import time
from datetime import datetime

from syncd.durations import format_duration

__all__ = ["ago", "at", "plural"]


def ago(timestamp: float | None, now: float | None = None) -> str:
    """``"3m12s ago"`` for a unix time (whole seconds), ``"-"`` for none."""
    if timestamp is None:
        return "-"
    seconds = max(0, round((time.time() if now is None else now) - timestamp))
    return "just now" if seconds == 0 else f"{format_duration(seconds)} ago"


def at(timestamp: float | None) -> str:
    """Local date and time of a unix time, to the second; ``"-"`` for none."""
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def plural(count: int, noun: str) -> str:
    """A count and its noun: ``"1 record"``, ``"2 records"``, ``"3 entries"``."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"
