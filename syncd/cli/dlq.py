"""``syncd dlq list|show|replay|purge``: the dead-letter file, for an operator.

Malformed lines (:meth:`syncd.pipeline.deadletter.DeadLetterFile.read`) are reported
with their line number on stderr and otherwise left alone: never fatal, never
removed. Replay exits 0 when every selected entry was applied, 1 when some
are still refused, 2 when a database could not be reached.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
import typer
from rich.console import Console
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from syncd.cli.app import ConfigOption, dlq_app, fail, handle_errors, load_cli_config
from syncd.cli.common import quiet_logging, tool_errors
from syncd.config import Config
from syncd.durations import parse_duration
from syncd.keys import canonical, key_hash
from syncd.pipeline.deadletter import DeadLetter, DeadLetterFile, filter_letters
from syncd.pipeline.statedir import state_files
from syncd.surreal.endpoints import open_connection
from syncd.tools.replay import ReplayResult, remove_letters, replay
from syncd.words import ago, at, plural

__all__ = ["dlq_list", "dlq_purge", "dlq_replay", "dlq_show", "letter_json"]

TableFilter = Annotated[
    str | None, typer.Option("--table", "-t", help="Only entries of this table.", metavar="TABLE")
]
ErrorFilter = Annotated[
    str | None,
    typer.Option(
        "--error", "-e", help="Only entries whose error contains TEXT (any case).", metavar="TEXT"
    ),
]
OlderFilter = Annotated[
    str | None,
    typer.Option(
        "--older-than", help='Only entries that failed longer ago than this ("1h").', metavar="AGE"
    ),
]
NewerFilter = Annotated[
    str | None,
    typer.Option(
        "--newer-than", help='Only entries that failed within this ("10m").', metavar="AGE"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@dataclass(frozen=True)
class _Filters:
    table: str | None
    error: str | None
    older_than: str | None
    newer_than: str | None

    def apply(self, letters: list[DeadLetter]) -> list[DeadLetter]:
        now = time.time()
        return filter_letters(
            letters,
            table=self.table,
            error_contains=self.error,
            older_than=None
            if self.older_than is None
            else now - _age("--older-than", self.older_than),
            newer_than=None
            if self.newer_than is None
            else now - _age("--newer-than", self.newer_than),
        )


def _age(option: str, text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")
    if seconds < 0:
        fail(f"{option}: must not be negative (got {text!r})")
    return seconds


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def letter_json(letter: DeadLetter, *, record: bool = True) -> dict[str, Any]:
    """An entry as JSON for ``--json`` (the record rendered canonically)."""
    op = letter.op
    out: dict[str, Any] = {
        "line": letter.line_no,
        "table": op.table,
        "key": op.key,
        "key_hash": key_hash(op.key),  # what log lines name this record by
        "record_id": "" if op.record.get("id") is None else str(op.record["id"]),
        "source": op.source,
        "attempts": letter.attempts,
        "error": letter.error,
        "first_failed_at": _iso(letter.first_failed_at),
        "last_failed_at": _iso(letter.last_failed_at),
    }
    if record:
        out["record"] = canonical(op.record)
    return out


def _load(cfg: Config) -> tuple[DeadLetterFile, list[DeadLetter], list[tuple[int, str]]]:
    dlq = DeadLetterFile(state_files(cfg.state_path)[1])
    entries, malformed = dlq.read()
    return dlq, entries, malformed


def _report_malformed(malformed: list[tuple[int, str]], dlq: DeadLetterFile) -> None:
    for line_no, problem in malformed:
        sys.stderr.write(
            f"syncd: {dlq.path} line {line_no}: malformed ({problem}); skipped, kept\n"
        )


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dlq_app.command("list")
def dlq_list(
    config: ConfigOption = None,
    table: TableFilter = None,
    error: ErrorFilter = None,
    older_than: OlderFilter = None,
    newer_than: NewerFilter = None,
    json_output: JsonOption = False,
) -> None:
    """List dead-lettered operations, oldest first, with filters."""
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        dlq, entries, malformed = _load(cfg)
        selected = _Filters(table, error, older_than, newer_than).apply(entries)
        if json_output:
            data = {
                "file": str(dlq.path),
                "entries": [letter_json(e, record=False) for e in selected],
                "total": len(entries),
                "malformed": [{"line": n, "problem": p} for n, p in malformed],
            }
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        _report_malformed(malformed, dlq)
        console = Console()
        if not selected:
            what = "matching the filters " if len(entries) else ""
            console.print(Text(f"no dead letters {what}in {dlq.path} ({len(entries)} in all)"))
            return
        view = Table(title=f"dead letters in {dlq.path}", title_justify="left")
        view.add_column("line", justify="right")
        view.add_column("table")
        view.add_column("record")
        view.add_column("attempts", justify="right")
        view.add_column("failed")
        view.add_column("error", overflow="fold")
        for e in selected:
            rid = e.op.record.get("id")
            view.add_row(
                str(e.line_no),
                e.op.table,
                Text(e.op.key if rid is None else str(rid)),
                str(e.attempts),
                ago(e.last_failed_at),
                Text(_short(e.error)),
            )
        console.print(view)
        shown = plural(len(entries), "entry")
        if len(selected) != len(entries):
            shown = f"{len(selected)} of {shown}"
        console.print(f"{shown}; `syncd dlq show LINE` for one, `syncd dlq replay` to retry")


@dlq_app.command("show")
def dlq_show(
    line: Annotated[int, typer.Argument(help="Line number, as `syncd dlq list` shows it.", min=1)],
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show one dead-lettered operation, its record pretty-printed."""
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        dlq, entries, malformed = _load(cfg)
        problem = dict(malformed).get(line)
        if problem is not None:
            fail(f"{dlq.path} line {line} is malformed ({problem}); it is kept for a human to fix")
        found = [e for e in entries if e.line_no == line]
        if not found:
            fail(f"no dead letter on line {line} of {dlq.path} (see `syncd dlq list`)")
        letter = found[0]
        data = letter_json(letter)
        if json_output:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        console = Console()
        summary = Table(show_header=False, title=f"line {line} of {dlq.path}", title_justify="left")
        summary.add_column("what", style="bold")
        summary.add_column("value", overflow="fold")
        for key in ("table", "key", "record_id", "source", "attempts", "error"):
            summary.add_row(key, Text(str(data[key])))
        summary.add_row(
            "first failed", f"{at(letter.first_failed_at)} ({ago(letter.first_failed_at)})"
        )
        summary.add_row(
            "last failed", f"{at(letter.last_failed_at)} ({ago(letter.last_failed_at)})"
        )
        console.print(summary)
        console.print(JSON.from_data(data["record"], sort_keys=True))


