"""The spool's segment format: frames that check themselves, walks past damage, surveys.

Pure bytes: no spool, no files except for :func:`first_frame`.
"""

from __future__ import annotations

import os
from array import array
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.pipeline.segments import (
    FRAME,
    FRAME_MAGIC,
    HEADER,
    MAGIC,
    NAME,
    Damage,
    Frame,
    Segment,
    check,
    first_frame,
    frame,
    lost_estimate,
    pad_head,
    resync,
    survey,
    walk,
)

NONCE = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def segment(*frames: bytes) -> bytes:
    return HEADER.pack(MAGIC, NONCE) + b"".join(frames)


def test_a_frame_checks_and_says_its_length_seq_and_time() -> None:
    data = frame(7, 12.5, b"payload")
    assert len(data) == FRAME.size + 7
    assert data.startswith(FRAME_MAGIC)
    assert check(data, 0, len(data)) == (7, 7, 12.5)


def test_seq_zero_is_reserved_for_pads() -> None:
    with pytest.raises(ValueError, match="seq must be >= 1"):
        frame(0, 1.0, b"x")


@pytest.mark.parametrize("at", [0, 5, 9, 13, 21, FRAME.size, FRAME.size + 3])
def test_any_flipped_byte_fails_the_check(at: int) -> None:
    data = bytearray(frame(3, 1.0, b"abcd"))
    data[at] ^= 0x40
    assert check(data, 0, len(data)) is None


def test_a_frame_cut_short_fails_the_check() -> None:
    data = frame(3, 1.0, b"abcd")
    assert check(data, 0, len(data) - 1) is None
    assert check(data, 0, FRAME.size - 1) is None


def test_a_pad_head_makes_damaged_bytes_one_valid_pad_frame() -> None:
    region = bytearray(b"\xaa" * 50)
    region[: FRAME.size] = pad_head(region)
    assert check(region, 0, len(region)) == (50 - FRAME.size, 0, 0.0)


def test_resync_finds_the_next_valid_frame_past_false_magics() -> None:
    good = frame(2, 1.0, b"ok")
    junk = b"zz" + FRAME_MAGIC + b"\x00" * 10  # a magic with no valid frame behind it
    buf = junk + good
    assert resync(buf, 0, len(buf)) == len(junk)
    assert resync(buf, len(junk) + 1, len(buf)) is None


def test_walk_yields_frames_and_the_damage_between_them() -> None:
    a, b, c = frame(1, 1.0, b"a" * 10), frame(2, 2.0, b"b" * 10), frame(3, 3.0, b"c")
    buf = bytearray(a + b + c)
    buf[len(a) + 2] ^= 0xFF  # b's length field
    items = list(walk(buf, 0, len(buf)))
    assert items == [
        Frame(0, len(a), 1, 1.0),
        Damage(len(a), len(a) + len(b)),
        Frame(len(a) + len(b), len(buf), 3, 3.0),
    ]


def test_walk_stops_before_a_torn_tail() -> None:
    a = frame(1, 1.0, b"abc")
    torn = frame(2, 2.0, b"defgh")[:-2]
    items = list(walk(a + torn, 0, len(a + torn)))
    assert items == [Frame(0, len(a), 1, 1.0)]


def test_walk_of_nothing_yields_nothing() -> None:
    assert list(walk(b"", 0, 0)) == []
    assert list(walk(b"\x00" * (FRAME.size - 1), 0, FRAME.size - 1)) == []


@given(
    payloads=st.lists(st.binary(max_size=40), min_size=1, max_size=8),
    hit=st.integers(min_value=0),
)
def test_damage_to_one_frame_costs_that_frame_only(payloads: list[bytes], hit: int) -> None:
    frames = [frame(i + 1, float(i), p) for i, p in enumerate(payloads)]
    victim = hit % len(frames)
    buf = bytearray(b"".join(frames))
    start = sum(len(f) for f in frames[:victim])
    buf[start + 1] ^= 0x01  # the victim's magic
    seqs = [item.seq for item in walk(buf, 0, len(buf)) if isinstance(item, Frame)]
    assert seqs == [i + 1 for i in range(len(frames)) if i != victim]


@pytest.mark.parametrize(
    ("region", "before", "after", "lost"),
    [
        (b"", 4, 8, 3),
        (b"", None, 8, 1),
        (FRAME_MAGIC * 2 + b"x", None, None, 2),
        (FRAME_MAGIC * 3, 4, 5, 3),  # neighbours say nothing was between: count magics
        (b"xx", 4, None, 1),
    ],
)
def test_lost_estimate(region: bytes, before: int | None, after: int | None, lost: int) -> None:
    assert lost_estimate(region, before, after) == lost


def test_survey_of_a_clean_segment() -> None:
    buf = segment(frame(5, 1.5, b"a"), frame(6, 2.5, b"b"))
    found = survey(buf, len(buf), None)
    assert (found.magic, found.nonce) == (MAGIC, NONCE)
    assert (found.start, found.end, found.frames, found.max_seq) == (HEADER.size, len(buf), 2, 6)
    assert found.head == (5, 1.5)
    assert found.damage == []


