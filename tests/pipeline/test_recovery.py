"""Opening the spool's directory: each segment checked, damage kept and padded, torn tails cut.

Segments are written byte by byte here (no Spool): what :func:`recover`
returns, what it leaves on disk and what it counts as lost.
"""

from __future__ import annotations

import json
from pathlib import Path

from syncd.pipeline.recovery import (
    STATE,
    TAIL_BASE,
    check_segment,
    keep,
    load_state,
    recover,
    save_state,
)
from syncd.pipeline.segments import FRAME, HEADER, MAGIC, Frame, check, frame, walk

NONCE = bytes(range(8))


def name(number: int) -> str:
    return f"seg-{number:020d}.spool"


def write(directory: Path, number: int, *frames: bytes, header: bytes | None = None) -> Path:
    path = directory / name(number)
    path.write_bytes((header or HEADER.pack(MAGIC, NONCE)) + b"".join(frames))
    return path


def seqs(path: Path) -> list[int]:
    data = path.read_bytes()
    return [
        item.seq
        for item in walk(data, HEADER.size, len(data))
        if isinstance(item, Frame) and item.seq
    ]


def test_an_empty_directory_recovers_nothing(tmp_path: Path) -> None:
    assert recover(tmp_path, None) == ([], 0, TAIL_BASE)


def test_clean_segments_come_back_in_order_with_the_largest_seq(tmp_path: Path) -> None:
    write(tmp_path, TAIL_BASE + 1, frame(3, 1.0, b"c"), frame(4, 1.0, b"d"))
    write(tmp_path, TAIL_BASE, frame(1, 1.0, b"a"), frame(2, 1.0, b"b"))
    lost: list[int] = []
    segments, max_seq, next_tail = recover(tmp_path, lost.append)
    assert [s.number for s in segments] == [TAIL_BASE, TAIL_BASE + 1]
    assert [s.frames for s in segments] == [2, 2]
    assert (max_seq, next_tail) == (4, TAIL_BASE + 2)
    assert all(s.offset == HEADER.size == s.confirmed for s in segments)
    assert segments[0].nonce == NONCE
    assert lost == []
    assert not (tmp_path / "corrupt").exists()


def test_a_damaged_frame_is_kept_padded_and_counted_once(tmp_path: Path) -> None:
    a, b, c = frame(1, 1.0, b"a" * 20), frame(2, 1.0, b"b" * 20), frame(3, 1.0, b"c" * 20)
    path = write(tmp_path, TAIL_BASE, a, b, c)
    data = bytearray(path.read_bytes())
    data[HEADER.size + len(a) + FRAME.size + 5] ^= 0xFF
    path.write_bytes(data)
    lost: list[int] = []
    [seg], _, _ = recover(tmp_path, lost.append)
    assert lost == [1]
    assert seg.frames == 2
    assert seqs(path) == [1, 3]
    kept = tmp_path / "corrupt" / f"{name(TAIL_BASE)}.lost-{HEADER.size + len(a)}"
    assert kept.read_bytes() == bytes(data[HEADER.size + len(a) : HEADER.size + len(a) + len(b)])
    # padded in place: the region is now one valid frame, so a second open is quiet
    assert check(path.read_bytes(), HEADER.size + len(a), len(data)) is not None
    recover(tmp_path, lost.append)
    assert lost == [1]


def test_a_torn_tail_is_cut_kept_and_counted(tmp_path: Path) -> None:
    a = frame(1, 1.0, b"a" * 10)
    torn = frame(2, 1.0, b"b" * 10)[:-4]
    path = write(tmp_path, TAIL_BASE, a, torn)
    lost: list[int] = []
    [seg], max_seq, _ = recover(tmp_path, lost.append)
    assert lost == [1]
    assert max_seq == 1
    assert path.stat().st_size == HEADER.size + len(a) == seg.size
    assert (tmp_path / "corrupt" / f"{name(TAIL_BASE)}.torn-{seg.size}").read_bytes() == torn


def test_a_segment_shorter_than_its_header_is_deleted(tmp_path: Path) -> None:
    path = tmp_path / name(TAIL_BASE + 7)
    path.write_bytes(MAGIC[:5])
    lost: list[int] = []
    segments, max_seq, next_tail = recover(tmp_path, lost.append)
    # 1-15 bytes once held frames: counted as a loss (one: how many it held is unknown).
    assert segments == [] and max_seq == 0 and lost == [1]
    assert not path.exists()
    assert next_tail == TAIL_BASE + 8  # its number is not reused