async def _replay(
    cfg: Config, dlq: DeadLetterFile, letters: list[DeadLetter], from_file_only: bool
) -> ReplayResult:
    async with open_connection(cfg, "secondary") as secondary:
        if from_file_only:
            return await replay(cfg, dlq, letters, secondary, None)
        async with open_connection(cfg, "primary") as primary:
            return await replay(cfg, dlq, letters, secondary, primary)


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
) -> None:
    """Send dead-lettered operations to the secondary again; remove the ones applied.

    By default each record is re-read from the primary and its current state
    applied (the stored version may be stale); a record the primary no longer
    has is applied as stored.
    """
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        quiet_logging(cfg)
        dlq, entries, malformed = _load(cfg)
        if not json_output:
            _report_malformed(malformed, dlq)
        selected = _Filters(table, error, older_than, newer_than).apply(entries)
        result = (
            anyio.run(_replay, cfg, dlq, selected, from_file_only) if selected else ReplayResult()
        )
        code = 2 if result.error else (1 if result.failed else 0)
        if json_output:
            data = {
                **result.to_json(),
                "selected": len(selected),
                "malformed_lines": [n for n, _ in malformed],
            }
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            raise typer.Exit(code)
        console = Console()
        if not selected:
            console.print("nothing to replay")
            raise typer.Exit(0)
        line = f"applied {len(result.applied)} of {len(selected)}"
        if not from_file_only and result.applied:
            line += (
                f" ({result.from_primary} as the primary holds them now, "
                f"{result.stored} as stored: no longer on the primary)"
            )
        console.print(Text(line + f"; removed {result.removed} from {dlq.path}"))
        for letter, reason in result.failed:
            console.print(
                Text(f"still failing: line {letter.line_no} {letter.op.key}: {_short(reason, 200)}")
            )
        if result.error:
            console.print(
                Text(f"stopped: {result.error}; {len(result.not_attempted)} not attempted")
            )
        raise typer.Exit(code)


@dlq_app.command("purge")
def dlq_purge(
    config: ConfigOption = None,
    table: TableFilter = None,
    error: ErrorFilter = None,
    older_than: OlderFilter = None,
    newer_than: NewerFilter = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete dead-lettered operations (all, or those matching the filters).

    Asks first unless --yes; without a terminal to ask on, refuses. Malformed
    lines are never deleted.
    """
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        dlq, entries, malformed = _load(cfg)
        _report_malformed(malformed, dlq)
        selected = _Filters(table, error, older_than, newer_than).apply(entries)
        if not selected:
            typer.echo("nothing to purge")
            return
        if not yes:
            if not sys.stdin.isatty():
                fail(
                    f"purge: would delete {plural(len(selected), 'entry')}; "
                    "confirm with --yes (no terminal to ask on)"
                )
            if not typer.confirm(
                f"Delete {len(selected)} of {len(entries)} dead letters from {dlq.path}?"
            ):
                typer.echo("nothing deleted")
                raise typer.Exit(1)
        removed = remove_letters(dlq, selected)
        kept = f"; {plural(len(malformed), 'malformed line')} kept" if malformed else ""
        typer.echo(f"deleted {plural(removed, 'entry')} from {dlq.path}{kept}")
