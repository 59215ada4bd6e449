"""SurrealQL values Python has no exact type for; use them through :mod:`syncd.surreal.codec`.

Each is immutable, hashable, exact, checks its fields (CodecError) and normalises as the engines
do; arrays and objects in record ids, bounds and sets become ``tuple`` and ``cbor2.frozendict``.
``str()`` is SurrealQL as 3.x prints it (2.x escapes differently)."""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from cbor2 import frozendict

from syncd.durations import SURREAL_UNITS

_NS: Final = 1_000_000_000
# chrono's range, which both engines enforce: -262143-01-01 .. +262142-12-31T23:59:59.999999999
_DT_MIN, _DT_MAX = -8_334_601_228_800, 8_210_266_876_799
_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_ISO: Final = re.compile(
    r"([+-]?\d{4,6})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)"
)
_PLAIN: Final = re.compile(r"[A-Za-z0-9_]+")


class CodecError(ValueError):
    """A value SurrealDB cannot hold exactly, or bytes that are not SurrealDB CBOR."""


class _NoneType(enum.Enum):
    NONE = "NONE"  # an enum member: a single instance, kept so by pickle and copy

    def __repr__(self) -> str:
        return "NONE"

    __str__ = __repr__


NONE: Final = _NoneType.NONE
"""SurrealQL NONE (no value; CBOR tag 6), distinct from ``None`` (SurrealQL NULL)."""


def _int(value: object, low: int, high: int, what: str) -> None:
    if type(value) is not int or not low <= value <= high:
        raise CodecError(f"{what} must be an int in [{low}, {high}], not {value!r}")


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(map(_freeze, value))
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise CodecError(f"object keys must be str: {value!r}")
        return frozendict({key: _freeze(item) for key, item in value.items()})
    return value


def _civil(days: int) -> tuple[int, int, int]:
    # Howard Hinnant's proleptic-Gregorian calendar: datetime.date stops at year 9999.
    era, doe = divmod(days + 719468, 146097)
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    month = (5 * doy + 2) // 153
    day = doy - (153 * month + 2) // 5 + 1
    month += 3 if month < 10 else -9
    return yoe + era * 400 + (month <= 2), month, day


def _days(year: int, month: int, day: int) -> int:
    era, yoe = divmod(year - (month <= 2), 400)
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


@dataclass(frozen=True, order=True, slots=True)
class Datetime:
    """A SurrealQL datetime: seconds since the Unix epoch (UTC) plus nanoseconds, exact."""

    seconds: int
    nanoseconds: int = 0

    def __post_init__(self) -> None:
        _int(self.seconds, _DT_MIN, _DT_MAX, "Datetime seconds")
        _int(self.nanoseconds, 0, _NS - 1, "Datetime nanoseconds")

    @classmethod
    def from_datetime(cls, value: _dt.datetime) -> Datetime:
        """The instant of an aware ``datetime`` (a naive one is ambiguous: CodecError)."""
        if value.utcoffset() is None:
            raise CodecError(f"naive datetime {value!r} has no time zone")
        delta = value - _EPOCH
        return cls(delta.days * 86400 + delta.seconds, delta.microseconds * 1000)

    def to_datetime(self) -> _dt.datetime:
        """This instant as an aware UTC ``datetime``, truncated to µs (OverflowError past 9999)."""
        return _EPOCH + _dt.timedelta(seconds=self.seconds, microseconds=self.nanoseconds // 1000)

    @classmethod
    def from_iso(cls, text: str) -> Datetime:
        """Parse RFC 3339 text: ``Z`` or ``±hh:mm``, up to nine fractional digits."""
        match = _ISO.fullmatch(text)
        if match is None:
            raise CodecError(f"not an RFC 3339 datetime: {text!r}")
        year, month, day, hour, minute, sec = map(int, match.group(1, 2, 3, 4, 5, 6))
        days, zone = _days(year, month, day), match.group(8)
        if _civil(days) != (year, month, day) or hour > 23 or minute > 59 or sec > 59:
            raise CodecError(f"no such date or time: {text!r}")
        offset = 0 if zone in "Zz" else (int(zone[:3]) * 60 + int(zone[0] + zone[4:])) * 60
        nanos = int((match.group(7) or ".")[1:].ljust(9, "0"))
        return cls(days * 86400 + hour * 3600 + minute * 60 + sec - offset, nanos)

    def isoformat(self, digits: int = 9) -> str:
        """RFC 3339 text in UTC with ``digits`` (0 to 9) fractional digits, truncated."""
        days, rest = divmod(self.seconds, 86400)
        year, month, day = _civil(days)
        year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+05d}"  # as chrono writes
        fraction = f".{self.nanoseconds:09d}"[: digits + 1] if digits else ""
        clock = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
        return f"{year_text}-{month:02d}-{day:02d}T{clock}{fraction}Z"

    def __str__(self) -> str:
        # The engines print 0, 3, 6 or 9 fractional digits: as few as keep it exact.
        digits = next(d for d in (0, 3, 6, 9) if self.nanoseconds % 10 ** (9 - d) == 0)
        return f"d'{self.isoformat(digits)}'"


