"""Words for people: counts with their nouns, "ago", local times."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from syncd.words import ago, at, plural


@pytest.mark.parametrize(
    ("count", "noun", "text"),
    [(1, "record", "1 record"), (0, "record", "0 records"), (2, "record", "2 records"),
     (3, "entry", "3 entries"), (1, "entry", "1 entry")],
)  # fmt: skip
def test_plural(count: int, noun: str, text: str) -> None:
    assert plural(count, noun) == text


@pytest.mark.parametrize(
    ("then", "now", "text"),
    [(None, 0.0, "-"), (100.0, 100.0, "just now"), (100.0, 100.4, "just now"),
     (100.0, 292.0, "3m12s ago"), (200.0, 100.0, "just now"), (0.0, 90061.0, "1d1h1m1s ago")],
)  # fmt: skip
def test_ago(then: float | None, now: float, text: str) -> None:
    assert ago(then, now) == text


def test_ago_reads_the_clock_when_not_given_one() -> None:
    assert ago(time.time() - 3600) in ("1h ago", "1h1s ago")


def test_at_is_the_local_time_to_the_second() -> None:
    assert at(None) == "-"
    stamp = 1_795_390_000.75
    assert at(stamp) == datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")
    assert len(at(stamp)) == 19
