"""Answer frames: find the request id without decoding the result; request frames
with pre-encoded arrays spliced in. Pure: no I/O.

An answer is a CBOR map ``{"id": ..., "result": ...}`` or ``{"id": ...,
"error": {...}}``. The reader task must know the id to hand the answer to
its call, but the result is decoded by the call itself, with the decoder that
call asked for (syncd's values or the SDK's). So the top-level map is walked
here and the result is kept as a byte span. The engines write ``id`` before
``result``, so the (possibly large) result is skipped over only when a key
follows it; an item this walker does not expect (indefinite lengths) falls
back to decoding the whole frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "EncodedArray", "query_frame", "split_answer"]

Decode = Callable[[bytes], Any]


class _Unexpected(Exception):
    """A byte sequence the walker does not handle; decode the whole frame instead."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: ``ok`` (a result, not an error) and where its value lies in the frame."""

    frame: bytes
    ok: bool
    start: int  # -1: decode the whole frame and take ``result`` or ``error``
    end: int

    def value(self, decode: Decode) -> Any:
        """The result (``ok``) or the error object, decoded with ``decode``."""
        if self.start < 0:
            whole = decode(self.frame)
            return whole.get("result" if self.ok else "error")
        if self.start == self.end:  # no result key: the RPC's "nothing"
            return None
        return decode(self.frame[self.start : self.end])


def _argument(data: bytes, pos: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, pos
    size = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if size is None:
        raise _Unexpected  # indefinite length, or reserved
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def skip_item(data: bytes, pos: int) -> int:
    """The position just after the CBOR item that starts at ``pos``."""
    todo = 1
    while todo:
        todo -= 1
        initial = data[pos]
        major, (argument, pos) = initial >> 5, _argument(data, pos + 1, initial & 0x1F)
        if major in (2, 3):  # byte and text strings: the argument is their length
            pos += argument
        elif major == 4:
            todo += argument
        elif major == 5:
            todo += 2 * argument
        elif major == 6:  # a tag: its argument is the tag number, one item follows
            todo += 1
        # 0, 1, 7: integers, simple values and floats are their head only.
    if pos > len(data):
        raise _Unexpected
    return pos


def _split(frame: bytes, decode: Decode) -> tuple[Any, Answer]:
    if not frame or frame[0] >> 5 != 5:
        raise _Unexpected
    count, pos = _argument(frame, 1, frame[0] & 0x1F)
    request_id: Any = None
    ok, start, end = True, 0, 0
    for index in range(count):
        if frame[pos] >> 5 != 3:
            raise _Unexpected  # a key that is not text
        length, pos = _argument(frame, pos + 1, frame[pos] & 0x1F)
        key = frame[pos : pos + length]
        pos += length
        last = index == count - 1
        value_end = len(frame) if last and key in (b"result", b"error") else skip_item(frame, pos)
        if key == b"id":
            request_id = decode(frame[pos:value_end])
        elif key in (b"result", b"error"):
            ok, start, end = key == b"result", pos, value_end
        pos = value_end
    return request_id, Answer(frame, ok, start, end)


def split_answer(frame: bytes, decode: Decode) -> tuple[Any, Answer]:
    """``(request_id, answer)`` of an answer frame; ``decode`` reads the id (and any fallback).

    Raises ``ValueError`` (or what ``decode`` raises) on a frame that is not a
    map; the id is ``None`` for a notice that answers no request.
    """
    try:
        return _split(frame, decode)
    except (_Unexpected, IndexError):
        whole = decode(frame)
        if not isinstance(whole, dict):
            raise ValueError("an answer frame that is not a map") from None
        return whole.get("id"), Answer(frame, "error" not in whole, -1, -1)


# -- request frames with pre-encoded items --------------------------------------


@dataclass(frozen=True, slots=True)
class EncodedArray:
    """A query variable holding an array, given as its items' CBOR, each already encoded.

    A CBOR array is its head then its items' encodings in a row, so the items
    are spliced into the request frame as they are, not decoded or encoded
    again. Each item must be one complete CBOR item, encoded by the codec the
    client sends with (syncd's exact codec): :func:`query_frame` trusts it.
    """

    items: tuple[bytes, ...]


def _head(major: int, value: int) -> bytes:
    """A CBOR head of ``major`` type with a length ``value``, in its shortest form."""
    if value < 24:
        return bytes(((major << 5) | value,))
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes(((major << 5) | info,)) + value.to_bytes(size, "big")
    raise ValueError(f"length {value} does not fit a CBOR head")


def query_frame(
    request_id: int, sql: str, vars: Mapping[str, Any], encode: Callable[[Any], bytes]
) -> bytes:
    """``encode({"id", "method": "query", "params": [sql, vars]})``, byte for byte,
    except that each :class:`EncodedArray` in ``vars`` is spliced in as it is."""
    parts = [b"\xa3", encode("id"), encode(request_id), encode("method"), encode("query")]
    parts += [encode("params"), b"\x82", encode(sql), _head(5, len(vars))]
    for name, value in vars.items():
        parts.append(encode(name))
        if isinstance(value, EncodedArray):
            parts.append(_head(4, len(value.items)))
            parts.extend(value.items)
        else:
            parts.append(encode(value))
    return b"".join(parts)