def test_survey_resumes_at_the_saved_offset_only_when_the_nonce_matches() -> None:
    a, b = frame(5, 1.5, b"a"), frame(6, 2.5, b"b")
    buf = segment(a, b)
    second = HEADER.size + len(a)
    resumed = survey(buf, len(buf), [NONCE.hex(), second])
    assert (resumed.start, resumed.frames, resumed.head, resumed.max_seq) == (
        second,
        1,
        (6, 2.5),
        6,
    )
    stale = survey(buf, len(buf), ["00" * 8, second])
    assert (stale.start, stale.frames) == (HEADER.size, 2)


def test_survey_of_a_fully_confirmed_segment_starts_at_its_end() -> None:
    buf = segment(frame(5, 1.5, b"a"))
    found = survey(buf, len(buf), [NONCE.hex(), len(buf)])
    assert (found.start, found.frames, found.head) == (len(buf), 0, None)


def test_survey_reports_damage_with_the_seqs_around_it_and_a_torn_tail() -> None:
    a, b, c = frame(5, 1.0, b"a" * 8), frame(6, 2.0, b"b" * 8), frame(7, 3.0, b"c" * 8)
    torn = frame(8, 4.0, b"d" * 8)[:-3]
    buf = bytearray(segment(a, b, c, torn))
    buf[HEADER.size + len(a) + FRAME.size] ^= 0xFF  # b's payload
    found = survey(buf, len(buf), None, before=4)
    assert found.frames == 2
    assert found.end == HEADER.size + len(a) + len(b) + len(c)  # the torn tail is past it
    [(region, seq_before, seq_after)] = found.damage
    assert region == Damage(HEADER.size + len(a), HEADER.size + len(a) + len(b))
    assert (seq_before, seq_after) == (5, 7)


def test_survey_skips_pads_and_counts_damage_at_the_start_from_before() -> None:
    pad = bytearray(b"\xee" * 40)
    pad[: FRAME.size] = pad_head(pad)
    junk = b"\x00" * 30
    buf = segment(bytes(pad), junk, frame(9, 1.0, b"x"))
    found = survey(buf, len(buf), None, before=3)
    assert found.frames == 1 and found.head == (9, 1.0)
    [(_, seq_before, seq_after)] = found.damage
    assert (seq_before, seq_after) == (3, 9)


def test_survey_of_a_foreign_header_ignores_the_saved_offset() -> None:
    a = frame(1, 1.0, b"a")
    buf = HEADER.pack(b"SYNCDSP1", NONCE) + a
    found = survey(buf, len(buf), [NONCE.hex(), len(buf)])
    assert found.magic == b"SYNCDSP1"
    assert found.start == HEADER.size and found.frames == 1


def test_first_frame_reads_the_head_or_walks_past_pads(tmp_path: Path) -> None:
    pad = bytearray(b"\xee" * 40)
    pad[: FRAME.size] = pad_head(pad)
    body = segment(bytes(pad), frame(4, 9.5, b"payload"))
    path = tmp_path / "seg-00000000000000000001.spool"
    path.write_bytes(body)
    assert first_frame(path, HEADER.size + len(pad), len(body)) == (4, 9.5)
    assert first_frame(path, HEADER.size, len(body)) == (4, 9.5)
    assert first_frame(path, len(body), len(body)) is None


def test_first_frame_walks_past_damage(tmp_path: Path) -> None:
    body = segment(b"\x00" * 33, frame(4, 9.5, b"p"))
    path = tmp_path / "seg.spool"
    path.write_bytes(body)
    assert first_frame(path, HEADER.size, os.path.getsize(path)) == (4, 9.5)


def test_segment_names() -> None:
    match = NAME.fullmatch("seg-00000000000000000042.spool")
    assert match is not None and int(match.group(1)) == 42
    assert NAME.fullmatch("seg-42.spool") is None


def test_a_segment_confirms_in_read_order_and_is_done_when_all_are() -> None:
    seg = Segment(number=1, path=Path("x"), nonce=NONCE, size=0, offset=16, frames=3, confirmed=16)
    assert not seg.done
    for seq, end in ((1, 30), (2, 40), (3, 50)):
        seg.mark_read(seq, end)
    assert (seg.offset, seg.frames) == (50, 0)
    assert seg.confirm(0) == 0 and seg.confirmed == 16
    assert seg.confirm(2) == 2 and seg.confirmed == 40
    assert list(seg.read_seqs) == [3] and not seg.done
    assert seg.confirm(3) == 1 and seg.confirmed == 50
    assert seg.done


def test_a_read_frame_above_the_confirmed_seq_holds_back_those_behind_it() -> None:
    seg = Segment(1, Path("x"), NONCE, 0, 16, 2, 16, array("Q"), array("Q"))
    seg.mark_read(5, 30)
    seg.mark_read(2, 40)
    assert seg.confirm(3) == 0  # 5 is first and not yet confirmed
    assert seg.confirmed == 16
    assert seg.confirm(5) == 2 and seg.confirmed == 40
