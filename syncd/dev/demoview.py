"""What ``syncd demo`` shows while it runs: a live table on a terminal, plain lines elsewhere.

On a terminal a rich ``Live`` view redraws one table four times a second and
the demo's events print above it. Anywhere else (CI, a pipe, a log file)
there is nothing to redraw, so the same figures are printed as one plain
line a second, and the events as lines between them: readable in a log,
free of escape codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["DemoView", "Sample"]


@dataclass(frozen=True)
class Sample:
    """The figures shown at one instant."""

    elapsed: float
    phase: str
    writes: int
    write_rate: float  # writes/s over the last interval
    applied: int
    queue: int
    spool: int
    lag: float
    secondary_up: bool

    def line(self) -> str:
        """The plain one-line rendering."""
        return (
            f"{self.elapsed:5.1f}s  writes {self.writes:6d} ({self.write_rate:4.0f}/s)  "
            f"applied {self.applied:6d}  queue {self.queue:5d}  spool {self.spool:5d}  "
            f"lag {self.lag:5.2f}s  secondary {'up' if self.secondary_up else 'DOWN'}  "
            f"[{self.phase}]"
        )

    def table(self, title: str) -> Table:
        """The live-view rendering."""
        table = Table(title=title, title_justify="left", show_header=False, min_width=60)
        table.add_column("what", style="bold")
        table.add_column("value")
        state = Text("up", "green") if self.secondary_up else Text("DOWN", "bold red")
        rows: list[tuple[str, str | Text]] = [
            ("phase", self.phase),
            ("writes to the primary", f"{self.writes}  ({self.write_rate:.0f}/s)"),
            ("applied on the secondary", str(self.applied)),
            ("queue (memory)", str(self.queue)),
            ("spool (disk)", str(self.spool)),
            ("lag", f"{self.lag:.2f}s"),
            ("secondary", state),
        ]
        for key, value in rows:
            table.add_row(key, value)
        return table


class DemoView:
    """Shows :class:`Sample` figures and event lines; use as a context manager."""

    def __init__(self, console: Console, title: str, *, line_interval: float = 1.0) -> None:
        """Live on a terminal, a line every ``line_interval`` seconds otherwise."""
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
            self.console.print(self._last.line(), highlight=False, soft_wrap=True)

    def event(self, message: str) -> None:
        """Print a line about something that happened (above the live table)."""
        stamp = f"{self._last.elapsed:5.1f}s  " if self._last is not None else ""
        self.console.print(Text(f"{stamp}>> {message}", style="bold"), soft_wrap=not self.live)

    def show(self, sample: Sample) -> None:
        """Update the figures (a plain line at most every ``line_interval`` seconds)."""
        self._last = sample
        if self._live is not None:
            self._live.update(sample.table(self.title))
        elif sample.elapsed - self._last_line >= self._line_interval:
            self._last_line = sample.elapsed
            self.console.print(sample.line(), highlight=False, soft_wrap=True)
