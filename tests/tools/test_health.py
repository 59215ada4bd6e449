"""``syncd status``'s verdict, from the mapping gather() returns (pure: no daemon, no files)."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.config import Config
from syncd.tools.health import assess, refusal

CONFIG = Config.from_mapping({"secondary_url": "ws://archive:8000/rpc"})


def daemon(**changes: Any) -> dict[str, Any]:
    """A healthy daemon's status, with ``changes``."""
    info: dict[str, Any] = {
        "daemon_running": True,
        "endpoint": "http://127.0.0.1:9464/status",
        "ready": {"ok": True, "reason": "ready"},
        "secondary": {"up": True, "since": 0.0, "last_error": "", "failure": None},
        "primary": {"up": True, "since": 0.0, "failure": None},
        "lag_seconds": 0.2,
        "dead_letters": 0,
        "rates": {"dead_lettered_per_second": 0.0, "window_seconds": 60},
        "checkpoint": {"position": 7, "saved_at": 0.0, "backfill": None},
    }
    info.update(changes)
    return info


def test_healthy() -> None:
    health = assess(daemon(), CONFIG)
    assert (health.state, health.reasons, health.exit_code) == ("healthy", [], 0)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"secondary": {"up": False, "last_error": "ConnectionRefusedError", "failure": "x"}},
            "secondary down: ConnectionRefusedError",
        ),
        ({"primary": {"up": False, "failure": "timeout"}}, "primary down: timeout"),
        ({"lag_seconds": 61.0}, "lag 61.0s over status_lag_threshold (60s)"),
        (
            {"dead_letters": 3, "rates": {"dead_lettered_per_second": 0.05}},
            "dead letters growing: 3 in the file, +0.05/s",
        ),
        ({"dead_letters": None}, "dead-letter file unreadable"),
        ({"checkpoint": {"position": None, "backfill": True}}, "re-sync pending"),
        ({"checkpoint": {"error": "bad JSON"}}, "checkpoint unreadable: bad JSON"),
        ({"ready": {"ok": False, "reason": "starting"}}, "not ready: starting"),
        (
            {"secondary": {"up": True, "paused": True, "paused_since": 0.0}},
            "secondary paused since",
        ),
    ],
)
def test_degraded(changes: dict[str, Any], reason: str) -> None:
    health = assess(daemon(**changes), CONFIG)
    assert (health.state, health.exit_code) == ("degraded", 1)
    assert len(health.reasons) == 1 and health.reasons[0].startswith(reason), health.reasons


def test_dead_letters_present_but_not_growing_are_not_a_degradation() -> None:
    assert assess(daemon(dead_letters=5), CONFIG).state == "healthy"


def test_the_lag_threshold_is_configurable() -> None:
    strict = Config.from_mapping({**CONFIG.model_dump(), "status_lag_threshold": "100ms"})
    assert assess(daemon(), strict).reasons == ["lag 0.2s over status_lag_threshold (0.1s)"]


def test_no_daemon_is_unknown_and_says_what_the_state_shows() -> None:
    info = {
        "daemon_running": False,
        "note": "no daemon answered at http://127.0.0.1:9464/status: Connection refused",
        "spool_depth": 5,
        "dead_letters": 2,
        "checkpoint": {"backfill": True},
    }
    health = assess(info, CONFIG)
    assert (health.state, health.exit_code) == ("unknown", 3)
    assert health.reasons == [
        info["note"],
        "5 operations waiting in the spool",
        "2 dead letters",
        "a backfill was in progress",
    ]
    assert assess({"daemon_running": False}, CONFIG).reasons == ["no daemon answered"]


def test_refused_credentials_are_bad_input() -> None:
    assert refusal(daemon()) is None
    line = refusal(daemon(secondary={"up": False, "failure": "auth"}))
    assert line == (
        "the secondary refuses the configured credentials (reported by "
        "http://127.0.0.1:9464/status); check secondary_user and secondary_pass"
    )
    assert refusal(daemon(primary={"up": False, "failure": "auth"})) is not None


def test_a_pause_seen_in_the_state_dir_is_a_note_of_the_unknown() -> None:
    info = {
        "daemon_running": False,
        "note": "no daemon answered",
        "secondary": {"up": None, "paused": True, "paused_since": 0.0},
    }
    health = assess(info, CONFIG)
    assert health.state == "unknown"
    assert any(r.startswith("the secondary is paused since") for r in health.reasons)


TWO = Config.from_mapping(
    {
        "secondaries": [
            {"name": "archive", "url": "ws://archive:8000/rpc", "priority": 1},
            {"name": "analytics", "url": "ws://analytics:8000/rpc", "priority": 2},
        ]
    }
)


def each(**changes: dict[str, Any]) -> list[dict[str, Any]]:
    """Both secondaries up and idle, with per-name ``changes``."""
    base = {"up": True, "paused": False, "lag_seconds": 0.1, "dead_letters": 0, "joining": False}
    return [{"name": n, **base, **changes.get(n, {})} for n in ("archive", "analytics")]


def test_every_reason_names_its_secondary() -> None:
    listed = each(
        archive={"paused": True, "paused_since": 0.0, "lag_seconds": 90.0},
        analytics={"up": False, "last_error": "timed out", "joining": True},
    )
    health = assess(daemon(secondaries=listed, lag_seconds=90.0), TWO)
    assert health.state == "degraded"
    assert health.reasons[0] == "secondary analytics down: timed out"
    assert health.reasons[1].startswith("secondary archive paused since ")
    assert health.reasons[1].endswith("(syncd resume --secondary archive)")
    assert health.reasons[2:] == [
        "secondary archive lag 90.0s over status_lag_threshold (60s)",
        "secondary analytics joining: a backfill is bringing it up to date",
    ]
    assert assess(daemon(secondaries=each()), TWO).state == "healthy"


def test_growing_dead_letters_name_the_secondaries_holding_them() -> None:
    listed = each(analytics={"dead_letters": 3})
    info = daemon(secondaries=listed, dead_letters=3, rates={"dead_lettered_per_second": 0.1})
    assert assess(info, TWO).reasons == [
        "dead letters growing: 3 in the files (analytics 3), +0.10/s"
    ]
    unreadable = each(archive={"dead_letters": None})
    assert assess(daemon(secondaries=unreadable), TWO).reasons == [
        "dead-letter file of archive unreadable"
    ]


def test_a_named_secondary_refusing_credentials_is_bad_input() -> None:
    listed = each(analytics={"up": False, "failure": "auth"})
    line = refusal(daemon(secondaries=listed))
    assert line is not None and line.startswith("secondary analytics refuses the configured")
    assert line.endswith("(or SYNCD_SECONDARIES_ANALYTICS_PASS)")
