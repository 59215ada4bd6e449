"""The spool on real files: order, persistence, crash recovery, damage, memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.files import write_all as real_write_all
from syncd.pipeline.segments import FRAME
from syncd.pipeline.spool import CHECKPOINT_EVERY, Spool, SpoolFull
from syncd.sink.operation import Operation
from syncd.surreal.codec import Datetime, RecordID


def op(seq: int, pad: int = 0) -> Operation:
    """An operation whose seq and key identify it."""
    record = {"id": RecordID("t", seq), "n": seq, "pad": "x" * pad}
    return Operation(table="t", key=f"t:{seq}", record=record, seq=seq)


def segments(directory: Path) -> list[Path]:
    """The segment files, in read order."""
    return sorted(directory.glob("seg-*.spool"))


def drain(spool: Spool, batch: int = 13, *, confirm: bool = True) -> list[int]:
    """Read everything, returning the seqs in the order they came out.

    Confirms each batch as the queue would once it is applied, unless told not to.
    """
    seqs: list[int] = []
    while got := spool.read(batch):
        seqs.extend(o.seq for o in got)
        if confirm:
            spool.confirm(max(seqs))
    return seqs


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    """An open spool with small segments, closed after the test."""
    s = Spool(tmp_path / "spool", segment_bytes=2048)
    s.open()
    yield s
    s.close()


def test_fifo_across_many_segments(spool: Spool) -> None:
    for start in range(1, 501, 7):
        spool.append([op(i, pad=20) for i in range(start, min(start + 7, 501))])
    assert len(spool) == 500
    assert len(segments(spool.directory)) > 10
    assert drain(spool) == list(range(1, 501))
    assert len(spool) == 0 and spool.bytes == 0
    assert segments(spool.directory) == []  # fully read segments are deleted


def test_empty_read_and_append(spool: Spool) -> None:
    assert spool.read(10) == []
    spool.append([])
    assert len(spool) == 0 and spool.max_seq == 0 and spool.head is None


def test_persistence_across_reopen(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    s = Spool(directory, segment_bytes=1024)
    s.open()
    s.append([op(i, pad=30) for i in range(1, 101)])
    assert [o.seq for o in s.read(30)] == list(range(1, 31))
    s.confirm(30)
    length, size = len(s), s.bytes
    s.close()
    s.close()  # idempotent
    assert len(s) == 0

    s2 = Spool(directory, segment_bytes=1024)
    s2.open()
    try:
        assert (len(s2), s2.bytes, s2.max_seq) == (length, size, 100)
        assert drain(s2) == list(range(31, 101))  # the read position survived
        s2.append([op(101)])
    finally:
        s2.close()
    s3 = Spool(directory)
    s3.open()
    try:
        assert drain(s3) == [101]
    finally:
        s3.close()
    assert oct(directory.stat().st_mode & 0o777) == "0o700"


def test_max_seq_survives_a_drained_spool(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    s.open()
    s.append([op(5), op(50), op(7)])
    assert s.max_seq == 50
    drain(s)
    s.close()
    s.open()
    try:
        assert (len(s), s.max_seq) == (0, 50)
    finally:
        s.close()


def test_bytes_counts_frames(spool: Spool) -> None:
    ops = [op(i, pad=i) for i in range(1, 40)]
    spool.append(ops)
    assert spool.bytes == sum(FRAME.size + len(o.to_bytes()) for o in ops)
    spool.read(39)
    # Read, not confirmed: still on disk, and counted.
    assert spool.bytes == sum(FRAME.size + len(o.to_bytes()) for o in ops)
    assert (len(spool), spool.unconfirmed) == (0, 39)
    spool.confirm(9)
    assert spool.bytes == sum(FRAME.size + len(o.to_bytes()) for o in ops[9:])
    spool.confirm(39)
    assert (spool.bytes, spool.unconfirmed) == (0, 0)


def test_surrealdb_types_survive(spool: Spool) -> None:
    when = Datetime.from_iso("2024-05-01T12:30:15.123456789Z")
    record = {
        "id": RecordID("user", "alice"),
        "friend": RecordID("user", 42),
        "when": when,
        "gone": None,
        "price": Decimal("12.50"),
        "nested": {"list": [1, "two", {"deep": RecordID("tag", "x")}], "empty": {}},
    }
    original = Operation("user", "user:alice", record, source="cdc", attempts=2, seq=9, position=77)
    spool.append([original])
    (back,) = spool.read(1)
    assert back == original
    assert isinstance(back.record["id"], RecordID) and back.record["when"] == when
    assert back.record["nested"]["list"][2]["deep"] == RecordID("tag", "x")


def test_torn_tail_is_truncated(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    s.open()
    s.append([op(i, pad=10) for i in range(1, 21)])
    s.close()
    (seg,) = segments(tmp_path)
    with seg.open("r+b") as f:  # crash in the middle of the last frame
        f.truncate(seg.stat().st_size - 5)
    with capture_logs() as logs:
        s.open()
    try:
        events = [e for e in logs if e["event"] == "spool_tail_truncated"]
        assert len(events) == 1 and events[0]["file"] == seg.name
        assert len(s) == 19 and s.max_seq == 20  # appended once, so "ever appended"
        assert list((tmp_path / "corrupt").iterdir())  # the cut bytes are kept
        s.append([op(20)])
        assert drain(s) == list(range(1, 21))
    finally:
        s.close()


def test_torn_segment_header_is_removed_and_reported_lost(tmp_path: Path) -> None:
    (tmp_path / f"seg-{10**12:020d}.spool").write_bytes(b"SYNC")
    s = Spool(tmp_path)
    with capture_logs() as logs:
        s.open()
    try:
        # Its first write held frames too (the header goes out with them).
        assert [e["event"] for e in logs] == ["spool_tail_truncated", "spool_frames_lost"]
        assert segments(tmp_path) == [] and s.lost == 1
        s.append([op(1)])
        assert drain(s) == [1]
    finally:
        s.close()


def test_an_empty_segment_is_removed_quietly(tmp_path: Path) -> None:
    (tmp_path / f"seg-{10**12:020d}.spool").write_bytes(b"")
    s = Spool(tmp_path)
    with capture_logs() as logs:
        s.open()
    try:
        assert logs == [] and s.lost == 0
        assert segments(tmp_path) == []
        s.append([op(1)])
        assert drain(s) == [1]
    finally:
        s.close()


def test_garbage_state_file_is_ignored(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    s.open()
    s.append([op(1), op(2)])
    s.close()
    (tmp_path / "head.json").write_text("{not json")
    with capture_logs() as logs:
        s.open()
    try:
        assert "spool_state_ignored" in [e["event"] for e in logs]
        assert drain(s) == [1, 2]
    finally:
        s.close()


def reopened(spool: Spool) -> Spool:
    """``spool`` closed (as at a clean stop) and opened again: what the next start sees."""
    spool.close()
    spool.open()
    return spool


def frame_bytes(ops: list[Operation]) -> int:
    return sum(FRAME.size + len(o.to_bytes()) for o in ops)


def test_read_but_unconfirmed_comes_again_after_reopen(spool: Spool) -> None:
    spool.append([op(i, pad=30) for i in range(1, 101)])
    assert [o.seq for o in spool.read(60)] == list(range(1, 61))
    assert (len(spool), spool.unconfirmed) == (40, 60)
    assert (len(reopened(spool)), spool.unconfirmed) == (100, 0)
    assert drain(spool) == list(range(1, 101))


def test_confirmed_does_not_come_again(spool: Spool) -> None:
    spool.append([op(i, pad=30) for i in range(1, 101)])
    spool.read(60)
    spool.confirm(60)
    assert spool.unconfirmed == 0
    assert drain(reopened(spool)) == list(range(61, 101))


def test_partial_confirm_inside_a_segment(tmp_path: Path) -> None:
    s = Spool(tmp_path)  # one segment for everything
    s.open()
    try:
        ops = [op(i, pad=i) for i in range(1, 11)]
        s.append(ops)
        s.read(8)
        s.confirm(3)
        assert (len(s), s.unconfirmed, s.bytes) == (2, 5, frame_bytes(ops[3:]))
        s.confirm(2)  # going back is a no-op
        assert s.bytes == frame_bytes(ops[3:])
        assert (len(reopened(s)), s.bytes) == (7, frame_bytes(ops[3:]))
        assert drain(s, confirm=False) == list(range(4, 11))
        assert len(segments(tmp_path)) == 1
    finally:
        s.close()


def test_segments_are_deleted_only_once_confirmed(spool: Spool) -> None:
    ops = [op(i, pad=40) for i in range(1, 101)]
    spool.append(ops)
    files = segments(spool.directory)
    assert len(files) > 3
    assert drain(spool, confirm=False) == list(range(1, 101))
    assert segments(spool.directory) == files  # fully read, nothing confirmed
    assert spool.bytes == frame_bytes(ops)
    spool.confirm(50)
    left = segments(spool.directory)
    assert files[0] not in left and left == files[-len(left) :]
    assert spool.bytes == frame_bytes(ops[50:])  # the first kept file: from seq 51 on
    spool.confirm(100)
    assert (segments(spool.directory), spool.bytes, spool.unconfirmed) == ([], 0, 0)


def test_tail_read_to_its_end_keeps_taking_appends(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    s.open()
    try:
        s.append([op(1), op(2)])
        assert drain(s, confirm=False) == [1, 2]
        s.append([op(3)])  # into the same file: it is still the tail
        assert len(segments(tmp_path)) == 1
        s.confirm(2)
        assert drain(s, confirm=False) == [3]
        s.confirm(3)
        assert segments(tmp_path) == []
        s.append([op(4)])  # the tail went with its file: a new one is rolled
        assert drain(reopened(s)) == [4]
    finally:
        s.close()


def test_confirm_stops_at_the_first_higher_seq(spool: Spool) -> None:
    spool.append([op(5), op(50), op(7)])  # out of order: never the queue's way, but safe
    spool.read(3)
    spool.confirm(10)
    assert spool.unconfirmed == 2  # 50 holds 7 back: one offset per file
    assert drain(reopened(spool)) == [50, 7]


def test_a_failed_append_leaves_nothing_behind(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool.append([op(1, pad=40)])
    sizes = {p: p.stat().st_size for p in segments(spool.directory)}
    state = (len(spool), spool.bytes)
    calls = 0

    def write_all(fd: int, data: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # the third segment's write: two were written already
            os.write(fd, data[:20])
            raise OSError(28, "No space left on device")
        real_write_all(fd, data)

    monkeypatch.setattr("syncd.pipeline.spool.write_all", write_all)
    with pytest.raises(OSError):
        spool.append([op(i, pad=40) for i in range(2, 101)])
    assert calls == 3
    assert {p: p.stat().st_size for p in segments(spool.directory)} == sizes
    assert (len(spool), spool.bytes) == state
    monkeypatch.undo()
    spool.append([op(i, pad=40) for i in range(2, 101)])  # the queue's retry
    again = reopened(spool)
    assert drain(again) == list(range(1, 101))  # each seq once
    assert again.lost == 0  # the segments it rolled and removed are not "missing"


def test_a_failed_delivering_append_leaves_nothing_behind(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool.append([op(1, pad=40)], deliver=1)
    state = (len(spool), spool.unconfirmed, spool.bytes, spool.head)
    calls = 0

    def write_all(fd: int, data: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # a later segment's write, the first two delivered already
            raise OSError(28, "No space left on device")
        real_write_all(fd, data)

    monkeypatch.setattr("syncd.pipeline.spool.write_all", write_all)
    with pytest.raises(OSError):
        spool.append([op(i, pad=40) for i in range(2, 101)], deliver=60)
    assert (len(spool), spool.unconfirmed, spool.bytes, spool.head) == state
    monkeypatch.undo()
    spool.append([op(i, pad=40) for i in range(2, 101)], deliver=60)
    assert (len(spool), spool.unconfirmed) == (39, 61)
    assert spool.head is not None and spool.head[0] == 62
    with pytest.raises(RuntimeError):  # delivering past unread operations would reorder them
        spool.append([op(101)], deliver=1)
    assert [o.seq for o in spool.read(100)] == list(range(62, 101))
    assert drain(reopened(spool)) == list(range(1, 101))  # each seq once


def test_delivered_operations_come_again_after_a_restart(spool: Spool) -> None:
    spool.append([op(i) for i in range(1, 11)], deliver=6)
    assert (len(spool), spool.unconfirmed, spool.head and spool.head[0]) == (4, 6, 7)
    spool.confirm(3)  # finished in memory: released
    assert [o.seq for o in spool.read(10)] == [7, 8, 9, 10]
    assert drain(reopened(spool)) == [4, 5, 6, 7, 8, 9, 10]


def test_max_bytes_refuses_an_append_whole(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_bytes=2000)
    s.open()
    try:
        s.append([op(i, pad=100) for i in range(1, 30)])  # an empty spool takes any append
        with pytest.raises(SpoolFull) as caught:
            s.append([op(30)])
        assert caught.value.errno == 28 and not s.has_room()
        drain(s)
        assert s.has_room()
        s.append([op(30)])
    finally:
        s.close()


def test_misuse_raises(tmp_path: Path) -> None:
    s = Spool(tmp_path)
    with pytest.raises(RuntimeError):
        s.append([op(1)])
    s.open()
    try:
        with pytest.raises(RuntimeError):
            s.open()
    finally:
        s.close()


CHILD = """
import os, signal, sys
from pathlib import Path
from syncd.surreal.codec import Datetime, RecordID
from syncd.sink.operation import Operation
from syncd.pipeline.spool import Spool

