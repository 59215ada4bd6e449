"""``syncd dlq list|show|replay|purge``: the dead-letter files, for an operator.

Each secondary has its own dead-letter file; ``--secondary NAME`` (repeatable)
selects whose, by default every secondary's. An entry's id is ``NAME:LINE``
(:mod:`syncd.tools.deadletters`); a bare ``LINE`` is enough when one
secondary is selected. A replayed entry goes back to the secondary whose file
holds it, never to another one.

Malformed lines (:meth:`syncd.pipeline.deadletter.DeadLetterFile.read`) are reported
with their line number on stderr and otherwise left alone: never fatal, never
removed. Replay exits 0 when every selected entry was applied, 1 when some
are still refused, 2 when a database could not be reached.

``--json``: the keys of a one-secondary run stay; counts are totals over the
selected secondaries, listed items (``entries``, ``malformed``,
``still_failing``) carry their ``secondary`` and entries their ``id``, and
``secondaries`` has one object per selected secondary.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from syncd.cli.app import ConfigOption, dlq_app, fail, handle_errors, load_cli_config
from syncd.cli.common import SecondariesOption, tool_errors
from syncd.config import Config
from syncd.config.secondaries import select
from syncd.durations import parse_duration
from syncd.keys import canonical, key_hash
from syncd.pipeline.deadletter import DeadLetter, filter_letters
from syncd.tools.deadletters import LetterFile, entry_id, find_entry, read_files
from syncd.words import ago, at, plural

__all__ = [
    "ErrorFilter",
    "Filters",
    "JsonOption",
    "NewerFilter",
    "OlderFilter",
    "TableFilter",
    "dlq_list",
    "dlq_show",
    "entry_label",
    "letter_json",
    "load_files",
    "report_malformed",
    "selected_letters",
    "short",
    "where",
]

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
class Filters:
    """The ``--table``, ``--error``, ``--older-than`` and ``--newer-than`` options."""

    table: str | None
    error: str | None
    older_than: str | None
    newer_than: str | None

    def apply(self, letters: list[DeadLetter]) -> list[DeadLetter]:
        """The entries of ``letters`` matching every filter given (a bad age: exit 2)."""
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


def letter_json(
    letter: DeadLetter, *, record: bool = True, secondary: str | None = None
) -> dict[str, Any]:
    """An entry as JSON for ``--json`` (the record rendered canonically).

    ``secondary``: whose file holds it, added as ``secondary`` and ``id``
    (``NAME:LINE``).
    """
    op = letter.op
    out: dict[str, Any] = {
        "line": letter.line_no,
        **(
            {}
            if secondary is None
            else {"secondary": secondary, "id": entry_id(secondary, letter.line_no)}
        ),
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


def load_files(cfg: Config, secondary: list[str] | None) -> list[LetterFile]:
    """The selected secondaries' files, read; an unknown name is one line, exit 2."""
    return read_files(cfg, select(cfg.secondary_names(), secondary))


def report_malformed(files: list[LetterFile]) -> None:
    """One stderr line per malformed line of ``files``."""
    for file in files:
        for line_no, problem in file.malformed:
            sys.stderr.write(
                f"syncd: {file.dlq.path} line {line_no}: malformed ({problem}); skipped, kept\n"
            )


def where(files: list[LetterFile]) -> str:
    """What the files are called in a sentence: one path, or the secondaries' names."""
    if len(files) == 1:
        return str(files[0].dlq.path)
    return "the files of " + ", ".join(f.name for f in files)


def entry_label(file: LetterFile, line_no: int, several: bool) -> str:
    """An entry as a person types it: ``NAME:LINE`` among ``several`` secondaries, else LINE."""
    return entry_id(file.name, line_no) if several else str(line_no)


