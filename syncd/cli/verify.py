"""``syncd verify``: the command layer over :mod:`syncd.tools.verify` and :mod:`syncd.tools.repair`.

Exit status: 0 consistent, 1 records missing or differing on the secondary
(extras alone are archived records, not an inconsistency), 2 bad input or a
database out of reach, 3 stopped before the end (``--max-pages``; run again to
resume), 130 interrupted (progress saved; run again to resume).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from syncd.cli.app import ConfigOption, app, fail, handle_errors, load_cli_config
from syncd.cli.common import quiet_logging, tool_errors
from syncd.config import Config
from syncd.surreal.endpoints import open_connection
from syncd.tools.repair import RepairOutcome, verify_and_repair
from syncd.tools.report import print_report
from syncd.tools.verify import (
    DEFAULT_PAGE_SIZE,
    PROGRESS_FILE,
    Verifier,
    VerifyOptions,
    VerifyReport,
)

__all__ = ["EXIT_INCOMPLETE", "EXIT_INCONSISTENT", "verify"]

#: Exit status when the replica diverges.
EXIT_INCONSISTENT = 1
#: Exit status when the run stopped before the end (resumable).
EXIT_INCOMPLETE = 3


def _exit_code(report: VerifyReport) -> int:
    if not report.complete:
        return EXIT_INCOMPLETE
    return 0 if report.consistent else EXIT_INCONSISTENT


async def _run(
    cfg: Config, options: VerifyOptions, repair: bool, progress: Progress
) -> VerifyReport | RepairOutcome:
    task = progress.add_task("connecting", total=None)

    def on_progress(table: str, phase: str, rows: int) -> None:
        what = "primary records checked" if phase == "primary" else "secondary records checked"
        progress.update(task, description=f"{table}: {rows} {what}")

    path = cfg.state_path / PROGRESS_FILE
    async with (
        open_connection(cfg, "primary") as primary,
        open_connection(cfg, "secondary") as secondary,
    ):
        progress.update(task, description="verifying")
        if repair:
            return await verify_and_repair(
                cfg, primary, secondary, options, progress_path=path, on_progress=on_progress
            )
        verifier = Verifier(
            cfg, primary, secondary, options, progress_path=path, on_progress=on_progress
        )
        return await verifier.run()


@app.command()
def verify(
    config: ConfigOption = None,
    table: Annotated[
        list[str] | None,
        typer.Option("--table", "-t", help="Only this table (repeatable).", metavar="TABLE"),
    ] = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Send the missing and differing records through the pipeline, then verify again.",
        ),
    ] = False,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample", min=1, metavar="N", help="Check N random records per table, not all."
        ),
    ] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore the progress of an interrupted run.")
    ] = False,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, help="Records per round trip.")
    ] = DEFAULT_PAGE_SIZE,
    max_pages: Annotated[
        int | None,
        typer.Option("--max-pages", min=1, hidden=True, help="Stop after N pages (tests)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compare the primary with the secondary, table by table, in pages; resumable.

    Reports per table the records missing on the secondary, the records that
    differ (by dedup key, volatile fields ignored) and the extra records only the
    secondary has (archived: deletes are not propagated). Exits 0 when
    consistent, 1 when records are missing or differ, 3 when stopped early.
    """
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        quiet_logging(cfg)
        for name in table or []:  # before connecting: a typo should not wait on a network
            if not cfg.replicates(name):
                fail(f"table {name}: not replicated by this config (see tables:)")
        options = VerifyOptions(
            tables=table or None,
            page_size=page_size,
            sample=sample,
            max_pages=max_pages,
            restart=restart,
        )
        err = Console(stderr=True)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as progress:
            result = anyio.run(_run, cfg, options, repair, progress)
        first = result.first if isinstance(result, RepairOutcome) else result
        final = result.second if isinstance(result, RepairOutcome) else result
        code = _exit_code(final if final is not None else first)
        if json_output:
            sys.stdout.write(json.dumps(result.to_json(), indent=2, default=str) + "\n")
            raise typer.Exit(code)
        console = Console()
        print_report(console, first, "syncd verify" if final is first else "before repair")
        if isinstance(result, RepairOutcome):
            line = f"repair: {result.enqueued} records sent through the pipeline"
            if result.dead_lettered:
                line += f", {result.dead_lettered} refused by the secondary (see `syncd dlq list`)"
            if not result.flushed:
                line += "; not all applied in time (the rest stays queued for the next --repair)"
            console.print(Text(line))
            if result.second is not None:
                print_report(console, result.second, "after repair")
        raise typer.Exit(code)
