"""``syncd pause``: stop applying to a secondary, through the running daemon; capture goes on."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from syncd.cli.app import ConfigOption, app, handle_errors, load_cli_config
from syncd.cli.common import ask_daemon

__all__ = ["SecondaryOption", "pause"]

#: The ``--secondary NAME`` option of ``pause`` and ``resume``.
SecondaryOption = Annotated[
    str | None,
    typer.Option(
        "--secondary",
        help="Only this secondary (the flat secondary_* keys name it 'secondary'). "
        "Default: every secondary.",
        metavar="NAME",
    ),
]


@app.command()
def pause(config: ConfigOption = None, secondary: SecondaryOption = None) -> None:
    """Pause replication to a secondary: nothing is applied to it until `syncd resume`.

    The daemon keeps reading the primary's changefeed until its queue is full
    (the feed is the buffer); the pause survives a restart. Prints
    ``paused NAME since HH:MM:SS``. Exits 0 done, 2 refused or bad input,
    3 no daemon answering.
    """
    with handle_errors():
        cfg = load_cli_config(config)
        for state in ask_daemon(cfg, "pause", secondary):
            since = state.get("since")
            when = time.strftime("%H:%M:%S", time.localtime(since)) if since else "?"
            typer.echo(f"paused {state.get('secondary')} since {when}")