s = Spool(Path(sys.argv[1]), segment_bytes=64 * 1024)
s.open()
n = int(sys.argv[2])
for start in range(1, n + 1, 100):
    s.append([Operation("t", f"t:{i}", {"id": RecordID("t", i)}, seq=i)
              for i in range(start, min(start + 100, n + 1))])
read = 0
while read < int(sys.argv[3]):
    got = s.read(100)
    read += len(got)
    if sys.argv[4] == "confirm":
        s.confirm(got[-1].seq)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    "n, read, confirm", [(3000, 0, "confirm"), (3000, 1500, "confirm"), (3000, 1500, "no")]
)
def test_sigkill_loses_nothing(tmp_path: Path, n: int, read: int, confirm: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(n), str(read), confirm], check=False
    )
    assert proc.returncode == -9
    s = Spool(tmp_path)
    s.open()
    try:
        # Confirmed since the last checkpoint may come again (at-least-once), never
        # more; read but unconfirmed comes again in full.
        done = read if confirm == "confirm" else 0
        assert n - done <= len(s) <= n - done + CHECKPOINT_EVERY
        assert s.max_seq == n
        seqs = drain(s, batch=500)
        assert seqs == list(range(n - len(seqs) + 1, n + 1))
    finally:
        s.close()


def test_threads_append_and_read_concurrently(spool: Spool) -> None:
    got: list[int] = []
    done = threading.Event()

    def writer(base: int) -> None:
        for start in range(0, 2000, 50):
            spool.append([op(base + i) for i in range(start, start + 50)])

    def reader() -> None:
        while not done.is_set() or len(spool):
            got.extend(o.seq for o in spool.read(64))
            spool.sync()

    threads = [threading.Thread(target=writer, args=(b,)) for b in (1, 10_000)]
    consumer = threading.Thread(target=reader)
    consumer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    consumer.join()
    assert sorted(got) == sorted([*range(1, 2001), *range(10_000, 12_000)])
    for base in (1, 10_000):  # each writer's ops stay in its order
        mine = [s for s in got if base <= s < base + 2000]
        assert mine == sorted(mine)


