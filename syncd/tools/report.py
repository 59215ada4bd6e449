"""Rendering a verification for a person (rich): used by ``syncd verify`` and ``syncd demo``."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from syncd.tools.verify import PROGRESS_FILE, VerifyReport
from syncd.words import plural

__all__ = ["print_report", "report_table", "schema_lines", "verdict"]


def report_table(report: VerifyReport, title: str) -> Table:
    """One row per table: records checked, missing, differing, extra (archived)."""
    table = Table(title=title, title_justify="left")
    table.add_column("table", style="bold")
    table.add_column("checked", justify="right")
    table.add_column("missing", justify="right")
    table.add_column("differing", justify="right")
    table.add_column("extra (archived)", justify="right")
    table.add_column("result")
    for t in report.tables:
        checked = str(t.tally.primary_records)
        if t.primary_total is not None:
            checked = f"{t.tally.primary_records} of {t.primary_total}"
        result = Text("ok", style="green") if t.tally.consistent else Text("DIVERGES", style="red")
        table.add_row(
            t.name,
            checked,
            str(t.tally.missing),
            str(t.tally.differing),
            str(t.tally.extra),
            result,
        )
    return table


def print_report(console: Console, report: VerifyReport, title: str = "syncd verify") -> None:
    """Print ``report`` for a person: the table, examples, warnings, a verdict line."""
    if report.resumed:
        console.print(f"resumed an interrupted run (saved in the state directory, {PROGRESS_FILE})")
    if report.sample:
        title += f" — random sample of {report.sample} records per table, not a full check"
    console.print(report_table(report, title))
    for t in report.tables:
        examples = t.tally.examples
        if examples["missing"]:
            console.print(Text(f"{t.name}: missing, e.g. {', '.join(examples['missing'])}"))
        if examples["differing"]:
            shown = ", ".join(
                f"{d['key']} ({', '.join(d['fields'])})" for d in examples["differing"]
            )
            console.print(Text(f"{t.name}: differing, e.g. {shown}"))
        for warning in t.warnings:
            console.print(Text(f"warning: {t.name}: {warning}", style="yellow"))
    for line in schema_lines(report):
        console.print(line)
    console.print(verdict(report), soft_wrap=not console.is_terminal)


_SCHEMA_WORDS = {
    "define": ("schema: missing on the secondary", "red"),
    "redefine": ("schema: different on the secondary", "red"),
    "remove": ("schema: removed on the primary, still on the secondary", "red"),
    "archived": ("schema: removed on the primary, kept on the secondary (archived)", ""),
    "unsupported": ("schema: the secondary's server generation cannot hold", "yellow"),
}


def schema_lines(report: VerifyReport) -> list[Text]:
    """One line per kind of schema finding, naming the definitions."""
    lines = []
    for action, (words, style) in _SCHEMA_WORDS.items():
        found = [d.describe() for d in report.schema if d.action == action]
        if found:
            lines.append(Text(f"{words}: {', '.join(found)}", style=style))
    return lines


def verdict(report: VerifyReport) -> Text:
    """The one-line conclusion of ``report``."""
    missing = sum(t.tally.missing for t in report.tables)
    differing = sum(t.tally.differing for t in report.tables)
    extra = sum(t.tally.extra for t in report.tables)
    archived = Text(
        f" ({plural(extra, 'extra record')} on the secondary: archived, deletes are not propagated)"
        if extra
        else ""
    )
    if not report.complete:
        so_far = (
            f" — so far {missing} missing, {differing} differing" if missing or differing else ""
        )
        return Text(
            f"stopped after {plural(report.pages, 'page')}; run `syncd verify` again to resume"
            + so_far
        )
    drift = len(report.schema_drift)
    if drift and all(t.tally.consistent for t in report.tables):
        return Text(
            f"NOT consistent: {plural(drift, 'definition')} missing or different on the "
            "secondary (`syncd verify --repair` applies them)",
            "red",
        )
    if report.consistent:
        return (
            Text("consistent: every primary record is on the secondary, same content", "green")
            + archived
        )
    return (
        Text(f"NOT consistent: {missing} missing, {differing} differing on the secondary", "red")
        + archived
    )
