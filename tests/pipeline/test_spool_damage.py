"""Damage to the spool's files costs the damaged frames and nothing else.

Every test writes a real spool, damages its files on disk the way a bad disk,
a stray write or a crash would, opens it again and drains it.
"""

from __future__ import annotations

import mmap
import os
import random
import struct
import zlib
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from surrealdb import RecordID

from syncd.pipeline.segments import FRAME, HEADER, Frame, walk
from syncd.pipeline.spool import Spool
from syncd.sink.operation import Operation


def op(seq: int, pad: int = 40) -> Operation:
    """An operation whose seq and key identify it."""
    return Operation("t", f"t:{seq}", {"id": RecordID("t", seq), "pad": "x" * pad}, seq=seq)


class Lost:
    """Counts what the spool reports lost (stands in for the metric's ``inc``)."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, frames: int) -> None:
        self.total += frames


def written(tmp_path: Path, count: int = 60, segment_bytes: int = 1024) -> list[Path]:
    """A closed spool of ``count`` operations; its segment files, in order."""
    s = Spool(tmp_path, segment_bytes=segment_bytes)
    s.open()
    s.append([op(i) for i in range(1, count + 1)])
    s.close()
    return sorted(tmp_path.glob("seg-*.spool"))


def frames_of(path: Path) -> list[tuple[int, int, int]]:
    """``(start, end, seq)`` of each frame of a segment file."""
    data = path.read_bytes()
    return [
        (f.start, f.end, f.seq) for f in walk(data, HEADER.size, len(data)) if isinstance(f, Frame)
    ]


def reopen_and_drain(tmp_path: Path) -> tuple[list[int], list[dict[str, object]], int]:
    """Open the spool, read everything; the seqs, the log events, the frames reported lost."""
    lost = Lost()
    s = Spool(tmp_path, on_lost=lost)
    with capture_logs() as logs:
        s.open()
        seqs: list[int] = []
        while got := s.read(7):
            seqs.extend(o.seq for o in got)
            s.confirm(seqs[-1])
    s.close()
    return seqs, logs, lost.total


def flip(path: Path, offset: int, length: int = 4) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        data = f.read(length)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


def test_bytes_flipped_mid_frame_lose_that_frame_only(tmp_path: Path) -> None:
    files = written(tmp_path)
    victim = files[1]
    start, end, seq = frames_of(victim)[1]
    flip(victim, (start + end) // 2)
    seqs, logs, lost = reopen_and_drain(tmp_path)
    assert seqs == [s for s in range(1, 61) if s != seq]
    (event,) = [e for e in logs if e["event"] == "spool_frames_lost"]
    assert event["log_level"] == "error" and event["frames"] == 1 == lost
    assert event["first_seq"] == seq and "pad" not in str(event)  # no record contents
    assert (tmp_path / "corrupt" / f"{victim.name}.lost-{start}").exists()
    # Reported once: the damage was made into a pad, the next open is quiet.
    again, logs, lost = reopen_and_drain(tmp_path)
    assert (again, lost) == ([], 0) and not [e for e in logs if e["event"] == "spool_frames_lost"]


def test_a_damaged_frame_length_loses_that_frame_only(tmp_path: Path) -> None:
    files = written(tmp_path)
    start, _, seq = frames_of(files[0])[2]
    flip(files[0], start + 4, 2)  # the length field: the frame's end is unknown
    seqs, _, lost = reopen_and_drain(tmp_path)
    assert seqs == [s for s in range(1, 61) if s != seq] and lost == 1


def test_a_damaged_segment_header_keeps_every_frame(tmp_path: Path) -> None:
    files = written(tmp_path)
    flip(files[1], 0, HEADER.size)
    seqs, logs, lost = reopen_and_drain(tmp_path)
    assert seqs == list(range(1, 61)) and lost == 0
    assert "spool_header_repaired" in [e["event"] for e in logs]


def test_a_segment_cut_mid_frame_loses_the_cut_frame_only(tmp_path: Path) -> None:
    files = written(tmp_path)
    start, end, seq = frames_of(files[1])[-1]
    os.truncate(files[1], (start + end) // 2)  # a torn write, in a segment that is not the last
    seqs, logs, lost = reopen_and_drain(tmp_path)
    assert seqs == [s for s in range(1, 61) if s != seq] and lost == 1
    events = [e["event"] for e in logs]
    assert "spool_tail_truncated" in events and "spool_frames_lost" in events


def test_damage_found_while_reading_loses_that_frame_only(tmp_path: Path) -> None:
    lost = Lost()
    s = Spool(tmp_path, segment_bytes=1024, on_lost=lost)
    s.open()
    try:
        s.append([op(i) for i in range(1, 61)])
        assert [o.seq for o in s.read(3)] == [1, 2, 3]
        victim = sorted(tmp_path.glob("seg-*.spool"))[0]
        _, end, seq = frames_of(victim)[4]
        flip(victim, end - 8)  # after open() checked it
        with capture_logs() as logs:
            seqs = [1, 2, 3]
            while got := s.read(5):
                seqs.extend(o.seq for o in got)
        assert seqs == [i for i in range(1, 61) if i != seq]
        assert lost.total == 1 and "spool_frames_lost" in [e["event"] for e in logs]
        assert (len(s), s.unconfirmed) == (0, 59)
        s.confirm(60)
        assert (s.unconfirmed, s.bytes, sorted(tmp_path.glob("seg-*.spool"))) == (0, 0, [])
    finally:
        s.close()


def test_a_segment_of_garbage_loses_its_frames_and_no_other(tmp_path: Path) -> None:
    files = written(tmp_path)
    gone = [seq for _, _, seq in frames_of(files[1])]
    size = files[1].stat().st_size
    files[1].write_bytes(files[1].read_bytes()[: HEADER.size] + os.urandom(size - HEADER.size))
    seqs, logs, lost = reopen_and_drain(tmp_path)
    assert seqs == [s for s in range(1, 61) if s not in gone]
    assert lost >= 1 and "spool_frames_lost" in [e["event"] for e in logs]


@pytest.mark.parametrize("seed", range(40))
def test_random_damage_loses_at_most_the_frames_it_overlaps(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    files = written(tmp_path, count=120, segment_bytes=rng.choice([700, 2048, 1 << 20]))
    victim = rng.choice(files)
    frames = frames_of(victim)
    size = victim.stat().st_size
    start = rng.randrange(size)
    length = rng.randint(1, 200)
    end = min(size, start + length)
    kind = rng.choice(["flip", "zero", "random", "truncate"])
    if kind == "truncate":
        os.truncate(victim, start)
        end = size
    else:
        with victim.open("r+b") as f:
            f.seek(start)
            old = f.read(end - start)
            new = {
                "flip": bytes(b ^ 0xFF for b in old),
                "zero": bytes(len(old)),
                "random": os.urandom(len(old)),
            }[kind]
            f.seek(start)
            f.write(new)
    overlapped = {seq for a, b, seq in frames if a < end and start < b}
    seqs, _, _ = reopen_and_drain(tmp_path)
    assert seqs == sorted(seqs), "order kept"
    assert set(range(1, 121)) - overlapped <= set(seqs), f"{kind} at {start}+{length}"


def test_a_segment_written_by_an_older_syncd_is_converted(tmp_path: Path) -> None:
    # Format 1: SYNCDSP1 + nonce, frames <u32 length><u32 crc><u64 seq><payload>.
    old = struct.Struct("<IIQ")
    body = b""
    for seq in range(1, 11):
        payload = op(seq).to_bytes()
        checksum = zlib.crc32(payload, zlib.crc32(old.pack(len(payload), 0, seq)))
        body += old.pack(len(payload), checksum, seq) + payload
    nonce = os.urandom(8)
    path = tmp_path / f"seg-{10**12:020d}.spool"
    path.write_bytes(b"SYNCDSP1" + nonce + body)
    # The first three were confirmed under the old format.
    third = HEADER.size + sum(16 + len(op(s).to_bytes()) for s in (1, 2, 3))
    (tmp_path / "head.json").write_text(
        f'{{"v": 1, "max_seq": 10, "offsets": {{"{path.name}": ["{nonce.hex()}", {third}]}}}}'
    )
    seqs, logs, lost = reopen_and_drain(tmp_path)
    assert seqs == list(range(4, 11)) and lost == 0
    assert "spool_segment_converted" in [e["event"] for e in logs]


def test_pads_are_skipped_by_the_reader(tmp_path: Path) -> None:
    files = written(tmp_path, count=30)
    start, _, seq = frames_of(files[0])[0]
    flip(files[0], start + FRAME.size + 2)
    opened = Spool(tmp_path)
    opened.open()  # finds the damage and pads it
    opened.close()
    with files[0].open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        first = next(iter(walk(mm, HEADER.size, len(mm))))
    assert isinstance(first, Frame) and first.seq == 0
    seqs, _, lost = reopen_and_drain(tmp_path)
    assert seqs == [s for s in range(1, 31) if s != seq] and lost == 0


def test_a_missing_segment_is_reported_lost(tmp_path: Path) -> None:
    files = written(tmp_path)
    gone = [seq for _, _, seq in frames_of(files[1])]
    files[1].unlink()
    seqs, logs, lost = reopen_and_drain(tmp_path)
    assert seqs == [s for s in range(1, 61) if s not in gone] and lost >= 1
    (event,) = [e for e in logs if e["event"] == "spool_segment_missing"]
    assert event["log_level"] == "error" and event["file"] == files[1].name


def test_the_only_segment_missing_is_reported_lost(tmp_path: Path) -> None:
    (only,) = written(tmp_path, segment_bytes=1 << 20)
    only.unlink()
    seqs, _, lost = reopen_and_drain(tmp_path)
    assert seqs == [] and lost >= 1


def test_segments_confirmed_and_deleted_are_not_missing(tmp_path: Path) -> None:
    s = Spool(tmp_path, segment_bytes=1024)
    s.open()
    s.append([op(i) for i in range(1, 61)])
    assert len(s.read(30)) == 30
    s.confirm(30)  # deletes the segments read to their end
    s.close()
    seqs, logs, lost = reopen_and_drain(tmp_path)
    assert seqs == list(range(31, 61)) and lost == 0
    assert not [e for e in logs if e["event"] == "spool_segment_missing"]