class _Encoded:
    """Stands in for an Operation whose CBOR is already made (append needs only these)."""

    def __init__(self, seq: int, payload: bytes) -> None:
        self.seq = seq
        self.enqueued_at = 0.0
        self.payload = payload

    def to_bytes(self) -> bytes:
        return self.payload


class _Undecoded:
    """Stands in for Operation on the read side: hands back the payload as is."""

    @staticmethod
    def from_bytes(data: bytes) -> bytes:
        return data


def test_memory_stays_bounded_while_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CBOR costs ~50 us an op each way; the spool's own memory is what is measured here.
    payload = op(0, pad=250).to_bytes()
    total = 50_000
    s = Spool(tmp_path, segment_bytes=4 * 1024 * 1024)
    s.open()
    try:
        for start in range(0, total, 10_000):
            ops = [_Encoded(i, payload) for i in range(start + 1, start + 10_001)]
            s.append(ops)  # type: ignore[arg-type]
        assert len(s) == total and s.max_seq == total
        on_disk = s.bytes
        monkeypatch.setattr("syncd.pipeline.spool.Operation", _Undecoded)
        tracemalloc.start()
        try:
            count = 0
            while got := s.read(1000):
                count += len(got)
                s.confirm(count)  # as the queue does: unconfirmed reads cost 16 bytes each
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count == total and len(s) == 0
        # Holding it all would take on_disk bytes (~15 MB); a batch is ~0.3 MB.
        assert peak < 4 * 1024 * 1024 < on_disk, (peak, on_disk)
    finally:
        s.close()


def test_throughput_report(tmp_path: Path) -> None:
    """Not asserted: prints ops/s for ~300-byte records (run with -s to see it)."""
    ops = [op(i, pad=250) for i in range(1, 5001)]
    s = Spool(tmp_path)
    s.open()
    try:
        t0 = time.perf_counter()
        for start in range(0, len(ops), 500):
            s.append(ops[start : start + 500])
        t1 = time.perf_counter()
        drain(s, batch=500)
        t2 = time.perf_counter()
        size = len(ops[0].to_bytes()) + FRAME.size
        print(
            json.dumps(
                {
                    "append_ops_s": round(len(ops) / (t1 - t0)),
                    "read_ops_s": round(len(ops) / (t2 - t1)),
                    "bytes_per_op": size,
                }
            )
        )
    finally:
        s.close()
    assert os.listdir(tmp_path)  # head.json stays