@dataclass(frozen=True, order=True, slots=True)
class Duration:
    """A SurrealQL duration: seconds (unsigned 64-bit) plus nanoseconds, exact."""

    seconds: int = 0
    nanoseconds: int = 0

    def __post_init__(self) -> None:
        _int(self.seconds, 0, (1 << 64) - 1, "Duration seconds")
        _int(self.nanoseconds, 0, _NS - 1, "Duration nanoseconds")

    @property
    def total_nanoseconds(self) -> int:
        """The whole duration in nanoseconds."""
        return self.seconds * _NS + self.nanoseconds

    def __str__(self) -> str:
        left, text = self.total_nanoseconds, ""
        for unit, size in SURREAL_UNITS.items():
            if left >= size:
                text, left = f"{text}{left // size}{unit}", left % size
        return text or "0ns"


@dataclass(frozen=True, slots=True)
class Table:
    """A table name as a value (``type::table('t')``)."""

    name: str

    def __post_init__(self) -> None:
        if type(self.name) is not str:
            raise CodecError(f"a table name is str, not {self.name!r}")

    def __str__(self) -> str:
        return _ident(self.name)


@dataclass(frozen=True, slots=True)
class _Bound:
    value: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _freeze(self.value))


class BoundIncluded(_Bound):
    """A range end that includes its value."""

    __slots__ = ()