def short(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def selected_letters(
    files: list[LetterFile], filters: Filters
) -> list[tuple[LetterFile, list[DeadLetter]]]:
    """Each file with its entries that ``filters`` select."""
    return [(file, filters.apply(file.entries)) for file in files]


@dlq_app.command("list")
def dlq_list(
    config: ConfigOption = None,
    table: TableFilter = None,
    error: ErrorFilter = None,
    older_than: OlderFilter = None,
    newer_than: NewerFilter = None,
    json_output: JsonOption = False,
    secondary: SecondariesOption = None,
) -> None:
    """List dead-lettered operations, oldest first in each secondary's file, with filters."""
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        files = load_files(cfg, secondary)
        chosen = selected_letters(files, Filters(table, error, older_than, newer_than))
        total = sum(len(f.entries) for f in files)
        if json_output:
            data = {
                "file": str(files[0].dlq.path),
                "entries": [
                    letter_json(e, record=False, secondary=f.name) for f, es in chosen for e in es
                ],
                "total": total,
                "malformed": [
                    {"line": n, "problem": p, "secondary": f.name}
                    for f in files
                    for n, p in f.malformed
                ],
                "secondaries": [
                    {
                        "name": f.name,
                        "file": str(f.dlq.path),
                        "selected": len(es),
                        "total": len(f.entries),
                        "malformed": len(f.malformed),
                    }
                    for f, es in chosen
                ],
            }
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        report_malformed(files)
        console = Console()
        count = sum(len(es) for _, es in chosen)
        if not count:
            what = "matching the filters " if total else ""
            console.print(Text(f"no dead letters {what}in {where(files)} ({total} in all)"))
            return
        several = len(files) > 1
        view = Table(title=f"dead letters in {where(files)}", title_justify="left")
        view.add_column("entry" if several else "line", justify="right")
        view.add_column("table")
        view.add_column("record")
        view.add_column("attempts", justify="right")
        view.add_column("failed")
        view.add_column("error", overflow="fold")
        for file, entries in chosen:
            for e in entries:
                rid = e.op.record.get("id")
                view.add_row(
                    entry_label(file, e.line_no, several),
                    e.op.table,
                    Text(e.op.key if rid is None else str(rid)),
                    str(e.attempts),
                    ago(e.last_failed_at),
                    Text(short(e.error)),
                )
        console.print(view)
        shown = plural(total, "entry")
        if count != total:
            shown = f"{count} of {shown}"
        if several:
            shown += " (" + ", ".join(f"{f.name} {len(es)}" for f, es in chosen) + ")"
        which = "ENTRY" if several else "LINE"
        console.print(
            Text(f"{shown}; `syncd dlq show {which}` for one, `syncd dlq replay` to retry")
        )


@dlq_app.command("show")
def dlq_show(
    entry: Annotated[
        str,
        typer.Argument(
            help="Entry id, as `syncd dlq list` shows it: NAME:LINE, or LINE when one "
            "secondary is selected.",
            metavar="ENTRY",
        ),
    ],
    config: ConfigOption = None,
    json_output: JsonOption = False,
    secondary: SecondariesOption = None,
) -> None:
    """Show one dead-lettered operation, its record pretty-printed."""
    with handle_errors(), tool_errors():
        cfg = load_cli_config(config)
        file, line = find_entry(load_files(cfg, secondary), entry)
        path = file.dlq.path
        problem = dict(file.malformed).get(line)
        if problem is not None:
            fail(f"{path} line {line} is malformed ({problem}); it is kept for a human to fix")
        found = [e for e in file.entries if e.line_no == line]
        if not found:
            fail(f"no dead letter on line {line} of {path} (see `syncd dlq list`)")
        letter = found[0]
        data = letter_json(letter, secondary=file.name)
        if json_output:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        console = Console()
        summary = Table(show_header=False, title=f"line {line} of {path}", title_justify="left")
        summary.add_column("what", style="bold")
        summary.add_column("value", overflow="fold")
        for key in ("secondary", "table", "key", "record_id", "source", "attempts", "error"):
            summary.add_row(key, Text(str(data[key])))
        summary.add_row(
            "first failed", f"{at(letter.first_failed_at)} ({ago(letter.first_failed_at)})"
        )
        summary.add_row(
            "last failed", f"{at(letter.last_failed_at)} ({ago(letter.last_failed_at)})"
        )
        console.print(summary)
        console.print(JSON.from_data(data["record"], sort_keys=True))
