"""``syncd status``'s verdict: healthy, degraded or unknown, with the reasons, as an exit code.

Scriptable the way ``systemctl is-active`` is::

    0  healthy    a daemon answered, and nothing below is wrong
    1  degraded   a daemon answered, and: a database is down, a secondary is
                  paused (syncd pause), a secondary's lag is over
                  status_lag_threshold, dead letters are present and growing,
                  a re-sync (backfill) is pending or a secondary is joining,
                  or it is not ready
    2  bad input  the config is invalid, or a database refuses its credentials
                  (what the daemon reports): one line, no status
    3  unknown    no daemon answered: the state directory alone cannot tell
                  whether replication runs (what it shows is in the reasons)

Every reason about a secondary names it ("secondary archive down: ..."); the
one secondary of the flat ``secondary_*`` keys keeps the words it always had
("secondary down: ...", "lag ..."). Dead letters count as a degradation only
while they grow (entries already in a file are an operator's backlog, not a
failing replication); the reason names the secondaries holding them.

Pure: it reads the mapping :func:`syncd.tools.status.gather` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syncd.config import Config
from syncd.config.secondaries import FLAT_NAME, password_variable
from syncd.tools.targets import label, resume_hint
from syncd.words import at

__all__ = ["EXIT_CODES", "Health", "assess", "refusal", "secondaries"]

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


def secondaries(info: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Each secondary's part of ``info`` (older daemons: from ``secondary``)."""
    listed = info.get("secondaries")
    if isinstance(listed, list) and listed:
        return [_mapping(entry) for entry in listed]
    one = dict(_mapping(info.get("secondary")))
    one.setdefault("name", FLAT_NAME)
    one.setdefault("lag_seconds", info.get("lag_seconds"))
    return [one]


def _prefix(name: str) -> str:
    """What starts a reason about ``name`` (the flat secondary's keep their old words)."""
    return "" if name == FLAT_NAME else f"secondary {name} "


def refusal(info: Mapping[str, Any]) -> str | None:
    """The line to exit 2 with when the daemon reports refused credentials, else None."""
    where = info.get("endpoint") or "the daemon"
    for secondary in secondaries(info):
        if secondary.get("failure") != "auth":
            continue
        name = str(secondary.get("name") or FLAT_NAME)
        if name == FLAT_NAME:
            check = "check secondary_user and secondary_pass"
        else:
            check = f"check its user and pass in secondaries: (or {password_variable(name)})"
        return f"{label(name)} refuses the configured credentials (reported by {where}); {check}"
    if _mapping(info.get("primary")).get("failure") == "auth":
        return (
            f"the primary refuses the configured credentials (reported by {where}); "
            "check primary_user and primary_pass"
        )
    return None


def assess(info: Mapping[str, Any], config: Config) -> Health:
    """The verdict on ``info`` (from :func:`syncd.tools.status.gather`) under ``config``."""
    if not info.get("daemon_running"):
        return Health("unknown", [info.get("note") or "no daemon answered", *_state_notes(info)])
    reasons: list[str] = []
    each = [(str(s.get("name") or FLAT_NAME), s) for s in secondaries(info)]
    for name, state in each:
        if state.get("up") is False:
            why = state.get("last_error") or state.get("failure") or "unreachable"
            who = "secondary" if name == FLAT_NAME else f"secondary {name}"
            reasons.append(f"{who} down: {why}")
    primary = _mapping(info.get("primary"))
    if primary.get("up") is False:
        why = primary.get("last_error") or primary.get("failure") or "unreachable"
        reasons.append(f"primary down: {why}")
    for name, state in each:
        if state.get("paused"):
            # Deliberate, but nothing reaches it: scripts must not read "healthy".
            who = "secondary" if name == FLAT_NAME else f"secondary {name}"
            since = at(state.get("paused_since"))
            reasons.append(f"{who} paused since {since} ({resume_hint(name)})")
    threshold = config.status_lag_threshold
    for name, state in each:
        lag = state.get("lag_seconds")
        if isinstance(lag, int | float) and lag > threshold:
            reasons.append(
                f"{_prefix(name)}lag {lag:.1f}s over status_lag_threshold ({threshold:g}s)"
            )
    reasons += _dead_letter_reasons(info, each)
    for name, state in each:
        if state.get("joining"):
            reasons.append(f"secondary {name} joining: a backfill is bringing it up to date")
    if _mapping(info.get("checkpoint")).get("backfill"):
        reasons.append("re-sync pending: a backfill is in progress")
    if _mapping(info.get("checkpoint")).get("error"):
        reasons.append(f"checkpoint unreadable: {info['checkpoint']['error']}")
    ready = _mapping(info.get("ready"))
    if ready.get("ok") is False and not reasons:
        reasons.append(f"not ready: {ready.get('reason') or 'unknown'}")
    return Health("degraded" if reasons else "healthy", reasons)


def _dead_letter_reasons(
    info: Mapping[str, Any], each: list[tuple[str, Mapping[str, Any]]]
) -> list[str]:
    dead = info.get("dead_letters")
    if dead is None:
        return ["dead-letter file unreadable"]
    unreadable = [n for n, s in each if "dead_letters" in s and s["dead_letters"] is None]
    if len(each) > 1 and unreadable:
        return [f"dead-letter file of {', '.join(unreadable)} unreadable"]
    growing = _mapping(info.get("rates")).get("dead_lettered_per_second")
    if not (dead and isinstance(growing, int | float) and growing > 0):
        return []
    if len(each) == 1:
        return [f"dead letters growing: {dead} in the file, +{growing:.2f}/s"]
    holding = ", ".join(f"{n} {s['dead_letters']}" for n, s in each if s.get("dead_letters"))
    return [f"dead letters growing: {dead} in the files ({holding}), +{growing:.2f}/s"]


def _counted(info: Mapping[str, Any], key: str) -> str:
    """`` (archive 3, analytics 2)`` when several secondaries hold some of ``key``."""
    each = [s for s in secondaries(info) if s.get(key)]
    if len(secondaries(info)) < 2 or not each:
        return ""
    return " (" + ", ".join(f"{s.get('name')} {s[key]}" for s in each) + ")"


def _state_notes(info: Mapping[str, Any]) -> list[str]:
    """What the state directory shows, for an operator reading an "unknown"."""
    notes = []
    if info.get("spool_depth"):
        notes.append(
            f"{info['spool_depth']} operations waiting in the spool{_counted(info, 'spool_depth')}"
        )
    if info.get("dead_letters"):
        notes.append(f"{info['dead_letters']} dead letters{_counted(info, 'dead_letters')}")
    errors: list[str] = []
    for secondary in secondaries(info):
        name = str(secondary.get("name") or FLAT_NAME)
        if secondary.get("paused"):
            notes.append(f"{label(name)} is paused since {at(secondary.get('paused_since'))}")
        elif secondary.get("pause_error") and secondary["pause_error"] not in errors:
            errors.append(str(secondary["pause_error"]))  # one file: said once
    notes += errors
    if _mapping(info.get("checkpoint")).get("backfill"):
        notes.append("a backfill was in progress")
    return notes
