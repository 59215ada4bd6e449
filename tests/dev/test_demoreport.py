"""How the demo decides that a secondary equals the primary, and its exit status."""

from __future__ import annotations

import io
import json

from rich.console import Console

from syncd.dev.demoplan import Outages
from syncd.dev.demoreport import DemoResult, ReadCheck, equal, print_result
from syncd.tools.compare import TableTally
from syncd.tools.verify import TableReport, VerifyReport

EXPECTED = {"kv_memories": 141, "events": 895}
GOOD_READ = ReadCheck(1, "v2", "v1", {"archive": "primary_only_down", "analytics": "merged"}, 0.01)


def report(**tallies: TableTally) -> VerifyReport:
    return VerifyReport(tables=[TableReport(name, tally) for name, tally in tallies.items()])


def complete() -> VerifyReport:
    return report(kv_memories=TableTally(141, 141), events=TableTally(895, 900, extra=5))


def run(reports: dict[str, VerifyReport], read: ReadCheck | None = GOOD_READ) -> tuple[int, str]:
    result = DemoResult(6000, EXPECTED, Outages(), read, flushed=True, metrics=None)
    result.reports = reports
    buffer = io.StringIO()
    code = print_result(Console(file=buffer, width=200), result)
    return code, buffer.getvalue()


def test_equal_needs_every_record_compared_not_only_no_difference() -> None:
    assert equal(complete(), EXPECTED)
    # Consistent, but compared too few: a verification that read nothing passes nothing.
    assert not equal(report(kv_memories=TableTally(141), events=TableTally(0)), EXPECTED)
    assert not equal(report(kv_memories=TableTally(141)), EXPECTED)  # a table not checked
    assert not equal(
        report(kv_memories=TableTally(141), events=TableTally(895, missing=1)), EXPECTED
    )
    unfinished = complete()
    unfinished.complete = False
    assert not equal(unfinished, EXPECTED)


def test_every_secondary_equal_exits_0() -> None:
    code, out = run({"archive": complete(), "analytics": complete()})
    assert code == 0, out
    assert "archive: equal to the primary, record by record (1036 records compared" in out
    assert "every secondary equals the primary: 6000 writes" in out
    summary = json.loads(next(x for x in out.splitlines() if x.startswith("summary: "))[9:])
    assert [s["equal"] for s in summary["secondaries"]] == [True, True]


def test_one_secondary_behind_exits_1_and_says_which() -> None:
    behind = report(kv_memories=TableTally(141), events=TableTally(895, missing=3, differing=1))
    code, out = run({"archive": complete(), "analytics": behind})
    assert code == 1
    assert "analytics: DOES NOT equal the primary" in out
    assert "the secondaries DO NOT all equal the primary" in out
    assert "every secondary equals the primary" not in out


def test_a_merged_read_that_returned_the_stale_row_exits_1() -> None:
    stale = ReadCheck(1, "v1", "v1", {"analytics": "merged"}, 0.01)
    assert not stale.ok
    assert "NOT the primary's row" in stale.describe("archive", "analytics")
    code, _ = run({"archive": complete(), "analytics": complete()}, read=stale)
    assert code == 1
    code, _ = run({"archive": complete(), "analytics": complete()}, read=None)
    assert code == 1


def test_fewer_applied_than_written_is_explained() -> None:
    result = DemoResult(6030, EXPECTED, Outages(), GOOD_READ, flushed=True, metrics=None)
    result.reports = {"archive": complete()}
    result.applied, result.superseded = {"archive": 5736}, {"archive": 294}
    buffer = io.StringIO()
    assert print_result(Console(file=buffer, width=300), result) == 0
    out = buffer.getvalue()
    assert "applied 5736 (294 older writes of a record replaced by a newer one while waiting" in out
    assert "none lost to the kill or the pause (fewer are applied than written" in out
