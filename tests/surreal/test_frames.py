"""Answer frames split without decoding their result (request frames: test_request_frames.py).

Frames are made with cbor2 directly, so the walker meets the shapes an
engine writes and the ones it does not (indefinite lengths, odd key orders).
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.surreal.frames import Answer, _head, skip_item, split_answer

decoded: list[bytes] = []


def decode(data: bytes) -> Any:
    decoded.append(bytes(data))
    return cbor2.loads(data)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.binary(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=20,
)


@given(values, st.integers(min_value=0, max_value=2**40) | st.text(max_size=8))
def test_the_id_and_the_result_come_apart_exactly(result: Any, request_id: Any) -> None:
    frame = cbor2.dumps({"id": request_id, "result": result})
    got_id, answer = split_answer(frame, cbor2.loads)
    assert got_id == request_id
    assert answer.ok and answer.start >= 0
    assert answer.value(cbor2.loads) == result


@given(values)
def test_skip_item_steps_over_exactly_one_item(value: Any) -> None:
    data = cbor2.dumps(value)
    assert skip_item(data + b"\x01", 0) == len(data)


def test_the_result_is_decoded_only_when_asked() -> None:
    decoded.clear()
    frame = cbor2.dumps({"id": "7", "result": [1, 2, 3]})
    request_id, answer = split_answer(frame, decode)
    assert request_id == "7"
    assert decoded == [cbor2.dumps("7")]  # the id only
    assert answer.value(decode) == [1, 2, 3]
    assert decoded[-1] == cbor2.dumps([1, 2, 3])


def test_an_error_answer() -> None:
    frame = cbor2.dumps({"id": 3, "error": {"code": -32000, "message": "no"}})
    request_id, answer = split_answer(frame, cbor2.loads)
    assert request_id == 3 and not answer.ok
    assert answer.value(cbor2.loads) == {"code": -32000, "message": "no"}


def test_a_result_before_the_id_is_skipped_over() -> None:
    frame = cbor2.dumps({"result": {"a": [1, b"x"]}, "id": 9})
    request_id, answer = split_answer(frame, cbor2.loads)
    assert request_id == 9 and answer.ok
    assert answer.value(cbor2.loads) == {"a": [1, b"x"]}


def test_a_tagged_result() -> None:
    frame = cbor2.dumps({"id": 1, "result": cbor2.CBORTag(8, ["t", 1])})
    _, answer = split_answer(frame, cbor2.loads)
    assert answer.value(cbor2.loads) == cbor2.CBORTag(8, ("t", 1))


def test_no_result_key_is_nothing() -> None:
    request_id, answer = split_answer(cbor2.dumps({"id": 4}), cbor2.loads)
    assert request_id == 4 and answer.ok
    assert answer.value(cbor2.loads) is None


def test_a_notice_answers_no_request() -> None:
    request_id, answer = split_answer(cbor2.dumps({"result": {"action": "CREATE"}}), cbor2.loads)
    assert request_id is None
    assert answer.value(cbor2.loads) == {"action": "CREATE"}


def test_indefinite_lengths_fall_back_to_decoding_the_whole_frame() -> None:
    # {"id": 5, "result": [_ 1, 2]} with an indefinite-length array, then another key
    frame = (
        b"\xa3"
        + cbor2.dumps("result")
        + b"\x9f\x01\x02\xff"
        + cbor2.dumps("id")
        + cbor2.dumps(5)
        + cbor2.dumps("x")
        + cbor2.dumps(0)
    )
    request_id, answer = split_answer(frame, cbor2.loads)
    assert request_id == 5 and answer.start == -1
    assert answer.value(cbor2.loads) == [1, 2]


def test_an_indefinite_error_map_is_still_an_error() -> None:
    frame = b"\xbf" + cbor2.dumps("id") + cbor2.dumps(1) + cbor2.dumps("error") + b"\xa0\xff"
    request_id, answer = split_answer(frame, cbor2.loads)
    assert request_id == 1 and not answer.ok
    assert answer.value(cbor2.loads) == {}


def test_a_key_that_is_not_text_falls_back() -> None:
    frame = cbor2.dumps({1: "x", "id": 2, "result": 3})
    request_id, answer = split_answer(frame, cbor2.loads)
    assert request_id == 2 and answer.value(cbor2.loads) == 3


@pytest.mark.parametrize("value", [[1, 2], "text", 7])
def test_a_frame_that_is_not_a_map_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="not a map"):
        split_answer(cbor2.dumps(value), cbor2.loads)


def test_a_truncated_frame_falls_back_to_the_decoder_and_its_error() -> None:
    frame = cbor2.dumps({"id": 1, "other": "long text here", "result": 1})[:-20]
    with pytest.raises(cbor2.CBORDecodeError):
        split_answer(frame, cbor2.loads)


def test_answer_value_of_a_span() -> None:
    frame = b"\x00" + cbor2.dumps("abc")
    assert Answer(frame, True, 1, len(frame)).value(cbor2.loads) == "abc"


@pytest.mark.parametrize(
    ("value", "head"),
    [
        (0, b"\x80"),
        (23, b"\x97"),
        (24, b"\x98\x18"),
        (255, b"\x98\xff"),
        (256, b"\x99\x01\x00"),
        (65536, b"\x9a\x00\x01\x00\x00"),
        (2**32, b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00"),
    ],
)
def test_heads_are_in_their_shortest_form(value: int, head: bytes) -> None:
    assert _head(4, value) == head
    assert _head(2, value)[1:] == head[1:]  # the length is the same whatever the major type


@pytest.mark.parametrize("count", [0, 23, 24, 255, 256, 65536])
def test_heads_are_the_ones_cbor2_writes(count: int) -> None:
    head = _head(4, count)
    assert cbor2.dumps([0] * count)[: len(head)] == head


def test_a_head_too_long_for_cbor_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        _head(4, 2**64)
