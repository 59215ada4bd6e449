"""``syncd status``'s verdict: healthy, degraded or unknown, with the reasons, as an exit code.

Scriptable the way ``systemctl is-active`` is::

    0  healthy    a daemon answered, and nothing below is wrong
    1  degraded   a daemon answered, and: a database is down, the secondary is
                  paused (syncd pause), the lag is over status_lag_threshold,
                  dead letters are present and growing, a re-sync (backfill)
                  is pending, or it is not ready
    2  bad input  the config is invalid, or a database refuses its credentials
                  (what the daemon reports): one line, no status
    3  unknown    no daemon answered: the state directory alone cannot tell
                  whether replication runs (what it shows is in the reasons)

Pure: it reads the mapping :func:`syncd.tools.status.gather` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syncd.config import Config
from syncd.words import at

__all__ = ["EXIT_CODES", "Health", "assess", "refusal"]

#: Exit status of ``syncd status`` for each verdict.
EXIT_CODES = {"healthy": 0, "degraded": 1, "unknown": 3}


@dataclass(frozen=True)
class Health:
    """A verdict and why."""

    state: str  # "healthy" | "degraded" | "unknown"
    reasons: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The exit status for this verdict (see the module docstring)."""
        return EXIT_CODES[self.state]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def refusal(info: Mapping[str, Any]) -> str | None:
    """The line to exit 2 with when the daemon reports refused credentials, else None."""
    for role in ("secondary", "primary"):
        if _mapping(info.get(role)).get("failure") == "auth":
            where = info.get("endpoint") or "the daemon"
            return (
                f"the {role} refuses the configured credentials (reported by {where}); "
                f"check {role}_user and {role}_pass"
            )
    return None


def assess(info: Mapping[str, Any], config: Config) -> Health:
    """The verdict on ``info`` (from :func:`syncd.tools.status.gather`) under ``config``."""
    if not info.get("daemon_running"):
        return Health("unknown", [info.get("note") or "no daemon answered", *_state_notes(info)])
    reasons: list[str] = []
    for role in ("secondary", "primary"):
        state = _mapping(info.get(role))
        if state.get("up") is False:
            why = state.get("last_error") or state.get("failure") or "unreachable"
            reasons.append(f"{role} down: {why}")
    secondary = _mapping(info.get("secondary"))
    if secondary.get("paused"):
        # Deliberate, but nothing reaches the secondary: scripts must not read "healthy".
        reasons.append(f"secondary paused since {at(secondary.get('paused_since'))} (syncd resume)")
    lag = info.get("lag_seconds")
    if isinstance(lag, int | float) and lag > config.status_lag_threshold:
        reasons.append(
            f"lag {lag:.1f}s over status_lag_threshold ({config.status_lag_threshold:g}s)"
        )
    dead = info.get("dead_letters")
    growing = _mapping(info.get("rates")).get("dead_lettered_per_second")
    if dead and isinstance(growing, int | float) and growing > 0:
        reasons.append(f"dead letters growing: {dead} in the file, +{growing:.2f}/s")
    elif dead is None:
        reasons.append("dead-letter file unreadable")
    if _mapping(info.get("checkpoint")).get("backfill"):
        reasons.append("re-sync pending: a backfill is in progress")
    if _mapping(info.get("checkpoint")).get("error"):
        reasons.append(f"checkpoint unreadable: {info['checkpoint']['error']}")
    ready = _mapping(info.get("ready"))
    if ready.get("ok") is False and not reasons:
        reasons.append(f"not ready: {ready.get('reason') or 'unknown'}")
    return Health("degraded" if reasons else "healthy", reasons)


def _state_notes(info: Mapping[str, Any]) -> list[str]:
    """What the state directory shows, for an operator reading an "unknown"."""
    notes = []
    if info.get("spool_depth"):
        notes.append(f"{info['spool_depth']} operations waiting in the spool")
    if info.get("dead_letters"):
        notes.append(f"{info['dead_letters']} dead letters")
    secondary = _mapping(info.get("secondary"))
    if secondary.get("paused"):
        notes.append(f"the secondary is paused since {at(secondary.get('paused_since'))}")
    elif secondary.get("pause_error"):
        notes.append(str(secondary["pause_error"]))
    if _mapping(info.get("checkpoint")).get("backfill"):
        notes.append("a backfill was in progress")
    return notes
