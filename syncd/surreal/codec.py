"""SurrealDB's CBOR, exact for every value type, on the compiled ``cbor2`` codec.

``decode(encode(v)) == v`` for every value; a value that went through an engine
comes back as the engine keeps it (below). NULL is ``None`` and NONE is :data:`NONE`;
objects are ``dict`` with ``str`` keys, arrays ``list`` (``tuple`` encodes too); the
value types are in :mod:`syncd.surreal.values` and exported here.

Tags (S: the engine sends it, A: accepts it; 2.x = 2.3.10, 3.x = 3.2.4; both alike
unless marked). decode refuses every other tag, as both engines do.

* 0 RFC 3339 text -> Datetime: A, never sent (decoded).  6 null -> NONE: SA.
* 7 text -> Table: SA.  8 [table, key] -> RecordID: SA; A also text ``"t:1"``.
* 9 uuid text: A, never sent (decoded).  37 16 bytes -> uuid.UUID: SA.
* 10 decimal text -> decimal.Decimal: SA.  12 [secs, nanos] -> Datetime: SA.
* 13 duration text: A, never sent (refused).  14 [] / [secs] / [secs, nanos] -> Duration: SA.
* 49 [bound or null, bound or null] -> Range; 50/51 value -> BoundIncluded/Excluded: SA.
* 55 [bucket, key] -> File, 56 [items] -> Set: 3.x SA; 2.x refuses them (unknown tag).
* 88 [x, y] -> GeometryPoint; 89 to 94 [parts] -> GeometryLine, Polygon, MultiPoint,
  MultiLine, MultiPolygon, Collection: SA.
* Regexes (and 2.x closures) have no tag: the engine fails the whole response.

Engine normalisations (tests/surreal/test_codec.py asserts each one exactly):

* A stored object loses its fields whose value is NONE, at any depth (RETURN keeps
  them); NONE in arrays, range bounds and record keys stays.
* Decimals: both drop the sign of zero; 3.x strips trailing fractional zeros (``1.10``
  -> ``1.1``), 2.x keeps them. encode writes exponents out (2.x cannot parse them) and
  refuses what both would round or refuse: NaN, infinities, over 28 fractional digits,
  a coefficient of 2**96 or more.
* Integers outside i64 wrap silently in both: encode refuses them.
* Object keys must be text (2.x turns ``1`` into ``"1"``, 3.x refuses): so does encode.
* Polygon rings get closed, geometry coordinates become floats, duration nanoseconds
  over a second carry: the value types do the same when built, so they are unchanged.
* 3.x sets come back sorted and deduplicated (SurrealQL order); Set keeps the order given.
* 2.x fails any response holding a string value with U+0000; 3.x keeps it.
* 2.x writes nothing when a record's new content equals the stored one as SurrealQL
  compares (1 = 1.0 = 1dec, 0.0 = -0.0, 1.10dec = 1.1dec): the stored types stay.
* Floats stay bit for bit: -0.0, both infinities, NaN with its sign and payload.

decode does not check plain integers outside i64, map keys that are bytes, nor CBOR
simple values such as ``undefined`` (left as cbor2 objects): neither engine sends them.
encode checks ints and map keys by exact type: an ``int`` subclass (an IntEnum) or a
``dict`` subclass other than OrderedDict and defaultdict goes out unchecked.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import ipaddress
import re
import struct
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from email.mime.text import MIMEText
from fractions import Fraction
from typing import Any, Final

import cbor2
from cbor2 import CBOREncoder, frozendict

from syncd.surreal.sdkvalues import SDK_TYPES, from_sdk
from syncd.surreal.values import (
    NONE,
    BoundExcluded,
    BoundIncluded,
    CodecError,
    Datetime,
    Duration,
    File,
    GeometryCollection,
    GeometryLine,
    GeometryMultiLine,
    GeometryMultiPoint,
    GeometryMultiPolygon,
    GeometryPoint,
    GeometryPolygon,
    Range,
    RecordID,
    Set,
    Table,
    _NoneType,
)

__all__ = [
    "NONE", "BoundExcluded", "BoundIncluded", "CodecError", "Datetime", "Duration", "File",
    "GeometryCollection", "GeometryLine", "GeometryMultiLine", "GeometryMultiPoint",
    "GeometryMultiPolygon", "GeometryPoint", "GeometryPolygon", "Range", "RecordID", "Set",
    "Table", "decode", "encode",
]  # fmt: skip

_I64: Final = 1 << 63
_DEC_MAX: Final = (1 << 96) - 1  # rust_decimal: a 96-bit coefficient, 0..28 fractional digits
_SHAPES: Final[dict[type, int]] = {
    GeometryLine: 89, GeometryPolygon: 90, GeometryMultiPoint: 91,
    GeometryMultiLine: 92, GeometryMultiPolygon: 93, GeometryCollection: 94,
}  # fmt: skip

_Encoder = Callable[[CBOREncoder, Any], None]


def _encode_int(enc: CBOREncoder, value: int) -> None:
    if not -_I64 <= value < _I64:  # the engines would wrap it silently
        raise CodecError(f"{value} is outside SurrealDB's 64-bit signed int")
    enc.encode_int(value)


def _encode_float(enc: CBOREncoder, value: float) -> None:
    if value != value:  # cbor2 writes every NaN as f97e00; the engines keep sign and payload
        enc.write(b"\xfb" + struct.pack(">d", value))
    else:
        enc.encode_float(value)


def _encode_map(enc: CBOREncoder, value: Mapping[Any, Any]) -> None:
    if not all(isinstance(key, str) for key in value):
        raise CodecError(f"object keys must be str: {value!r}")
    enc.encode_map(value)


def _encode_decimal(enc: CBOREncoder, value: decimal.Decimal) -> None:
    text = format(value, "f") if value.is_finite() else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    if not text or len(fraction) > 28 or int(whole + fraction) > _DEC_MAX:
        raise CodecError(f"SurrealDB cannot hold the decimal {value} exactly")
    enc.encode_semantic(10, text)


def _encode_duration(enc: CBOREncoder, value: Duration) -> None:
    # The engines' own compact form: [] for 0ns, [s] for whole seconds, else [s, ns];
    # written by hand, as the seconds may pass i64, which _encode_int refuses.
    s, ns = value.seconds, value.nanoseconds
    parts = [s, ns] if ns else [s] if s else []
    enc.encode_length(6, 14)
    enc.encode_length(4, len(parts))
    for part in parts:
        enc.encode_int(part)


def _encode_shape(enc: CBOREncoder, value: Any) -> None:
    enc.encode_semantic(_SHAPES[type(value)], value.parts)


def _refuse(enc: CBOREncoder, value: Any) -> None:
    raise CodecError(f"SurrealDB has no value for {type(value).__name__} {value!r}")


_E = CBOREncoder
_ENCODERS: Final[dict[type, _Encoder]] = {
    # cbor2 raises and swallows a KeyError for each value whose exact type is missing
    # here, which costs more than calling its own methods: so every common type is listed.
    str: _E.encode_string, bool: _E.encode_bool, float: _encode_float, bytes: _E.encode_bytes,
    bytearray: _E.encode_bytearray, list: _E.encode_array, tuple: _E.encode_array,
    uuid.UUID: _E.encode_uuid, type(None): lambda enc, _: enc.encode_none(),
    memoryview: lambda enc, value: enc.encode_bytes(bytes(value)),
    int: _encode_int, dict: _encode_map, frozendict: _encode_map, OrderedDict: _encode_map,
    defaultdict: _encode_map,
    decimal.Decimal: _encode_decimal, Duration: _encode_duration,
    Datetime: lambda enc, value: enc.encode_semantic(12, [value.seconds, value.nanoseconds]),
    _dt.datetime: lambda enc, value: enc.encode(Datetime.from_datetime(value)),
    _NoneType: lambda enc, _: enc.encode_semantic(6, None),
    Table: lambda enc, value: enc.encode_semantic(7, value.name),
    RecordID: lambda enc, value: enc.encode_semantic(8, [value.table, value.id]),
    Range: lambda enc, value: enc.encode_semantic(49, [value.begin, value.end]),
    BoundIncluded: lambda enc, value: enc.encode_semantic(50, value.value),
    BoundExcluded: lambda enc, value: enc.encode_semantic(51, value.value),
    File: lambda enc, value: enc.encode_semantic(55, [value.bucket, value.key]),
    Set: lambda enc, value: enc.encode_semantic(56, value.items),
    GeometryPoint: lambda enc, value: enc.encode_semantic(88, [value.longitude, value.latitude]),
    **dict.fromkeys(_SHAPES, _encode_shape),
    # cbor2 has tags of its own for these, which SurrealDB would refuse or misread
    # (a NaN Decimal would even go out as a float NaN).
    **dict.fromkeys((set, frozenset, Fraction, complex, re.Pattern, MIMEText, _dt.date, _dt.time,
                     ipaddress.IPv4Address, ipaddress.IPv4Network, ipaddress.IPv4Interface,
                     ipaddress.IPv6Address, ipaddress.IPv6Network, ipaddress.IPv6Interface,
                     cbor2.CBORTag, cbor2.CBORSimpleValue, type(cbor2.undefined)), _refuse),
}  # fmt: skip


# Values an application's SDK connection returned (the wrapper's captures, a
# test's rows) go out as syncd's own: one meaning on the wire whoever built them.
_ENCODERS.update(dict.fromkeys(SDK_TYPES, lambda enc, value: enc.encode(from_sdk(value))))


def encode(value: Any) -> bytes:
    """CBOR bytes for ``value``; CodecError if SurrealDB could not hold it exactly."""
    try:
        return cbor2.dumps(value, encoders=_ENCODERS)
    except CodecError:
        raise
    except (cbor2.CBORError, TypeError, ValueError, RecursionError) as exc:
        raise CodecError(f"cannot encode {type(value).__name__}: {exc}") from exc


def _array(value: Any, *sizes: int) -> list[Any]:
    # The constructors check the items; this keeps a text payload from being unpacked.
    if type(value) is not list or (sizes and len(value) not in sizes):
        count = " or ".join(map(str, sizes)) or "any number of"
        raise CodecError(f"expected an array of {count} items, not {value!r}")
    return value


def _decimal(value: Any) -> decimal.Decimal:
    number = decimal.Decimal(value if type(value) is str else "NaN")
    if not number.is_finite():
        raise CodecError(f"a SurrealDB decimal is finite text, not {value!r}")
    return number


def _shape_decoder(shape: type) -> Callable[[Any, bool], Any]:
    return lambda value, _: shape(value)  # the shapes refuse parts of the wrong type


# semantic_decoders callbacks take the payload and cbor2's "immutable" flag (unused).
_SEMANTIC: Final[dict[int, Callable[[Any, bool], Any]]] = {
    0: lambda value, _: Datetime.from_iso(value), 6: lambda value, _: {None: NONE}[value],
    7: lambda value, _: Table(value), 8: lambda value, _: RecordID(*_array(value, 2)),
    9: lambda value, _: uuid.UUID(value), 10: lambda value, _: _decimal(value),
    12: lambda value, _: Datetime(*_array(value, 2)),
    14: lambda value, _: Duration(*_array(value, 0, 1, 2)),
    49: lambda value, _: Range(*_array(value, 2)),
    50: lambda value, _: BoundIncluded(value), 51: lambda value, _: BoundExcluded(value),
    55: lambda value, _: File(*_array(value, 2)), 56: lambda value, _: Set(tuple(_array(value))),
    88: lambda value, _: GeometryPoint(*_array(value, 2)),
    **{tag: _shape_decoder(shape) for shape, tag in _SHAPES.items()},
}  # fmt: skip


def _refuse_tag(value: Any, immutable: bool) -> Any:
    raise CodecError("SurrealDB does not use this tag")


# cbor2 decodes tags of its own (bignums, sets, shared values, regexes, ...) that SurrealDB
# never sends; 37, a uuid, it decodes as SurrealDB means it.
_SEMANTIC.update(dict.fromkeys((1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 52, 54, 100, 256, 258,
                                260, 261, 1004, 43000, 55799), _refuse_tag))  # fmt: skip


def _unknown_tag(tag: cbor2.CBORTag, immutable: bool) -> Any:
    raise CodecError(f"unknown CBOR tag {tag.tag}")


# loads() ignores whatever follows the first item, so decode reads [value, marker]:
# anything left over after the value displaces the marker.
_END_MARK: Final = b"\x00syncd: end of frame\x00"
_END: Final = cbor2.dumps(_END_MARK)


def decode(data: bytes) -> Any:
    """The value in SurrealDB CBOR ``data``; CodecError for anything malformed or foreign."""
    try:
        value, mark = cbor2.loads(
            b"".join((b"\x82", data, _END)),
            semantic_decoders=_SEMANTIC,
            tag_hook=_unknown_tag,
            strict_hashable_types=True,  # map keys are text (SurrealDB) or bytes
            allow_duplicate_keys=False,
        )
    except Exception as exc:  # cbor2 wraps what the decoders raise: keep both words
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise CodecError(f"malformed SurrealDB CBOR: {exc}{cause}") from exc
    if mark != _END_MARK:
        raise CodecError("trailing bytes after the CBOR value")
    return value


def pack(value: Any) -> str:
    """``value`` as text for a JSON file (base64 of its CBOR): exact for every type."""
    return base64.b64encode(encode(value)).decode("ascii")


def unpack(text: str) -> Any:
    """The value :func:`pack` wrote; CodecError if it is not one."""
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise CodecError(f"not base64: {exc}") from None
    return decode(data)
