"""What ``syncd demo`` shows while it runs: a live table on a terminal, plain lines elsewhere.

On a terminal a rich ``Live`` view redraws one table four times a second,
one row per secondary, and the demo's events print above it. Anywhere else
(CI, a pipe, a log file) there is nothing to redraw, so the same figures are
printed once a second as plain lines (the writes, then one line per
secondary), and the events as lines between them: readable in a log, free of
escape codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["DemoView", "Sample", "SecondarySample"]


@dataclass(frozen=True)
class SecondarySample:
    """One secondary's figures at one instant, as ``status()["secondaries"]`` gives them."""

    name: str
    up: bool
    paused: bool
    lag: float
    queue: int
    spool: int
    applied: int

    @classmethod
    def from_status(cls, entry: Mapping[str, Any]) -> SecondarySample:
        """From one entry of ``Replicator.status()["secondaries"]``."""
        return cls(
            name=str(entry["name"]),
            up=bool(entry["up"]),
            paused=bool(entry["paused"]),
            lag=float(entry["lag_seconds"]),
            queue=int(entry["queue_depth"]),
            spool=int(entry["spool_depth"]),
            applied=int(entry["applied"]),
        )

    @property
    def state(self) -> str:
        """``DOWN`` (unreachable), ``PAUSED`` or ``up``; down wins, as nothing applies then."""
        return "DOWN" if not self.up else "PAUSED" if self.paused else "up"

    @property
    def backlog(self) -> int:
        """Operations waiting for this secondary, in memory and on disk."""
        return self.queue + self.spool

    def line(self, width: int) -> str:
        """The plain one-line rendering, the name padded to ``width``."""
        return (
            f"        {self.name:<{width}}  {self.state:<6}  applied {self.applied:6d}  "
            f"queue {self.queue:5d}  spool {self.spool:5d}  lag {self.lag:5.2f}s"
        )


_STYLE = {"up": "green", "DOWN": "bold red", "PAUSED": "bold yellow"}


@dataclass(frozen=True)
class Sample:
    """The figures shown at one instant."""

    elapsed: float
    phase: str
    writes: int
    write_rate: float  # writes/s over the last interval
    secondaries: tuple[SecondarySample, ...]

    def lines(self) -> list[str]:
        """The plain rendering: the writes, then one line per secondary."""
        width = max((len(s.name) for s in self.secondaries), default=0)
        head = (
            f"{self.elapsed:5.1f}s  writes {self.writes:6d} ({self.write_rate:4.0f}/s)  "
            f"[{self.phase}]"
        )
        return [head, *(s.line(width) for s in self.secondaries)]

    def table(self, title: str) -> Table:
        """The live-view rendering: one row per secondary under the writes."""
        caption = f"{self.phase} — writes to the primary: {self.writes} ({self.write_rate:.0f}/s)"
        table = Table(title=f"{title}\n{caption}", title_justify="left", min_width=76)
        table.add_column("secondary", style="bold")
        table.add_column("state", min_width=6)  # no jump when PAUSED shows
        for column in ("applied", "queue (memory)", "spool (disk)", "lag"):
            table.add_column(column, justify="right")
        for s in self.secondaries:
            state = Text(s.state, _STYLE[s.state])
            table.add_row(
                s.name, state, str(s.applied), str(s.queue), str(s.spool), f"{s.lag:.2f}s"
            )
        return table


class DemoView:
    """Shows :class:`Sample` figures and event lines; use as a context manager."""

    def __init__(self, console: Console, title: str, *, line_interval: float = 1.0) -> None:
        """Live on a terminal, lines every ``line_interval`` seconds otherwise."""
        self.console = console
        self.title = title
        self.live = console.is_terminal
        self._line_interval = line_interval
        self._last_line = -line_interval
        self._last: Sample | None = None
        self._live: Live | None = None

    def __enter__(self) -> DemoView:
        """Start the live display (on a terminal)."""
        if self.live:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the live display, leaving the last table on screen."""
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None
        elif self._last is not None and exc_type is None:
            self._print(self._last)

    def event(self, message: str) -> None:
        """Print a line about something that happened (above the live table)."""
        stamp = f"{self._last.elapsed:5.1f}s  " if self._last is not None else ""
        self.console.print(Text(f"{stamp}>> {message}", style="bold"), soft_wrap=not self.live)

    def show(self, sample: Sample) -> None:
        """Update the figures (plain lines at most every ``line_interval`` seconds)."""
        self._last = sample
        if self._live is not None:
            self._live.update(sample.table(self.title))
        elif sample.elapsed - self._last_line >= self._line_interval:
            self._last_line = sample.elapsed
            self._print(sample)

    def _print(self, sample: Sample) -> None:
        for line in sample.lines():
            self.console.print(line, highlight=False, soft_wrap=True)
