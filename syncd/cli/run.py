"""``syncd run`` (the daemon) and ``syncd backfill`` (a copy on demand)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer
from rich.console import Console

from syncd.cli.app import ConfigOption, app, handle_errors, load_cli_config, resolve_config_path
from syncd.cli.common import SecondariesOption, quiet_logging, tool_errors
from syncd.interrupts import run_until_interrupted


@app.command()
def run(
    config: ConfigOption = None,
    resync: Annotated[
        bool,
        typer.Option(
            "--resync",
            help="Ignore the saved checkpoint: copy every table again, then tail the feed "
            "from its current position (after a primary was replaced, restored or reset).",
        ),
    ] = False,
) -> None:
    """Run the replication daemon: tail the primary's changefeeds into the secondary."""
    from syncd.service.entry import run_daemon  # the daemon's imports are not needed elsewhere

    with handle_errors():
        cfg = load_cli_config(config)
        raise typer.Exit(run_daemon(cfg, resolve_config_path(config), resync=resync))


@app.command()
def backfill(
    config: ConfigOption = None,
    table: Annotated[
        list[str] | None, typer.Option("--table", "-t", help="Only this table (repeatable).")
    ] = None,
    secondary: SecondariesOption = None,
) -> None:
    """Copy what the primary holds to the secondaries now, through the normal pipeline.

    Every secondary by default (the primary is read once for all of them);
    with --secondary, only those. Refuses when a secondary it would write to
    is paused (`syncd pause`).
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from syncd.config.secondaries import select
    from syncd.service.entry import check_daemon_config
    from syncd.tools.backfill import backfill_now
    from syncd.tools.control import refuse_while_paused

    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        check_daemon_config(cfg, resolve_config_path(config), command="syncd backfill")
        # An unknown name: one line, before any connection.
        names = select(cfg.secondary_names(), secondary)
        refuse_while_paused(cfg, "a backfill", names)  # all of them before the first copy
        # Every secondary: one run fans out; a few of them: one run each.
        runs: list[str | None] = [None] if names == cfg.secondary_names() else list(names)
        quiet_logging(cfg)  # its own progress and result lines; warnings and errors still show
        console = Console(stderr=True)
        counts: dict[str, int] = {}
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            console=console,
            disable=not console.is_terminal,
        ) as bar:
            task = bar.add_task("backfill", total=None)

            def progress(name: str, rows: int) -> None:
                counts[name] = counts.get(name, 0) + rows
                bar.update(task, description=f"{name}: {counts[name]} records")

            for only in runs:
                counts.clear()
                run_until_interrupted(
                    partial(backfill_now, only=only), cfg, table or None, progress
                )
                to = "" if only is None else f" to {only}"
                for name, rows in counts.items():
                    typer.echo(f"{name}: {rows} records copied{to}")
