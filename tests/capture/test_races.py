"""The race rule: a capture is ambiguous only if another capture of its id happened in flight."""

from __future__ import annotations

from syncd.capture.races import RaceGuard


def test_a_lone_write_is_in_order() -> None:
    guard = RaceGuard()
    ticket = guard.begin()
    guard.end(ticket)
    assert not guard.captured("t:1", ticket)


def test_sequential_writes_to_one_record_are_in_order() -> None:
    guard = RaceGuard()
    for _ in range(3):
        ticket = guard.begin()
        guard.end(ticket)
        assert not guard.captured("t:1", ticket)


def test_a_capture_of_the_same_id_during_the_flight_makes_it_ambiguous() -> None:
    guard = RaceGuard()
    slow, fast = guard.begin(), guard.begin()
    guard.end(fast)
    assert not guard.captured("t:1", fast)  # answered first, nothing captured meanwhile
    guard.end(slow)
    assert guard.captured("t:1", slow)  # its commit may be before or after fast's


def test_other_ids_do_not_interfere() -> None:
    guard = RaceGuard()
    slow, fast = guard.begin(), guard.begin()
    guard.end(fast)
    guard.captured("t:2", fast)
    guard.end(slow)
    assert not guard.captured("t:1", slow)


def test_a_write_sent_after_the_other_capture_is_in_order() -> None:
    guard = RaceGuard()
    first = guard.begin()
    guard.end(first)
    guard.captured("t:1", first)
    second = guard.begin()
    guard.end(second)
    assert not guard.captured("t:1", second)


def test_memory_is_bounded_by_the_writes_in_flight() -> None:
    guard = RaceGuard()
    for i in range(10_000):
        ticket = guard.begin()
        guard.end(ticket)
        guard.captured(f"t:{i}", ticket)
    assert len(guard) < 5000  # pruned: nothing was in flight


def test_an_old_write_still_in_flight_keeps_what_it_may_race_with() -> None:
    guard = RaceGuard()
    old = guard.begin()
    for i in range(10_000):
        ticket = guard.begin()
        guard.end(ticket)
        guard.captured(f"t:{i}", ticket)
    guard.end(old)
    assert guard.captured("t:5", old)  # captured while `old` was in flight
