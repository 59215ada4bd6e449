"""``syncd dlq replay|purge``: the commands that change the dead-letter files.

Options, filters and ids are :mod:`syncd.cli.dlq`'s; replay sends each entry
back to the secondary whose file holds it (:func:`syncd.tools.replay.replay_files`).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from syncd.cli.app import ConfigOption, dlq_app, fail, handle_errors, load_cli_config
from syncd.cli.common import SecondariesOption, quiet_logging, tool_errors
from syncd.cli.dlq import (
    ErrorFilter,
    Filters,
    JsonOption,
    NewerFilter,
    OlderFilter,
    TableFilter,
    entry_label,
    load_files,
    report_malformed,
    selected_letters,
    short,
    where,
)
from syncd.interrupts import run_until_interrupted
from syncd.pipeline.deadletter import DeadLetter
from syncd.tools.deadletters import LetterFile
from syncd.tools.replay import ReplayResult, remove_letters, replay_files
from syncd.words import plural

__all__ = ["dlq_purge", "dlq_replay"]


def _replay_json(
    chosen: list[tuple[LetterFile, list[DeadLetter]]], results: list[ReplayResult]
) -> dict[str, Any]:
    each: list[dict[str, Any]] = [
        {
            "name": f.name,
            "file": str(f.dlq.path),
            "selected": len(es),
            "malformed_lines": [n for n, _ in f.malformed],
            **r.to_json(),
        }
        for (f, es), r in zip(chosen, results, strict=True)
    ]
    out: dict[str, Any] = {
        key: sum(int(e[key]) for e in each)
        for key in ("applied", "applied_from_primary", "applied_as_stored", "removed")
    }
    out["still_failing"] = [s for e in each for s in e["still_failing"]]
    out["not_attempted"] = sum(int(e["not_attempted"]) for e in each)
    errors = [f"{e['name']}: {e['error']}" for e in each if e["error"]]
    out["error"] = (results[0].error if len(each) == 1 else "; ".join(errors)) or None
    out["selected"] = sum(len(es) for _, es in chosen)
    out["malformed_lines"] = [n for e in each for n in e["malformed_lines"]]
    out["secondaries"] = each
    return out


@dlq_app.command("replay")
def dlq_replay(
    config: ConfigOption = None,
    table: TableFilter = None,
    error: ErrorFilter = None,
    older_than: OlderFilter = None,
    newer_than: NewerFilter = None,
    from_file_only: Annotated[
        bool,
        typer.Option(
            "--from-file-only",
            help="Apply the stored versions as they are, without re-reading the primary "
            "(may overwrite newer data on the secondary).",
        ),
    ] = False,
    json_output: JsonOption = False,
    secondary: SecondariesOption = None,
) -> None:
    """Send dead-lettered operations again, each to the secondary whose file holds it;
    remove the ones applied.

    By default each record is re-read from the primary and its current state
    applied (the stored version may be stale); a record the primary no longer
    has is applied as stored. Refuses when a secondary with entries to replay
    is paused.
    """
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        quiet_logging(cfg)
        files = load_files(cfg, secondary)
        if not json_output:
            report_malformed(files)
        chosen = selected_letters(files, Filters(table, error, older_than, newer_than))
        count = sum(len(es) for _, es in chosen)
        results = (
            run_until_interrupted(replay_files, cfg, chosen, from_file_only)
            if count
            else [ReplayResult(secondary=f.name) for f, _ in chosen]
        )
        failed = any(r.failed for r in results)
        code = 2 if any(r.error for r in results) else (1 if failed else 0)
        if json_output:
            sys.stdout.write(json.dumps(_replay_json(chosen, results), indent=2) + "\n")
            raise typer.Exit(code)
        console = Console()
        if not count:
            console.print("nothing to replay")
            raise typer.Exit(0)
        several = len(files) > 1
        for (file, entries), result in zip(chosen, results, strict=True):
            if entries:
                _print_replay(console, file, entries, result, from_file_only, several)
        raise typer.Exit(code)


def _print_replay(
    console: Console,
    file: LetterFile,
    entries: list[DeadLetter],
    result: ReplayResult,
    from_file_only: bool,
    several: bool,
) -> None:
    line = f"{file.name}: " if several else ""
    line += f"applied {len(result.applied)} of {len(entries)}"
    if not from_file_only and result.applied:
        line += (
            f" ({result.from_primary} as the primary holds them now, "
            f"{result.stored} as stored: no longer on the primary)"
        )
    console.print(Text(line + f"; removed {result.removed} from {file.dlq.path}"))
    for letter, reason in result.failed:
        which = entry_label(file, letter.line_no, several)
        console.print(Text(f"still failing: line {which} {letter.op.key}: {short(reason, 200)}"))
    if result.error:
        console.print(Text(f"stopped: {result.error}; {len(result.not_attempted)} not attempted"))


@dlq_app.command("purge")
def dlq_purge(
    config: ConfigOption = None,
    table: TableFilter = None,
    error: ErrorFilter = None,
    older_than: OlderFilter = None,
    newer_than: NewerFilter = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    secondary: SecondariesOption = None,
) -> None:
    """Delete dead-lettered operations (all, or those matching the filters).

    Asks first unless --yes; without a terminal to ask on, refuses. Malformed
    lines are never deleted.
    """
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        files = load_files(cfg, secondary)
        report_malformed(files)
        chosen = selected_letters(files, Filters(table, error, older_than, newer_than))
        count = sum(len(es) for _, es in chosen)
        if not count:
            typer.echo("nothing to purge")
            return
        if not yes:
            if not sys.stdin.isatty():
                fail(
                    f"purge: would delete {plural(count, 'entry')}; "
                    "confirm with --yes (no terminal to ask on)"
                )
            total = sum(len(f.entries) for f in files)
            if not typer.confirm(f"Delete {count} of {total} dead letters from {where(files)}?"):
                typer.echo("nothing deleted")
                raise typer.Exit(1)
        removed = {f.name: remove_letters(f.dlq, es) for f, es in chosen if es}
        malformed = sum(len(f.malformed) for f in files)
        kept = f"; {plural(malformed, 'malformed line')} kept" if malformed else ""
        place = where(files)
        if len(files) > 1:
            place += " (" + ", ".join(f"{name} {n}" for name, n in removed.items()) + ")"
        typer.echo(f"deleted {plural(sum(removed.values()), 'entry')} from {place}{kept}")
