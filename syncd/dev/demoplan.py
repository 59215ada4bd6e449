"""The demo's plan and its bookkeeping: when what happens, and what each outage cost.

Rules of this file (pure: no I/O, no anyio, no database):

- two secondaries: :data:`KILLED` is killed with SIGKILL and restarted,
  :data:`PAUSED` is paused and resumed; the two outages overlap, so for a
  while neither secondary is applied to;
- an :class:`Outage` runs from the kill (or pause) until its backlog has
  drained after the restart (or resume); its peak backlog is the largest
  queue + spool seen in between, sampled by the demo four times a second;
- "drained" means up, not paused and fewer than :data:`DRAINED` operations
  waiting: the ordinary in-flight handful, not zero, which a steady workload
  never shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syncd.dev.demoview import SecondarySample
from syncd.words import plural

__all__ = ["DRAINED", "KILLED", "PAUSED", "Outage", "Outages", "Timeline"]

#: The secondary the demo kills (priority 1: the first in merged reads).
KILLED = "archive"
#: The secondary the demo pauses (priority 2).
PAUSED = "analytics"
#: Fewer operations than this waiting for a secondary is "drained".
DRAINED = 50


@dataclass(frozen=True)
class Timeline:
    """When each step happens, in seconds from the start of the writes."""

    kill_at: float  # KILLED killed
    pause_at: float  # PAUSED paused (KILLED still down)
    restart_at: float  # KILLED restarted
    resume_at: float  # PAUSED resumed
    end_at: float  # writes stop

    @classmethod
    def for_duration(cls, duration: float) -> Timeline:
        """Kill at 20% of the run, pause at 35%, restart at 50%, resume at 70%.

        The last 30% lets both backlogs drain while the writes go on, so the
        drain is measured under load, as it happens in production.
        """
        d = duration
        return cls(
            kill_at=0.2 * d, pause_at=0.35 * d, restart_at=0.5 * d, resume_at=0.7 * d, end_at=d
        )


@dataclass
class Outage:
    """One secondary's outage: killed or paused, then back, then drained."""

    name: str
    how: str  # "killed" or "paused"
    began: float
    applied_before: int  # operations applied to it when the outage began
    ended: float | None = None
    applied_during: int | None = None  # applied between the start and the end
    drained: float | None = None
    peak_backlog: int = 0
    peak_spool: int = 0

    @property
    def back(self) -> str:
        """What ends it: a restart or a resume."""
        return "restart" if self.how == "killed" else "resume"

    @property
    def drain_seconds(self) -> float | None:
        """Seconds from the restart (resume) until the backlog had drained."""
        if self.ended is None or self.drained is None:
            return None
        return self.drained - self.ended

    def raise_peaks(self, now: SecondarySample) -> None:
        """Count ``now``'s backlog and spool into the peaks."""
        self.peak_backlog = max(self.peak_backlog, now.backlog)
        self.peak_spool = max(self.peak_spool, now.spool)

    def to_json(self) -> dict[str, Any]:
        """The figures, as the demo's summary line gives them."""
        took = self.drain_seconds
        return {
            "name": self.name,
            "outage": self.how,
            "outage_seconds": None if self.ended is None else round(self.ended - self.began, 2),
            "applied_during_outage": self.applied_during,
            "peak_backlog": self.peak_backlog,
            "peak_spool": self.peak_spool,
            "drain_seconds": None if took is None else round(took, 2),
        }


class Outages:
    """Every outage of the run, fed with samples; says when one has drained."""

    def __init__(self) -> None:
        """No outage yet."""
        self.by_name: dict[str, Outage] = {}

    def begin(self, how: str, at: float, now: SecondarySample) -> Outage:
        """Secondary ``now.name`` was just killed or paused."""
        outage = Outage(now.name, how, at, now.applied)
        outage.raise_peaks(now)
        self.by_name[now.name] = outage
        return outage

    def end(self, at: float, now: SecondarySample) -> Outage:
        """Secondary ``now.name`` was just restarted or resumed."""
        outage = self.by_name[now.name]
        outage.raise_peaks(now)
        outage.ended = at
        outage.applied_during = now.applied - outage.applied_before
        return outage

    def observe(self, at: float, secondaries: tuple[SecondarySample, ...]) -> list[str]:
        """Take a sample: raise the peaks; one message per outage that has just drained."""
        messages = []
        for s in secondaries:
            outage = self.by_name.get(s.name)
            if outage is None or outage.drained is not None:
                continue
            outage.raise_peaks(s)
            if outage.ended is not None and s.up and not s.paused and s.backlog < DRAINED:
                outage.drained = at
                messages.append(
                    f"{s.name} drained {at - outage.ended:.1f}s after the {outage.back} (peak "
                    f"backlog: {plural(outage.peak_backlog, 'operation')}, "
                    f"{outage.peak_spool} of them on disk)"
                )
        return messages

    @property
    def all_drained(self) -> bool:
        """Whether every outage has ended and drained."""
        return all(o.drained is not None for o in self.by_name.values())
