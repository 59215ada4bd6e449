"""The demo's figures as plain lines: one for the writes, one per secondary."""

from __future__ import annotations

from syncd.dev.demoview import Sample, SecondarySample

STATUS = {
    "name": "archive",
    "priority": 1,
    "up": False,
    "paused": True,
    "lag_seconds": 2.5,
    "queue_depth": 500,
    "spool_depth": 120,
    "applied": 1800.0,
    "dead_letters": 0.0,
}


def test_a_secondary_is_read_from_its_status_entry_down_winning_over_paused() -> None:
    s = SecondarySample.from_status(STATUS)
    assert (s.state, s.backlog, s.applied) == ("DOWN", 620, 1800)
    assert SecondarySample.from_status({**STATUS, "up": True}).state == "PAUSED"
    assert SecondarySample.from_status({**STATUS, "up": True, "paused": False}).state == "up"


def test_plain_lines_have_the_writes_then_a_line_per_secondary() -> None:
    archive = SecondarySample.from_status(STATUS)
    analytics = SecondarySample.from_status({**STATUS, "name": "analytics", "up": True})
    lines = Sample(6.04, "writing", 1815, 298.4, (archive, analytics)).lines()
    assert lines == [
        "  6.0s  writes   1815 ( 298/s)  [writing]",
        "        archive    DOWN    applied   1800  queue   500  spool   120  lag  2.50s",
        "        analytics  PAUSED  applied   1800  queue   500  spool   120  lag  2.50s",
    ]
    assert Sample(0.0, "writing", 0, 0.0, (archive,)).table("t").row_count == 1
