"""The dead-letter file on real files: round trip, permissions, damage, atomic rewrite."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from decimal import Decimal
from pathlib import Path

import pytest

import syncd.pipeline.deadletter as deadletter_module
from syncd.errors import DeadLetterError
from syncd.pipeline.deadletter import (
    DeadLetter,
    DeadLetterFile,
    filter_letters,
    one_line,
    parse_line,
)
from syncd.sink.operation import Operation
from syncd.surreal.codec import Datetime, RecordID

T0 = 1_700_000_000.25


def op(n: int, table: str = "user") -> Operation:
    """An operation with SurrealDB types in it."""
    record = {
        "id": RecordID(table, n),
        "owner": RecordID("org", "acme"),
        "at": Datetime.from_iso("2024-01-02T03:04:05.678901234Z"),
        "price": Decimal("9.99"),
        "none": None,
        "nested": {"tags": ["a", {"b": RecordID("tag", "b")}]},
    }
    return Operation(
        table, f"{table}:{n}", record, "cdc", enqueued_at=T0 - 100, attempts=5, seq=n, position=n
    )


@pytest.fixture
def dlq(tmp_path: Path) -> DeadLetterFile:
    """A dead-letter file that does not exist yet."""
    return DeadLetterFile(tmp_path / "state" / "deadletters.jsonl")


def test_missing_file_is_empty(dlq: DeadLetterFile) -> None:
    assert dlq.read() == ([], [])
    assert dlq.count() == 0
    assert dlq.remove([1]) == 0
    assert dlq.purge() == 0
    assert not dlq.path.exists()


def test_round_trip_keeps_exact_types(dlq: DeadLetterFile) -> None:
    original = op(1)
    dlq.append(original, "boom", first_failed_at=T0, last_failed_at=T0 + 60)
    dlq.append(op(2, "order"), "second", first_failed_at=T0)
    (first, second), problems = dlq.read()
    assert problems == []
    assert first.op == original and first.line_no == 1
    assert isinstance(first.op.record["owner"], RecordID)
    assert first.op.record["price"] == Decimal("9.99")
    assert first.op.record["nested"]["tags"][1]["b"] == RecordID("tag", "b")
    assert (first.error, first.attempts) == ("boom", 5)
    assert first.first_failed_at == pytest.approx(T0) and first.last_failed_at == pytest.approx(
        T0 + 60
    )
    assert second.line_no == 2 and second.op.table == "order"
    assert second.last_failed_at >= second.first_failed_at  # defaults to now
    assert dlq.count() == 2


def test_line_schema_is_readable(dlq: DeadLetterFile) -> None:
    dlq.append(op(7), "line one\nline two\t  three", first_failed_at=T0, last_failed_at=T0)
    line = json.loads(dlq.path.read_text())
    assert line["v"] == 1
    assert (line["table"], line["key"], line["record_id"], line["source"]) == (
        "user",
        "user:7",
        "user:7",
        "cdc",
    )
    assert line["error"] == "line one line two three"
    assert line["first_failed_at"].startswith("2023-11-14T22:13:20.25")
    assert line["first_failed_at"].endswith("+00:00")
    assert line["record"]["owner"] == "org:acme" and line["record"]["none"] is None
    assert Operation.from_bytes(base64.b64decode(line["payload"])) == op(7)


def test_error_is_truncated() -> None:
    assert len(one_line("x" * 5000)) == 500
    assert one_line("a\r\nb") == "a b"


def test_file_mode_is_0600_whatever_the_umask(dlq: DeadLetterFile) -> None:
    old = os.umask(0)
    try:
        dlq.append(op(1), "e", first_failed_at=T0)
    finally:
        os.umask(old)
    assert stat.S_IMODE(dlq.path.stat().st_mode) == 0o600
    dlq.remove([1])
    assert stat.S_IMODE(dlq.path.stat().st_mode) == 0o600


def _with_garbage(dlq: DeadLetterFile) -> list[bytes]:
    """Entries on lines 1, 3, 7; garbage of every kind on 2, 4, 5, 6, 8 (blank on 9)."""
    dlq.append(op(1), "e1", first_failed_at=T0)
    good = json.loads(dlq.path.read_bytes())
    missing = {k: v for k, v in good.items() if k != "error"}
    bad_b64 = {**good, "payload": "%%% not base64 %%%"}
    bad_cbor = {**good, "payload": base64.b64encode(b"\xff\x00garbage").decode()}
    with dlq.path.open("ab") as f:
        f.write(b"this is not json\n")
    dlq.append(op(3), "e3", first_failed_at=T0)
    with dlq.path.open("ab") as f:
        for obj in (missing, bad_b64, bad_cbor):
            f.write(json.dumps(obj).encode() + b"\n")
    dlq.append(op(7), "e7", first_failed_at=T0)
    with dlq.path.open("ab") as f:
        f.write(b"\xff\xfe not utf-8\n\n")
    return dlq.path.read_bytes().split(b"\n")


def test_malformed_lines_are_reported_and_kept(dlq: DeadLetterFile) -> None:
    before = _with_garbage(dlq)
    entries, problems = dlq.read()
    assert [e.line_no for e in entries] == [1, 3, 7]
    assert [e.op.seq for e in entries] == [1, 3, 7]
    assert [no for no, _ in problems] == [2, 4, 5, 6, 8]
    reasons = dict(problems)
    assert reasons[2] == "not JSON" and "'error'" in reasons[4]
    assert "payload" in reasons[5] and "payload" in reasons[6]

    assert dlq.remove([3, 2, 4, 99]) == 1  # malformed 2 and 4 are not removable
    after = dlq.path.read_bytes().split(b"\n")
    assert after == before[:2] + before[3:]  # byte for byte, line 3 gone
    entries, problems = dlq.read()
    assert [e.op.seq for e in entries] == [1, 7]
    assert [no for no, _ in problems] == [2, 3, 4, 5, 7]


def test_purge_keeps_malformed_lines(dlq: DeadLetterFile) -> None:
    _with_garbage(dlq)
    assert dlq.purge() == 3
    entries, problems = dlq.read()
    assert entries == [] and len(problems) == 5
    assert dlq.purge() == 0


def test_torn_last_line_does_not_swallow_the_next(dlq: DeadLetterFile) -> None:
    dlq.append(op(1), "e", first_failed_at=T0)
    with dlq.path.open("ab") as f:
        f.write(b'{"v": 1, "tab')  # a crash mid-append
    dlq.append(op(2), "e", first_failed_at=T0)
    entries, problems = dlq.read()
    assert [e.op.seq for e in entries] == [1, 2]
    assert [no for no, _ in problems] == [2]


def test_remove_is_atomic(dlq: DeadLetterFile, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(1, 4):
        dlq.append(op(n), "e", first_failed_at=T0)
    before = dlq.path.read_bytes()

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(DeadLetterError):
        dlq.remove([2])
    assert dlq.path.read_bytes() == before
    assert sorted(p.name for p in dlq.path.parent.iterdir()) == [dlq.path.name]  # no tmp left
    monkeypatch.undo()
    assert dlq.remove([2]) == 1
    assert [e.op.seq for e in dlq.read()[0]] == [1, 3]


def test_appends_after_a_rewrite_land_in_the_new_file(dlq: DeadLetterFile) -> None:
    dlq.append(op(1), "e", first_failed_at=T0)
    other = DeadLetterFile(dlq.path)  # e.g. the CLI, while the daemon keeps appending
    threads = [
        threading.Thread(
            target=lambda n=n: dlq.append(op(n), "e", first_failed_at=T0),
        )
        for n in range(2, 30)
    ]
    for t in threads:
        t.start()
    removed = other.remove([1])
    for t in threads:
        t.join()
    assert removed == 1
    assert sorted(e.op.seq for e in dlq.read()[0]) == list(range(2, 30))


def test_parse_line_rejects_unknown_version() -> None:
    assert parse_line(1, b'{"v": 2}').startswith("field")  # type: ignore[union-attr]
    line = json.dumps(
        {
            "v": 2,
            "table": "t",
            "key": "k",
            "error": "e",
            "attempts": 1,
            "first_failed_at": "2024-01-01T00:00:00+00:00",
            "last_failed_at": "2024-01-01T00:00:00+00:00",
            "payload": "",
        }
    )
    assert parse_line(1, line.encode()) == "unsupported version 2"


def _letter(line_no: int, table: str, error: str, last: float) -> DeadLetter:
    return DeadLetter(line_no, op(line_no, table), error, 1, last - 10, last)


def test_filters() -> None:
    letters = [
        _letter(1, "user", "Field 'age' must be a number", T0),
        _letter(2, "order", "Index conflict on email", T0 + 100),
        _letter(3, "user", "index CONFLICT again", T0 + 200),
    ]

    def lines(**kw: object) -> list[int]:
        return [x.line_no for x in filter_letters(letters, **kw)]  # type: ignore[arg-type]

    assert lines() == [1, 2, 3]
    assert lines(table="user") == [1, 3]
    assert lines(error_contains="index conflict") == [2, 3]
    assert lines(older_than=T0 + 150) == [1, 2]
    assert lines(newer_than=T0 + 50) == [2, 3]
    assert lines(table="user", error_contains="conflict", newer_than=T0) == [3]
    assert lines(table="nope") == []


# --------------------------------------------------------------------------- live count


def test_live_count_follows_the_file_as_other_processes_change_it(dlq: DeadLetterFile) -> None:
    assert dlq.live_count() == 0
    for n in range(3):
        dlq.append(op(n), "refused", first_failed_at=T0)
    assert dlq.live_count() == 3
    # Another process (a second DeadLetterFile on the same path) appends, then purges.
    other = DeadLetterFile(dlq.path)
    other.append(op(7), "refused", first_failed_at=T0)
    assert dlq.live_count() == 4
    assert other.remove([1]) == 1
    assert dlq.live_count() == 3
    with dlq.path.open("ab") as f:
        f.write(b"{not json\n\n")
    assert dlq.live_count() == 3  # malformed and blank lines are not entries
    other.purge()
    assert dlq.live_count() == 0
    dlq.path.unlink()
    assert dlq.live_count() == 0


def test_live_count_parses_only_what_was_appended(
    dlq: DeadLetterFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        dlq.append(op(n), "refused", first_failed_at=T0)
    assert dlq.live_count() == 5
    parsed: list[bytes] = []
    real = deadletter_module.parse_line

    def counting(line_no: int, raw: bytes) -> DeadLetter | str:
        parsed.append(raw)
        return real(line_no, raw)

    monkeypatch.setattr(deadletter_module, "parse_line", counting)
    assert dlq.live_count() == 5 and parsed == []  # unchanged: not even opened
    dlq.append(op(9), "refused", first_failed_at=T0)
    assert dlq.live_count() == 6 and len(parsed) == 1


def test_live_count_waits_for_a_torn_last_line(dlq: DeadLetterFile) -> None:
    dlq.append(op(1), "refused", first_failed_at=T0)
    whole = dlq.path.read_bytes()
    with dlq.path.open("ab") as f:
        f.write(whole[:40])  # a line being written, or torn by a crash
    assert dlq.live_count() == 1
    with dlq.path.open("ab") as f:
        f.write(whole[40:])
    assert dlq.live_count() == 2


def test_live_count_tells_a_rewrite_that_reused_the_inode(dlq: DeadLetterFile) -> None:
    for n in range(4):
        dlq.append(op(n), "refused", first_failed_at=T0)
    assert dlq.live_count() == 4
    # Rewritten in place (same inode), longer than before, no entry in the first part.
    size = dlq.path.stat().st_size
    with dlq.path.open("r+b") as f:
        f.write(b"\n" * size)
    dlq.append(op(8), "refused", first_failed_at=T0)
    assert dlq.live_count() == 1


def test_the_same_record_and_reason_is_one_entry(dlq: DeadLetterFile) -> None:
    assert dlq.append(op(1), "refused", first_failed_at=T0, last_failed_at=T0)
    assert dlq.append(op(2), "refused", first_failed_at=T0)
    before = dlq.path.read_bytes()
    # The same record refused for the same reason again (a backfill run twice): nothing added.
    assert not dlq.append(op(1), "refused", first_failed_at=T0 + 5)
    assert dlq.path.read_bytes() == before
    # Another reason is another entry.
    assert dlq.append(op(1), "other reason", first_failed_at=T0)
    assert dlq.count() == 3


def test_a_changed_record_replaces_its_entry_in_place(dlq: DeadLetterFile) -> None:
    dlq.append(op(1), "refused", first_failed_at=T0, last_failed_at=T0)
    dlq.append(op(2), "refused", first_failed_at=T0)
    newer = Operation("user", "user:1", {"id": RecordID("user", 1), "v": 2}, "backfill")
    assert not dlq.append(newer, "refused", first_failed_at=T0 + 50, last_failed_at=T0 + 60)
    (first, second), problems = dlq.read()
    assert problems == [] and second.op == op(2)
    assert first.op == newer  # the newest state is what a replay sends
    assert first.first_failed_at == pytest.approx(T0)  # when it first failed stays
    assert first.last_failed_at == pytest.approx(T0 + 60)
    assert stat.S_IMODE(dlq.path.stat().st_mode) == 0o600
