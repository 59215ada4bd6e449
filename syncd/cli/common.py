"""Helpers shared by the operator commands (status, verify, dlq, demo, pause, resume).

They complete :func:`syncd.cli.app.handle_errors` for commands that run async
code and touch the state directory: an error raised inside a task group
arrives wrapped in an ``ExceptionGroup``, and a state directory that cannot
be written raises ``OSError``; both must still end as one line and exit 2,
never a traceback.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from syncd.cli.app import fail
from syncd.config import Config
from syncd.errors import SyncdError
from syncd.logs import configure_logging
from syncd.tools.control import NoDaemon, send_control

__all__ = ["EXIT_NO_DAEMON", "SecondariesOption", "ask_daemon", "quiet_logging", "tool_errors"]

#: Exit status when no daemon answered (``syncd status``'s "unknown" too).
EXIT_NO_DAEMON = 3

#: The ``--secondary NAME`` option of the tools that act on secondaries (repeatable).
SecondariesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--secondary",
        help="Only this secondary (repeatable; the flat secondary_* keys name it 'secondary'). "
        "Default: every secondary.",
        metavar="NAME",
    ),
]


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


@contextlib.contextmanager
def tool_errors() -> Iterator[None]:
    """Re-raise a grouped ``SyncdError``/Ctrl-C as itself; turn ``OSError`` into a ``SyncdError``.

    Use inside :func:`syncd.cli.app.handle_errors`, which prints the line.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        for kind in (KeyboardInterrupt, SyncdError):
            for leaf in leaves:
                if isinstance(leaf, kind):
                    raise leaf from None
        raise
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise SyncdError(f"{exc.strerror or exc}{':' if where else ''}{where}") from None


def quiet_logging(config: Config, *, floor: str = "warning") -> None:
    """Log to stderr at ``config.log_level`` but no lower than ``floor``.

    An operator's command shows its own output; the pipeline's info lines
    (connections, batches) would drown it.
    """
    order = ["debug", "info", "warning", "error"]
    level = max(config.log_level, floor, key=order.index)
    configure_logging(level, config.log_json, stream=sys.stderr)


def ask_daemon(config: Config, action: str, secondary: str | None) -> list[dict[str, Any]]:
    """``pause`` or ``resume`` through the running daemon; no daemon: one line, exit 3.

    Other failures (403, an unknown secondary) raise ``SyncdError`` for
    :func:`syncd.cli.app.handle_errors`: one line, exit 2.
    """
    try:
        return send_control(config, action, secondary)
    except NoDaemon as exc:
        fail(str(exc), EXIT_NO_DAEMON)


@contextlib.contextmanager
def progress_bar(console: Console | None = None) -> Iterator[Progress]:
    """A progress bar (on stderr unless told) with a count, a percentage and an ETA; none
    off a terminal."""
    console = console or Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        yield bar
