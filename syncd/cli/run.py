"""``syncd run`` (the daemon) and ``syncd backfill`` (a copy on demand)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from syncd.cli.app import (
    ConfigOption,
    app,
    fail,
    handle_errors,
    load_cli_config,
    resolve_config_path,
)
from syncd.cli.common import SecondariesOption, progress_bar, quiet_logging, tool_errors
from syncd.config import Config
from syncd.interrupts import run_until_interrupted

if TYPE_CHECKING:
    from syncd.tools.backfill import BackfillResult


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


#: Exit status of a backfill some of whose records a secondary refused (now dead letters).
EXIT_DEAD_LETTERED = 1


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
    is paused (`syncd pause`). Ends with "copied N, dead-lettered M" per
    secondary; exits 1 when a secondary refused records (see `syncd dlq list`),
    2 on bad input, an unreachable database or nothing to copy.
    """
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
        results: list[tuple[str | None, BackfillResult]] = []
        with progress_bar() as bar:
            # Inside the bar: log lines are printed above it, not into it.
            quiet_logging(cfg)  # its own progress and result lines; warnings and errors show
            task = bar.add_task("connecting to the primary", total=None)

            def on_tables(tables: list[str], total: int | None, to: str) -> None:
                bar.reset(task, total=total, description=f"backfill{to}: {', '.join(tables)}")

            def progress(name: str, rows: int, to: str) -> None:
                bar.update(task, advance=rows, description=f"backfill{to}: {name}")

            for only in runs:
                to = "" if only is None else f" to {only}"
                result = run_until_interrupted(
                    partial(
                        backfill_now,
                        only=only,
                        on_tables=partial(on_tables, to=to),
                    ),
                    cfg,
                    table or None,
                    partial(progress, to=to),
                )
                results.append((only, result))
        quiet_logging(cfg)  # the bar's stream is gone
        _report_backfill(cfg, results)


def _report_backfill(cfg: Config, results: list[tuple[str | None, BackfillResult]]) -> None:
    """Per table what was copied, per secondary copied and dead-lettered; the exit status."""
    refused = 0
    for only, result in results:
        to = "" if only is None else f" to {only}"
        for name, rows in result.copied.items():
            typer.echo(f"{name}: {rows} records copied{to}")
        for name, dead in result.dead_lettered.items():
            refused += dead
            line = f"{name}: copied {result.total}, dead-lettered {dead}"
            typer.echo(line + (" (see `syncd dlq list`)" if dead else ""))
    if results and not any(result.total for _, result in results):
        tables = ", ".join(results[0][1].tables)
        place = f'namespace "{cfg.primary_namespace}", database "{cfg.primary_database}"'
        fail(
            f"backfill: no record in {tables} on the primary ({place}): nothing copied "
            "(are primary_namespace and primary_database the application's?)"
        )
    if refused:
        raise typer.Exit(EXIT_DEAD_LETTERED)
