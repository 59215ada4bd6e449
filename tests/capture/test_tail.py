"""The tail's guard (pure): a position that does not move forward is never read again."""

from __future__ import annotations

from typing import Any

from syncd.capture.tail import check_progress
from syncd.surreal.dialect import dialect_for

V2 = dialect_for("surrealdb-2.3.10")
V3 = dialect_for("surrealdb-3.2.4")
MS = 1_795_000_000_000


def entries(*stamps: int) -> list[dict[str, Any]]:
    return [{"versionstamp": s, "changes": []} for s in stamps]


def test_2x_moves_to_the_next_sequence() -> None:
    assert check_progress(V2, 3 << 16, entries(3 << 16, 4 << 16)) == (5 << 16, None)


def test_3x_moves_past_the_newest_stamp() -> None:
    first, last = (MS << 16) | 1, ((MS + 5) << 16) | 2
    assert check_progress(V3, first, entries(first, last)) == (last + 1, None)


def test_an_entry_before_the_position_is_stuck_not_reapplied() -> None:
    # What reading a 3.x feed with 2.x positions looks like: the feed's start again.
    since = ((MS + 10) << 16) | 0
    after, problem = check_progress(V3, since, entries(MS << 16, (MS + 1) << 16))
    assert after == since
    assert problem is not None and "returned position" in problem


def test_2x_sequence_read_as_3x_positions_is_stuck() -> None:
    # The old bug: SINCE <sequence> on 3.x returns the whole feed from its start.
    after, problem = check_progress(V3, 5, entries(MS << 16))
    assert problem is None and after == (MS << 16) + 1  # forward: fine, it moves on
    after, problem = check_progress(V3, (MS << 16) + 1, entries(MS << 16))
    assert problem is not None  # the same range again: stuck, loudly


def test_positions_going_backwards_are_stuck() -> None:
    _, problem = check_progress(V3, MS << 16, entries((MS + 2) << 16, (MS + 1) << 16))
    assert problem is not None and "backwards" in problem
