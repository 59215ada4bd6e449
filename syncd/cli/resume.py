"""``syncd resume``: apply to a paused secondary again, through the running daemon."""

from __future__ import annotations

import typer

from syncd.cli.app import ConfigOption, app, handle_errors, load_cli_config
from syncd.cli.common import ask_daemon
from syncd.cli.pause import SecondaryOption

__all__ = ["resume"]


@app.command()
def resume(config: ConfigOption = None, secondary: SecondaryOption = None) -> None:
    """Resume replication to a paused secondary: the backlog drains.

    Prints ``resumed NAME``. Exits 0 done (also when it was not paused), 2
    refused or bad input, 3 no daemon answering.
    """
    with handle_errors():
        cfg = load_cli_config(config)
        for state in ask_daemon(cfg, "resume", secondary):
            typer.echo(f"resumed {state.get('secondary')}")
