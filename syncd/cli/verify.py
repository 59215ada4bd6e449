"""``syncd verify``: the command layer over :mod:`syncd.tools.verify` and :mod:`syncd.tools.repair`.

Each selected secondary (``--secondary``, default every one, in priority
order) is verified against the primary on its own, with its own progress
file, and reported in a section of its own. Exit status: 0 consistent, 1
records missing or differing on a secondary (extras alone are archived
records, not an inconsistency), 2 bad input or a database out of reach, 3 a
run stopped before the end (``--max-pages``; run again to resume), 130
interrupted (progress saved; run again to resume).

``--json``: the keys of a one-secondary run (``tables``, ``missing``, ...,
or with ``--repair`` ``before``, ``enqueued``, ``after``, ...) describe the
first selected secondary, so scripts written for one secondary keep working;
``consistent`` and ``complete`` cover every selected secondary (they agree
with the exit status); ``secondaries`` lists each one's result under its
``name``, with the same keys.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    Progress,
)
from rich.text import Text

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
from syncd.config.secondaries import select
from syncd.errors import SyncdError
from syncd.interrupts import run_until_interrupted
from syncd.service.entry import check_daemon_config
from syncd.surreal.endpoints import open_connection
from syncd.tools.records import count_records
from syncd.tools.repair import RepairOutcome, verify_and_repair
from syncd.tools.report import print_report
from syncd.tools.verify import (
    DEFAULT_PAGE_SIZE,
    PROGRESS_FILE,
    Verifier,
    VerifyOptions,
    VerifyReport,
)
from syncd.words import plural

__all__ = ["EXIT_INCOMPLETE", "EXIT_INCONSISTENT", "verify"]

#: Exit status when the replica diverges.
EXIT_INCONSISTENT = 1
#: Exit status when the run stopped before the end (resumable).
EXIT_INCOMPLETE = 3


Result = VerifyReport | RepairOutcome


def _final(result: Result) -> VerifyReport:
    """The report that decides: after a repair, the second verification (if it ran)."""
    if isinstance(result, RepairOutcome):
        return result.second if result.second is not None else result.first
    return result


def _exit_code(results: list[Result]) -> int:
    finals = [_final(r) for r in results]
    if any(r.complete and not r.consistent for r in finals):
        return EXIT_INCONSISTENT  # a finished run found a difference: that is known for sure
    if not all(r.complete for r in finals):
        return EXIT_INCOMPLETE
    return 0


def _json(names: list[str], results: list[Result]) -> dict[str, Any]:
    out = dict(results[0].to_json())
    # Each one's own meaning (a report: nothing found so far; a repair: consistent after it).
    out["consistent"] = all(r.consistent for r in results)
    if not isinstance(results[0], RepairOutcome):
        out["complete"] = all(_final(r).complete for r in results)
    out["secondaries"] = [
        {"name": name, **r.to_json()} for name, r in zip(names, results, strict=True)
    ]
    return out


async def _total(verifier: Verifier) -> int | None:
    """Records the run will read on both sides (the bar's total); ``None`` if unknown."""
    if verifier.options.sample:
        return None
    try:
        tables = await verifier.tables()
        return sum(
            [
                await count_records(side, table)
                for table in tables
                for side in (verifier.primary, verifier.secondary)
            ]
        )
    except SyncdError:
        return None  # 3.x: a table never written to on one side; a spinner then


async def _run(
    cfg: Config, names: list[str], options: VerifyOptions, repair: bool, progress: Progress
) -> list[Result]:
    task = progress.add_task("connecting", total=None)
    results: list[Result] = []
    async with open_connection(cfg, "primary") as primary:
        for name in names:
            seen: dict[tuple[str, str], int] = {}

            def on_progress(
                table: str,
                phase: str,
                rows: int,
                name: str = name,
                seen: dict[tuple[str, str], int] = seen,
            ) -> None:
                what = "primary" if phase == "primary" else name
                advance = rows - seen.get((table, phase), 0)
                seen[(table, phase)] = rows
                progress.update(
                    task,
                    advance=advance,
                    description=f"{name}: {table}: {rows} {what} records checked",
                )

            path = cfg.secondary_state(name) / PROGRESS_FILE
            async with open_connection(cfg, "secondary", secondary=name) as secondary:
                progress.update(task, description=f"verifying {name}")
                if not progress.disable and not repair:
                    counting = Verifier(cfg, primary, secondary, options)
                    progress.reset(
                        task, total=await _total(counting), description=f"verifying {name}"
                    )
                if repair:
                    results.append(
                        await verify_and_repair(
                            cfg,
                            primary,
                            secondary,
                            options,
                            secondary_name=name,
                            progress_path=path,
                            on_progress=on_progress,
                        )
                    )
                    continue
                verifier = Verifier(
                    cfg, primary, secondary, options, progress_path=path, on_progress=on_progress
                )
                results.append(await verifier.run())
    return results


def _print(console: Console, name: str | None, result: Result) -> None:
    """One secondary's section; ``name`` ``None``: the only one, titled as it always was."""
    of = "" if name is None else f" — secondary {name}"
    first = result.first if isinstance(result, RepairOutcome) else result
    print_report(console, first, f"syncd verify{of}" if first is result else f"before repair{of}")
    if isinstance(result, RepairOutcome):
        line = f"repair: {result.enqueued} records sent through the pipeline"
        if name is not None:
            line += f" to {name}"
        if result.dead_lettered:
            line += f", {result.dead_lettered} refused by the secondary (see `syncd dlq list`)"
        if result.schema_applied:
            line += f"; {plural(result.schema_applied, 'definition')} applied"
        if result.schema_refused:
            line += f"; refused by the secondary: {', '.join(result.schema_refused)}"
        if not result.flushed:
            line += "; not all applied in time (the rest stays queued for the next --repair)"
        console.print(Text(line))
        if result.second is not None:
            print_report(console, result.second, f"after repair{of}")


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
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the result as JSON: the one-secondary keys describe the first "
            "selected secondary, `consistent` and `complete` cover all of them, "
            "`secondaries` lists each one's result by `name`.",
        ),
    ] = False,
    secondary: SecondariesOption = None,
) -> None:
    """Compare the primary with each secondary, table by table, in pages; resumable.

    Reports per secondary and table the records missing on the secondary, the
    records that differ (by dedup key, volatile fields ignored) and the extra
    records only the secondary has (archived: deletes are not propagated).
    --repair repairs only the selected secondaries. Exits 0 when every one is
    consistent, 1 when records are missing or differ on one, 3 when stopped early.
    """
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        check_daemon_config(cfg, resolve_config_path(config), command="syncd verify")
        names = select(cfg.secondary_names(), secondary)
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
        with progress_bar(err) as progress:
            quiet_logging(cfg)  # inside the bar: log lines are printed above it
            results = run_until_interrupted(_run, cfg, names, options, repair, progress)
        quiet_logging(cfg)  # the bar's stream is gone
        code = _exit_code(results)
        if json_output:
            sys.stdout.write(json.dumps(_json(names, results), indent=2, default=str) + "\n")
            raise typer.Exit(code)
        console = Console()
        several = len(cfg.secondary_names()) > 1
        for name, result in zip(names, results, strict=True):
            _print(console, name if several else None, result)
        raise typer.Exit(code)