class BoundExcluded(_Bound):
    """A range end that excludes its value."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Range:
    """A SurrealQL range; a ``None`` end is unbounded (``1..``, ``..``)."""

    begin: BoundIncluded | BoundExcluded | None = None
    end: BoundIncluded | BoundExcluded | None = None

    def __post_init__(self) -> None:
        if not {type(self.begin), type(self.end)} <= {BoundIncluded, BoundExcluded, type(None)}:
            raise CodecError(f"range ends are bounds or None: {self.begin!r}, {self.end!r}")

    def __str__(self) -> str:
        begin, end = ("" if b is None else _surql(b.value) for b in (self.begin, self.end))
        gt, eq = type(self.begin) is BoundExcluded, type(self.end) is BoundIncluded
        return f"{begin}{'>' * gt}..{'=' * eq}{end}"


@dataclass(frozen=True, slots=True)
class RecordID:
    """A record id: table name and key (int, str, array, object, uuid or range)."""

    table: str
    id: Any

    def __post_init__(self) -> None:
        key = self.id
        if type(self.table) is not str:
            raise CodecError(f"a record's table is str, not {self.table!r}")
        # Each end of a range of keys is a key, but not a range (which 2.x refuses).
        for end in [b.value for b in (key.begin, key.end) if b] if type(key) is Range else [key]:
            if type(end) is int:
                _int(end, -(1 << 63), (1 << 63) - 1, "a record key")
            elif not isinstance(end, str | uuid.UUID | list | tuple | Mapping):
                raise CodecError(f"a record key is int, str, array, object, uuid or range: {key!r}")
        if type(key) is not str and isinstance(key, list | tuple | Mapping):
            object.__setattr__(self, "id", _freeze(key))

    def __str__(self) -> str:
        key = self.id
        return f"{_ident(self.table)}:{_ident(key) if type(key) is str else _surql(key)}"


@dataclass(frozen=True, slots=True)
class GeometryPoint:
    """A point: longitude (x) and latitude (y), floats as the engines keep them."""

    longitude: float
    latitude: float

    def __post_init__(self) -> None:
        for name in ("longitude", "latitude"):
            if type(number := getattr(self, name)) not in (int, float):
                raise CodecError(f"a coordinate is a number, not {number!r}")
            object.__setattr__(self, name, float(number))

    def __str__(self) -> str:
        return f"({_number(self.longitude)}, {_number(self.latitude)})"

    def _differs(self, other: GeometryPoint) -> bool:
        return self.longitude != other.longitude or self.latitude != other.latitude


@dataclass(frozen=True, slots=True)
class _Shape:
    parts: tuple[Any, ...]
    _kind: ClassVar[str]
    _part: ClassVar[type | tuple[type, ...]]

    def __post_init__(self) -> None:
        parts = tuple(self.parts)
        if not all(isinstance(part, self._part) for part in parts):
            raise CodecError(f"{type(self).__name__} holds only {self._part}: {parts!r}")
        object.__setattr__(self, "parts", parts)

    def __str__(self) -> str:
        if type(self) is GeometryCollection:
            return f"{{ type: '{self._kind}', geometries: [{', '.join(map(str, self.parts))}] }}"
        return f"{{ type: '{self._kind}', coordinates: {_coordinates(self)} }}"


class GeometryLine(_Shape):
    """A line string; ``parts`` are points."""

    __slots__, _kind, _part = (), "LineString", GeometryPoint


class GeometryPolygon(_Shape):
    """A polygon; ``parts`` are rings (lines), each closed here as the engines close it."""

    __slots__, _kind, _part = (), "Polygon", GeometryLine

    def __post_init__(self) -> None:
        _Shape.__post_init__(self)
        if not self.parts:
            raise CodecError("a polygon has at least one ring")
        # geo's LineString::close: add the first point unless it is the last (NaN never is).
        rings = tuple(
            GeometryLine((*ring.parts, ring.parts[0]))
            if ring.parts and ring.parts[0]._differs(ring.parts[-1])
            else ring
            for ring in self.parts
        )
        object.__setattr__(self, "parts", rings)


class GeometryMultiPoint(_Shape):
    """Several points; ``parts`` are points."""

    __slots__, _kind, _part = (), "MultiPoint", GeometryPoint


class GeometryMultiLine(_Shape):
    """Several lines; ``parts`` are lines."""

    __slots__, _kind, _part = (), "MultiLineString", GeometryLine


class GeometryMultiPolygon(_Shape):
    """Several polygons; ``parts`` are polygons."""

    __slots__, _kind, _part = (), "MultiPolygon", GeometryPolygon


class GeometryCollection(_Shape):
    """Any geometries, collections included."""

    __slots__, _kind, _part = (), "GeometryCollection", (GeometryPoint, _Shape)


@dataclass(frozen=True, slots=True)
class Set:
    """A 3.x set; ``items`` in the order given (the engine sorts and deduplicates)."""

    items: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", _freeze(tuple(self.items)))

    def __str__(self) -> str:
        return "{" + (", ".join(map(_surql, self.items)) or ",") + "}"


@dataclass(frozen=True, slots=True)
class File:
    """A 3.x file reference: bucket name and key (a path such as ``/a/b.txt``)."""

    bucket: str
    key: str

    def __post_init__(self) -> None:
        if type(self.bucket) is not str or type(self.key) is not str:
            raise CodecError(f"a file's bucket and key are str: {self.bucket!r}, {self.key!r}")
        if not self.key.startswith("/"):  # 3.x roots every key
            object.__setattr__(self, "key", "/" + self.key)

    def __str__(self) -> str:
        bucket, key = (re.sub(r"[^A-Za-z0-9_/.-]", r"\\\g<0>", s) for s in (self.bucket, self.key))
        return f'f"{bucket}:{key}"'


def _ident(name: str) -> str:
    # 3.x backticks a name with no letter or with other characters (2.x used ⟨⟩ for
    # record keys); reserved words, which 3.x also escapes in tables, are not.
    if _PLAIN.fullmatch(name) and any(char.isalpha() for char in name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _quote(text: str, quote: str = "") -> str:
    quote = quote or ('"' if "'" in text else "'")
    text = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    for char, escaped in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\0", "\\0")):
        text = text.replace(char, escaped)
    return quote + text + quote


def _number(value: float) -> str:
    # Rust's float Display: the shortest exact digits, never an exponent.
    if value != value or abs(value) == float("inf"):
        return {"nan": "NaN", "inf": "inf", "-inf": "-inf"}[repr(value)]
    return format(decimal.Decimal(repr(value)).normalize(), "f")


def _coordinates(shape: Any) -> str:
    if type(shape) is GeometryPoint:
        return f"[{_number(shape.longitude)}, {_number(shape.latitude)}]"
    return "[" + ", ".join(map(_coordinates, shape.parts)) + "]"


_FLOATS: Final = {"NaN": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_SURQL: Final[dict[type, Callable[[Any], str]]] = {
    type(None): lambda _: "NULL", bool: lambda value: "true" if value else "false",
    float: lambda value: _FLOATS.get(text := _number(value), text + "f"), str: _quote,
    bytes: lambda value: f'b"{value.hex().upper()}"', uuid.UUID: lambda value: f"u'{value}'",
    decimal.Decimal: lambda value: f"{value:f}dec",
}  # fmt: skip


def _surql(value: Any) -> str:
    """``value`` as SurrealQL source, the way 3.x prints it."""
    if (render := _SURQL.get(type(value))) is not None:
        return render(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_surql, value)) + "]"
    if isinstance(value, Mapping):
        keys = {k: k if _PLAIN.fullmatch(k) and not k.isdigit() else _quote(k, '"') for k in value}
        return "{ " + ", ".join(f"{keys[k]}: {_surql(value[k])}" for k in sorted(value)) + " }"
    return str(value)  # int, NONE and the classes here