def test_a_damaged_header_is_rewritten_and_every_frame_kept(tmp_path: Path) -> None:
    path = write(tmp_path, TAIL_BASE, frame(1, 1.0, b"a"), header=b"\x00" * HEADER.size)
    lost: list[int] = []
    [seg], _, _ = recover(tmp_path, lost.append)
    magic, nonce = HEADER.unpack_from(path.read_bytes())
    assert magic == MAGIC and nonce == seg.nonce
    assert seg.frames == 1 and lost == []


def test_a_fully_confirmed_segment_is_deleted_but_its_seqs_count(tmp_path: Path) -> None:
    a = frame(8, 1.0, b"a")
    path = write(tmp_path, TAIL_BASE, a)
    save = {"v": 1, "max_seq": 0, "offsets": {name(TAIL_BASE): [NONCE.hex(), len(a) + 16]}}
    (tmp_path / STATE).write_text(json.dumps(save))
    segments, max_seq, _ = recover(tmp_path, None)
    assert segments == [] and max_seq == 8
    assert not path.exists()


def test_a_partly_confirmed_segment_resumes_at_its_saved_offset(tmp_path: Path) -> None:
    a, b = frame(1, 1.0, b"a"), frame(2, 1.0, b"b")
    write(tmp_path, TAIL_BASE, a, b)
    [seg], _, _ = recover(tmp_path, None)
    seg.confirmed = HEADER.size + len(a)
    save_state(tmp_path, [seg], 2, fsync=False)
    [again], max_seq, _ = recover(tmp_path, None)
    assert (again.offset, again.frames, max_seq) == (HEADER.size + len(a), 1, 2)


def test_save_state_keeps_only_partly_confirmed_segments(tmp_path: Path) -> None:
    write(tmp_path, TAIL_BASE, frame(1, 1.0, b"a"))
    write(tmp_path, TAIL_BASE + 1, frame(2, 1.0, b"b"))
    segments, _, _ = recover(tmp_path, None)
    segments[1].confirmed = 40
    save_state(tmp_path, segments, 9, fsync=True)
    # Offsets only for the partly confirmed one; every segment named (a missing one is a loss).
    assert load_state(tmp_path) == (
        9,
        {name(TAIL_BASE + 1): [NONCE.hex(), 40]},
        [name(TAIL_BASE), name(TAIL_BASE + 1)],
    )


def test_a_damaged_state_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / STATE).write_text("{half")
    assert load_state(tmp_path) == (0, {}, [])
    (tmp_path / STATE).write_text(json.dumps({"max_seq": 5, "offsets": {"a": [1], "b": ["n", 3]}}))
    assert load_state(tmp_path) == (5, {"b": ["n", 3]}, [])  # malformed entries dropped
    (tmp_path / STATE).write_text(json.dumps({"offsets": {}}))
    assert load_state(tmp_path) == (0, {}, [])


def test_a_stray_rewrite_is_kept_and_removed(tmp_path: Path) -> None:
    stray = tmp_path / f".{name(TAIL_BASE)}.tmp"
    stray.write_bytes(b"half a rewrite")
    recover(tmp_path, None)
    assert not stray.exists()
    assert (tmp_path / "corrupt" / f"{name(TAIL_BASE)}.tmp.stray").read_bytes() == (
        b"half a rewrite"
    )


def test_files_not_named_as_segments_are_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "seg-12.spool"
    other.write_bytes(b"whatever")
    assert recover(tmp_path, None) == ([], 0, TAIL_BASE)
    assert other.read_bytes() == b"whatever"


def test_damage_at_the_start_of_a_segment_is_estimated_from_the_previous_one(
    tmp_path: Path,
) -> None:
    write(tmp_path, TAIL_BASE, frame(1, 1.0, b"a"))
    # seqs 2..4 were in a region now unreadable; 5 follows it
    write(tmp_path, TAIL_BASE + 1, b"\x00" * 90, frame(5, 1.0, b"e"))
    lost: list[int] = []
    recover(tmp_path, lost.append)
    assert lost == [3]


def test_check_segment_returns_the_segment_and_its_top_seq(tmp_path: Path) -> None:
    path = write(tmp_path, 3, frame(4, 2.0, b"x"), frame(6, 3.0, b"y"))
    seg, top = check_segment(path, 3, None, None, None)
    assert seg is not None and top == 6
    assert (seg.number, seg.path, seg.frames) == (3, path, 2)


def test_keep_never_overwrites_earlier_bytes(tmp_path: Path) -> None:
    keep(tmp_path, b"one", "x")
    keep(tmp_path, b"two", "x")
    kept = sorted(p.read_bytes() for p in (tmp_path / "corrupt").iterdir())
    assert kept == [b"one", b"two"]
    assert (tmp_path / "corrupt").stat().st_mode & 0o777 == 0o700
