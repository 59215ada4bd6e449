"""The SDK's own CBOR, byte for byte and value for value, faster for plain records.

Merged reads hand the secondary's rows to the application beside the rows its
own SDK connection decoded, and send the application's parameters as its SDK
would: both must be exactly the SDK's, lossy as its codec is (NULL and NONE
are both ``None``; datetimes keep microseconds). This writes exactly what
``surrealdb.data.cbor.encode`` writes and reads exactly what its ``decode``
returns, several times faster for plain records (maps, arrays, strings,
numbers, booleans, NULL and record ids); anything else goes to the SDK's codec
whole (``tests/surreal/test_sdkcodec.py`` compares the two). Everything else
in syncd uses the exact codec, :mod:`syncd.surreal.codec`.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from surrealdb import RecordID
from surrealdb.data.cbor import decode, encode

__all__ = ["fast_decode", "fast_encode"]


# -- the fast path of the SDK's CBOR -------------------------------------------
#
# Byte for byte what ``surrealdb.data.cbor.encode`` writes for these types (no
# canonical ordering, no value sharing, NULL as tag 6 + null, floats always
# as doubles, record ids as tag 8 [table, id]), and the values its ``decode``
# returns for them. Types are matched exactly, as the SDK's encoder does
# first, so a subclass (with maybe its own encoder) goes to the SDK.

_TAG_NONE = 6
_TAG_RECORD_ID = 8
_INT_LIMIT = 1 << 64


class _Unhandled(Exception):
    """A value or a byte outside the fast path: the SDK's codec takes the whole item."""


def _head(major: int, length: int) -> bytes:
    major <<= 5
    if length < 24:
        return bytes((major | length,))
    if length < 0x100:
        return bytes((major | 24, length))
    if length < 0x10000:
        return struct.pack(">BH", major | 25, length)
    if length < 0x100000000:
        return struct.pack(">BL", major | 26, length)
    return struct.pack(">BQ", major | 27, length)


def _encode_into(value: Any, out: list[bytes]) -> None:
    kind = type(value)
    if kind is str:
        data = value.encode("utf-8")
        out.append(_head(3, len(data)))
        out.append(data)
    elif kind is dict:
        out.append(_head(5, len(value)))
        for key, item in value.items():
            _encode_into(key, out)
            _encode_into(item, out)
    elif kind is int:
        if not -_INT_LIMIT <= value < _INT_LIMIT:
            raise _Unhandled
        out.append(_head(0, value) if value >= 0 else _head(1, -1 - value))
    elif kind is float:
        if math.isnan(value):
            out.append(b"\xf9\x7e\x00")
        elif math.isinf(value):
            out.append(b"\xf9\x7c\x00" if value > 0 else b"\xf9\xfc\x00")
        else:
            out.append(struct.pack(">Bd", 0xFB, value))
    elif kind is list or kind is tuple:
        out.append(_head(4, len(value)))
        for item in value:
            _encode_into(item, out)
    elif value is None:
        out.append(b"\xc6\xf6")
    elif kind is bool:
        out.append(b"\xf5" if value else b"\xf4")
    elif kind is RecordID:
        out.append(b"\xc8\x82")  # tag 8, array of 2
        _encode_into(value.table_name, out)
        _encode_into(value.id, out)
    else:
        raise _Unhandled


def fast_encode(value: Any) -> bytes:
    """``surrealdb.data.cbor.encode(value)``, several times faster for plain records."""
    out: list[bytes] = []
    try:
        _encode_into(value, out)
    except (_Unhandled, RecursionError, UnicodeEncodeError):
        return bytes(encode(value))
    return b"".join(out)


_FLOATS = {25: (">e", 2), 26: (">f", 4), 27: (">d", 8)}


def _length(data: bytes, pos: int, info: int) -> tuple[int, int]:
    if info < 24:
        return info, pos
    if info == 24:
        return data[pos], pos + 1
    if info == 25:
        return int.from_bytes(data[pos : pos + 2], "big"), pos + 2
    if info == 26:
        return int.from_bytes(data[pos : pos + 4], "big"), pos + 4
    if info == 27:
        return int.from_bytes(data[pos : pos + 8], "big"), pos + 8
    raise _Unhandled  # indefinite lengths and reserved values


def _decode_at(data: bytes, pos: int) -> tuple[Any, int]:
    initial = data[pos]
    pos += 1
    # The two commonest items first: a text of 0-23 bytes, an integer 0-23.
    if 0x60 <= initial < 0x78:
        end = pos + initial - 0x60
        if end > len(data):
            raise _Unhandled
        return data[pos:end].decode("utf-8"), end
    if initial < 0x18:
        return initial, pos
    major, info = initial >> 5, initial & 0x1F
    if major == 3:
        length, pos = _length(data, pos, info)
        end = pos + length
        if end > len(data):
            raise _Unhandled
        return data[pos:end].decode("utf-8"), end
    if major == 0:
        return _length(data, pos, info)
    if major == 5:
        length, pos = _length(data, pos, info)
        mapping: dict[Any, Any] = {}
        for _ in range(length):
            key, pos = _decode_at(data, pos)
            if type(key) is not str:
                raise _Unhandled  # the SDK makes other keys immutable: leave it to it
            value, pos = _decode_at(data, pos)
            mapping[key] = value
        return mapping, pos
    if major == 4:
        length, pos = _length(data, pos, info)
        items: list[Any] = []
        for _ in range(length):
            item, pos = _decode_at(data, pos)
            items.append(item)
        return items, pos
    if major == 1:
        length, pos = _length(data, pos, info)
        return -1 - length, pos
    if major == 7:
        if info == 20:
            return False, pos
        if info == 21:
            return True, pos
        if info == 22:
            return None, pos
        if info in _FLOATS:
            fmt, size = _FLOATS[info]
            if pos + size > len(data):
                raise _Unhandled
            return struct.unpack(fmt, data[pos : pos + size])[0], pos + size
        raise _Unhandled
    if major == 6:
        if info == _TAG_NONE:
            value, pos = _decode_at(data, pos)
            if value is not None:
                raise _Unhandled
            return None, pos
        if info == _TAG_RECORD_ID:
            value, pos = _decode_at(data, pos)
            if type(value) is not list or len(value) != 2:
                raise _Unhandled
            return RecordID(value[0], value[1]), pos
    raise _Unhandled  # byte strings, other tags


def fast_decode(data: bytes) -> Any:
    """``surrealdb.data.cbor.decode(data)``, several times faster for plain records."""
    try:
        value, end = _decode_at(data, 0)
    except (_Unhandled, IndexError, UnicodeDecodeError, RecursionError, struct.error):
        return decode(data)
    if end != len(data):
        return decode(data)
    return value
