"""The value types of syncd/surreal/values.py on their own: checks, normal forms, text.

Pure: no codec and no engine (tests/surreal/test_codec.py carries them through
CBOR and the engines).
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import pytest
from cbor2 import frozendict
from hypothesis import given
from hypothesis import strategies as st

from syncd.surreal.values import (
    _DT_MAX,
    _DT_MIN,
    NONE,
    BoundExcluded,
    BoundIncluded,
    CodecError,
    Datetime,
    Duration,
    File,
    GeometryCollection,
    GeometryLine,
    GeometryPoint,
    GeometryPolygon,
    Range,
    RecordID,
    Set,
    Table,
    _civil,
    _days,
    _surql,
)

seconds = st.integers(min_value=_DT_MIN, max_value=_DT_MAX)
nanos = st.integers(min_value=0, max_value=999_999_999)


@given(days=st.integers(min_value=_DT_MIN // 86400, max_value=_DT_MAX // 86400))
def test_the_calendar_functions_are_inverse_over_the_whole_range(days: int) -> None:
    assert _days(*_civil(days)) == days


@given(day=st.dates())
def test_the_calendar_agrees_with_python_where_python_has_dates(day: dt.date) -> None:
    days = (day - dt.date(1970, 1, 1)).days
    assert _civil(days) == (day.year, day.month, day.day)


@given(seconds, nanos)
def test_iso_text_round_trips_exactly(s: int, ns: int) -> None:
    value = Datetime(s, ns)
    assert Datetime.from_iso(value.isoformat()) == value
    assert Datetime.from_iso(str(value)[2:-1]) == value  # d'...' as the engines print it


@given(st.datetimes(timezones=st.just(dt.UTC)))
def test_python_datetimes_round_trip_to_the_microsecond(value: dt.datetime) -> None:
    assert Datetime.from_datetime(value).to_datetime() == value


def test_offsets_and_fractions_are_read_as_the_instant() -> None:
    utc = Datetime.from_iso("2026-01-01T00:00:00Z")
    assert Datetime.from_iso("2026-01-01T02:30:00+02:30") == utc
    assert Datetime.from_iso("2025-12-31T23:00:00-01:00") == utc
    assert Datetime.from_iso("2026-01-01T00:00:00.5z").nanoseconds == 500_000_000
    assert Datetime.from_iso("2026-01-01t00:00:00.000000001Z").nanoseconds == 1
    assert Datetime.from_iso("+10000-01-01T00:00:00Z").isoformat(0) == "+10000-01-01T00:00:00Z"
    assert Datetime.from_iso("-0001-03-01T00:00:00Z").isoformat(0) == "-0001-03-01T00:00:00Z"


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-29T00:00:00Z",  # not a leap year
        "2026-13-01T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z",
        "2026-01-01T00:00:60Z",
        "2026-01-01 00:00:00Z",
        "2026-01-01T00:00:00",  # no zone
        "2026-01-01T00:00:00.1234567890Z",  # ten digits
    ],
)
def test_impossible_or_malformed_text_is_refused(text: str) -> None:
    with pytest.raises(CodecError, match=text[:4]):
        Datetime.from_iso(text)


def test_datetime_fields_are_checked() -> None:
    for bad in (
        lambda: Datetime(_DT_MAX + 1),
        lambda: Datetime(_DT_MIN - 1),
        lambda: Datetime(0, 10**9),
        lambda: Datetime(0, -1),
        lambda: Datetime(True),
        lambda: Datetime.from_datetime(dt.datetime(2026, 1, 1)),
    ):
        with pytest.raises(CodecError):
            bad()


def test_datetime_text_uses_as_few_digits_as_stay_exact() -> None:
    assert str(Datetime(0)) == "d'1970-01-01T00:00:00Z'"
    assert str(Datetime(0, 120_000_000)) == "d'1970-01-01T00:00:00.120Z'"
    assert str(Datetime(0, 123_400)) == "d'1970-01-01T00:00:00.000123400Z'"
    assert str(Datetime(0, 1_000)) == "d'1970-01-01T00:00:00.000001Z'"
    assert Datetime(0, 999_999_999).isoformat(3) == "1970-01-01T00:00:00.999Z"  # truncated


def test_datetimes_order_by_instant() -> None:
    assert Datetime(-1, 999_999_999) < Datetime(0) < Datetime(0, 1) < Datetime(1)


def test_duration_text_and_total() -> None:
    assert str(Duration()) == "0ns"
    assert str(Duration(5400, 5)) == "1h30m5ns"
    assert str(Duration(86400 * 8 + 1, 1_001_000)) == "1w1d1s1ms1µs"
    assert Duration(2, 3).total_nanoseconds == 2_000_000_003
    for bad in (lambda: Duration(-1), lambda: Duration(1 << 64), lambda: Duration(0, 10**9)):
        with pytest.raises(CodecError):
            bad()


def test_record_ids_freeze_their_keys_and_check_them() -> None:
    rid = RecordID("t", [1, {"a": [2]}])
    assert rid.id == (1, frozendict({"a": (2,)}))
    assert hash(rid) == hash(RecordID("t", (1, {"a": (2,)})))
    assert str(RecordID("t", [1, "x"])) == "t:[1, 'x']"
    assert str(RecordID("people", "a b")) == "people:`a b`"
    assert str(RecordID("t", "123")) == "t:`123`"  # no letter: escaped
    assert str(RecordID("t", 7)) == "t:7"
    uid = uuid.UUID(int=1)
    assert str(RecordID("t", uid)) == f"t:u'{uid}'"
    for bad in (
        lambda: RecordID("t", 1 << 63),
        lambda: RecordID("t", 1.5),
        lambda: RecordID(1, "x"),  # type: ignore[arg-type]
        lambda: RecordID("t", {1: "x"}),
        lambda: RecordID("t", Range(BoundIncluded(Range()), None)),
    ):
        with pytest.raises(CodecError):
            bad()


def test_ranges_print_their_bounds() -> None:
    assert str(Range()) == ".."
    assert str(Range(BoundIncluded(1), BoundExcluded(5))) == "1..5"
    assert str(Range(BoundExcluded(1), BoundIncluded(5))) == "1>..=5"
    assert str(RecordID("t", Range(BoundIncluded([1]), None))) == "t:[1].."
    assert BoundIncluded([1, 2]).value == (1, 2)
    with pytest.raises(CodecError):
        Range(1, None)  # type: ignore[arg-type]


def test_a_polygon_closes_its_rings_as_the_engines_do() -> None:
    a, b, c = GeometryPoint(0, 0), GeometryPoint(1, 0), GeometryPoint(1, 1)
    polygon = GeometryPolygon([GeometryLine([a, b, c])])
    assert polygon.parts[0].parts == (a, b, c, a)
    closed = GeometryPolygon([GeometryLine([a, b, c, a])])
    assert closed == polygon
    with pytest.raises(CodecError, match="at least one ring"):
        GeometryPolygon([])
    with pytest.raises(CodecError):
        GeometryLine([(0, 0)])
    assert GeometryPoint(1, 2).longitude == 1.0 and type(GeometryPoint(1, 2).latitude) is float
    with pytest.raises(CodecError):
        GeometryPoint("1", 2)  # type: ignore[arg-type]


def test_geometry_text() -> None:
    line = GeometryLine([GeometryPoint(1.5, -2.25), GeometryPoint(0, 1e20)])
    assert str(GeometryPoint(1.5, -2.25)) == "(1.5, -2.25)"
    assert str(line) == (
        "{ type: 'LineString', coordinates: [[1.5, -2.25], [0, 100000000000000000000]] }"
    )
    both = GeometryCollection([GeometryPoint(0, 0), line])
    assert str(both).startswith("{ type: 'GeometryCollection', geometries: [(0, 0), { type:")


def test_sets_files_and_tables() -> None:
    assert str(Set()) == "{,}"
    assert str(Set([1, "a"])) == "{1, 'a'}"
    assert Set([[1]]).items == ((1,),)
    assert File("b", "x.txt").key == "/x.txt"
    assert str(File("my bucket", "/a b.txt")) == 'f"my\\ bucket:/a\\ b.txt"'
    with pytest.raises(CodecError):
        File("b", 1)  # type: ignore[arg-type]
    assert str(Table("users")) == "users"
    assert str(Table("odd-name")) == "`odd-name`"
    with pytest.raises(CodecError):
        Table(1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "NULL"),
        (NONE, "NONE"),
        (True, "true"),
        (1.0, "1f"),
        (-0.0, "-0f"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        ("it's", '"it\'s"'),
        ("a\nb", "'a\\nb'"),
        (b"\x01\xab", 'b"01AB"'),
        (decimal.Decimal("9.990"), "9.990dec"),
        ({"b": 1, "a": [NONE], "1": 2, "x y": 3}, '{ "1": 2, a: [NONE], b: 1, "x y": 3 }'),
    ],
)
def test_surql_text(value: Any, text: str) -> None:
    assert _surql(value) == text


def test_none_is_one_value_distinct_from_null() -> None:
    import copy
    import pickle

    assert copy.deepcopy(NONE) is NONE
    assert pickle.loads(pickle.dumps(NONE)) is NONE
    assert NONE is not None and repr(NONE) == "NONE"
