"""The demo's outage bookkeeping (pure): peaks, drains, the figures of the summary."""

from __future__ import annotations

from syncd.dev.demoplan import DRAINED, Outages
from syncd.dev.demoview import SecondarySample


def s(
    name: str,
    *,
    up: bool = True,
    paused: bool = False,
    queue: int = 0,
    spool: int = 0,
    applied: int = 0,
) -> SecondarySample:
    return SecondarySample(name, up, paused, 0.0, queue, spool, applied)


def test_an_outage_keeps_its_peak_and_drains_only_once_up_unpaused_and_nearly_empty() -> None:
    outages = Outages()
    outages.begin("killed", 1.0, s("archive", applied=100))
    assert outages.observe(1.5, (s("archive", up=False, queue=500, spool=300),)) == []
    assert outages.observe(2.0, (s("archive", up=False, queue=500, spool=700),)) == []
    # Back, but the backlog has not drained: not yet.
    outages.end(3.0, s("archive", up=False, queue=500, spool=700, applied=100))
    assert outages.observe(3.5, (s("archive", queue=500, spool=10),)) == []
    assert not outages.all_drained
    messages = outages.observe(4.0, (s("archive", queue=DRAINED - 1),))
    assert messages == [
        "archive drained 1.0s after the restart "
        "(peak backlog: 1200 operations, 700 of them on disk)"
    ]
    assert outages.all_drained
    assert outages.observe(5.0, (s("archive", queue=2000, spool=2000),)) == []  # over: kept
    outage = outages.by_name["archive"]
    assert outage.to_json() == {
        "name": "archive",
        "outage": "killed",
        "outage_seconds": 2.0,
        "applied_during_outage": 0,
        "peak_backlog": 1200,
        "peak_spool": 700,
        "drain_seconds": 1.0,
    }


def test_a_paused_secondary_with_an_empty_queue_has_not_drained_until_resumed() -> None:
    outages = Outages()
    outages.begin("paused", 1.0, s("analytics", paused=True, applied=50))
    # Nothing waiting yet, but still paused: not drained, and not ended either.
    assert outages.observe(1.1, (s("analytics", paused=True),)) == []
    outages.end(2.0, s("analytics", paused=True, queue=300, applied=53))
    assert outages.observe(2.1, (s("analytics", paused=True),)) == []  # still paused
    assert outages.observe(2.5, (s("analytics"),)) == [
        "analytics drained 0.5s after the resume (peak backlog: 300 operations, 0 of them on disk)"
    ]
    assert outages.by_name["analytics"].applied_during == 3


def test_secondaries_without_an_outage_are_ignored() -> None:
    outages = Outages()
    assert outages.observe(1.0, (s("other", queue=999),)) == []
    assert outages.all_drained and outages.by_name == {}
