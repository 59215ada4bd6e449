"""A verification rendered for a person: the table, the examples, the verdict line."""

from __future__ import annotations

from rich.console import Console

from syncd.tools.compare import TableTally
from syncd.tools.report import print_report, report_table, verdict
from syncd.tools.verify import PROGRESS_FILE, TableReport, VerifyReport


def tally(primary: int = 10, missing: int = 0, differing: int = 0, extra: int = 0) -> TableTally:
    t = TableTally(primary_records=primary, missing=missing, differing=differing, extra=extra)
    t.examples["missing"] = [f"k{i}" for i in range(min(missing, 2))]
    t.examples["differing"] = [{"key": "d1", "fields": ["a", "b"]}] if differing else []
    return t


def rendered(report: VerifyReport, title: str = "syncd verify") -> str:
    console = Console(width=200, record=True, force_terminal=False)
    print_report(console, report, title)
    return console.export_text()


def test_a_consistent_report() -> None:
    report = VerifyReport(tables=[TableReport("events", tally(10))])
    assert verdict(report).plain == (
        "consistent: every primary record is on the secondary, same content"
    )
    assert verdict(report).style == "green"
    text = rendered(report)
    assert "events" in text and "ok" in text and "DIVERGES" not in text
    assert "random sample" not in text and "resumed" not in text


def test_extras_are_archived_not_failures() -> None:
    report = VerifyReport(tables=[TableReport("events", tally(10, extra=1))])
    assert verdict(report).plain.endswith(
        "same content (1 extra record on the secondary: archived, deletes are not propagated)"
    )
    three = VerifyReport(
        tables=[TableReport("a", tally(extra=2)), TableReport("b", tally(extra=1))]
    )
    assert "(3 extra records on the secondary" in verdict(three).plain


def test_a_diverging_report_names_counts_and_examples() -> None:
    report = VerifyReport(
        tables=[
            TableReport("events", tally(10, missing=2, differing=1), warnings=["slow table"]),
            TableReport("users", tally(5)),
        ]
    )
    line = verdict(report)
    assert line.plain == "NOT consistent: 2 missing, 1 differing on the secondary"
    assert line.style == "red"
    text = rendered(report)
    assert "DIVERGES" in text
    assert "events: missing, e.g. k0, k1" in text
    assert "events: differing, e.g. d1 (a, b)" in text
    assert "warning: events: slow table" in text
    assert "users: missing" not in text


def test_an_interrupted_run_says_how_to_resume() -> None:
    report = VerifyReport(tables=[TableReport("e", tally(missing=1))], complete=False, pages=1)
    assert verdict(report).plain == (
        "stopped after 1 page; run `syncd verify` again to resume — so far 1 missing, 0 differing"
    )
    clean = VerifyReport(tables=[TableReport("e", tally())], complete=False, pages=3)
    assert verdict(clean).plain == "stopped after 3 pages; run `syncd verify` again to resume"


def test_a_resumed_sample_run_says_so() -> None:
    report = VerifyReport(
        tables=[TableReport("events", tally(20), primary_total=1000, secondary_total=998)],
        resumed=True,
        sample=20,
    )
    text = rendered(report, "check")
    assert f"resumed an interrupted run (saved in the state directory, {PROGRESS_FILE})" in text
    assert "check — random sample of 20 records per table, not a full check" in text
    assert "20 of 1000" in text


def test_the_table_has_a_row_per_table() -> None:
    table = report_table(
        VerifyReport(tables=[TableReport("a", tally(1)), TableReport("b", tally(2, missing=1))]),
        "t",
    )
    assert table.row_count == 2
    assert [c.header for c in table.columns] == [
        "table", "checked", "missing", "differing", "extra (archived)", "result",
    ]  # fmt: skip
