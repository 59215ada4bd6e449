"""How ``syncd demo`` ends: each secondary's verification, the figures, one verdict.

A secondary "equals the primary" when its verification ran to the end, found
no record missing or differing, and compared as many records per table as
the demo knows the primary holds (what the workload wrote, less the deleted
events): a verification that compared nothing cannot pass. The figures are
printed for a person, then, when the output is not a terminal, once more as
one ``summary: {...}`` JSON line for scripts, logs and tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from syncd.dev.demoplan import Outage, Outages
from syncd.tools.report import print_report
from syncd.tools.verify import VerifyReport
from syncd.words import plural

__all__ = ["DemoResult", "ReadCheck", "equal", "print_result"]


@dataclass(frozen=True)
class ReadCheck:
    """The merged read made during the outages, of the note saved anew as ``v2``."""

    rows: int  # rows the merged read returned
    text: str | None  # the text it read
    paused_text: str | None  # the text the paused secondary still held
    outcomes: dict[str, str]  # each secondary's part: "merged", "primary_only_down"...
    seconds: float

    @property
    def ok(self) -> bool:
        """One row, the primary's, although the paused secondary held an older one."""
        return self.rows == 1 and self.text == "v2" and self.paused_text == "v1"

    def describe(self, killed: str, paused: str) -> str:
        """The event line."""
        parts = ", ".join(f"{n}: {o}" for n, o in sorted(self.outcomes.items()))
        verdict = "the primary's row wins" if self.ok else "NOT the primary's row"
        return (
            f"merged read during the outage ({self.seconds * 1000:.0f} ms): "
            f"{plural(self.rows, 'row')}, text {self.text!r} — {verdict} ({paused}, paused, "
            f"still holds {self.paused_text!r}; {killed} is down) [{parts}]"
        )

    def to_json(self) -> dict[str, Any]:
        """For the summary line."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "text": self.text,
            "paused_text": self.paused_text,
            "outcomes": self.outcomes,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class DemoResult:
    """Everything the demo found, filled in as it runs."""

    writes: int
    expected: dict[str, int]  # records the primary holds, per table
    outages: Outages
    read: ReadCheck | None
    flushed: bool
    metrics: str | None
    reports: dict[str, VerifyReport] = field(default_factory=dict)  # per secondary
    # Per secondary: operations applied, and those superseded in a backlog by a
    # newer write to the same record (sent once, as its newest state).
    applied: dict[str, int] = field(default_factory=dict)
    superseded: dict[str, int] = field(default_factory=dict)


def equal(report: VerifyReport, expected: dict[str, int]) -> bool:
    """Complete, consistent, and every table compared record for record."""
    checked = {t.name: t.tally.primary_records for t in report.tables}
    return report.complete and report.consistent and checked == expected


def _outage_words(outage: Outage | None) -> str:
    if outage is None:
        return "no outage"
    took = outage.drain_seconds
    drained = "not drained" if took is None else f"drained {took:.1f}s after the {outage.back}"
    length = "" if outage.ended is None else f" for {outage.ended - outage.began:.1f}s"
    return (
        f"{outage.how}{length}, peak backlog {plural(outage.peak_backlog, 'operation')} "
        f"({outage.peak_spool} on disk), {drained}"
    )


def summary(result: DemoResult) -> dict[str, Any]:
    """The figures as JSON: writes, expected records, each secondary, the read."""
    secondaries = []
    for name, report in result.reports.items():
        outage = result.outages.by_name.get(name)
        secondaries.append(
            {
                **({"name": name} if outage is None else outage.to_json()),
                "equal": equal(report, result.expected),
                "tables": {
                    t.name: {k: v for k, v in t.tally.to_json().items() if k not in ("examples",)}
                    for t in report.tables
                },
            }
        )
    return {
        "writes": result.writes,
        "flushed": result.flushed,
        "primary_records": result.expected,
        "secondaries": secondaries,
        "merged_read": None if result.read is None else result.read.to_json(),
    }


def _coalesced(result: DemoResult, name: str) -> str:
    """``; applied N (M rewrites coalesced)`` for secondary ``name``, when known."""
    if name not in result.applied:
        return ""
    words = f"; applied {result.applied[name]}"
    superseded = result.superseded.get(name, 0)
    if superseded:
        words += (
            f" ({plural(superseded, 'older write')} of a record replaced by a newer one "
            "while waiting, not sent)"
        )
    return words


def print_result(console: Console, result: DemoResult) -> int:
    """Print every verification, a line per secondary and the summary; 0 when all is well."""
    for name, report in result.reports.items():
        print_report(console, report, f"verify: primary against {name}")
    ok = result.flushed and result.read is not None and result.read.ok
    for name, report in result.reports.items():
        same = equal(report, result.expected)
        ok = ok and same
        checked = sum(t.tally.primary_records for t in report.tables)
        extra = sum(t.tally.extra for t in report.tables)
        verdict = (
            f"equal to the primary, record by record ({plural(checked, 'record')} compared, "
            f"{plural(extra, 'deleted record')} kept there as an archive)"
            if same
            else "DOES NOT equal the primary (see above)"
        )
        outage = _outage_words(result.outages.by_name.get(name))
        console.print(f"{name}: {verdict}; {outage}{_coalesced(result, name)}", soft_wrap=True)
    if result.read is None:
        console.print("the merged read during the outage did not happen", soft_wrap=True)
    if not console.is_terminal:  # for scripts and logs; a person has the lines above
        line = f"summary: {json.dumps(summary(result), sort_keys=True)}"
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    if ok:
        console.print(
            f"every secondary equals the primary: {plural(result.writes, 'write')}, "
            "none lost to the kill or the pause (fewer are applied than written: rewrites "
            "of one record that wait in a backlog are sent once, as its newest state)",
            soft_wrap=True,
        )
    else:
        console.print("the secondaries DO NOT all equal the primary (see above)", soft_wrap=True)
    if result.metrics:
        console.print(f"metrics were served at {result.metrics} while the demo ran", soft_wrap=True)
    return 0 if ok else 1
